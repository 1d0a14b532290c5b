"""Named crash points: where the reliability tests kill a sync with ``kill -9``.

A sync must survive dying anywhere: a rerun converges to what a clean sync gives. To prove it
where a crash hurts most — rows landed but their pull not ended, a stage's transaction open,
just after a commit — each such place calls :func:`crash_point` with a name of its own, and
``passport_pipeline_tests/reliability/test_crash_points.py`` runs a real ``passport-pipeline
sync`` that kills itself at each name it finds in the code, then checks the rerun. A stage joins
that suite by adding its calls.

Only tests set ``PASSPORT_CRASH_AT``. It is read once, when this module is imported, so a point
costs one comparison when it is unset.
"""

from __future__ import annotations

import os
import signal

CRASH_AT = "PASSPORT_CRASH_AT"
_crash_at = os.environ.get(CRASH_AT)


def crash_point(name: str) -> None:
    """Die at once, as ``kill -9`` kills, when ``PASSPORT_CRASH_AT`` names this point."""
    if name == _crash_at:
        os.kill(os.getpid(), signal.SIGKILL)
