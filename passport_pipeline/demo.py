"""``make demo``: sync the embedded 5,000-student demo district into DuckDB and say what happened.

The shipped ``passport.yaml`` points at the embedded simulator, so this is a real sync: the
simulated Skyward starts on a free loopback port, the Dagster ``sync`` job reads it over
OneRoster with OAuth into the warehouse, and the simulator stops again. Its second source reads
another system's OneRoster CSV bundle of the same district (``path: embedded``), holding some of
the same people under other ids, and people of its own.
"""

from __future__ import annotations

import sys

from passport_pipeline.config import load_config
from passport_pipeline.sync import FAILED, run_sync, tell
from passport_pipeline.warehouse.lock import WAIT_SECONDS


def run_demo(wait_seconds: float = WAIT_SECONDS, debug: bool = False) -> int:
    """Run one full sync of the configured (by default, embedded) district; print the report, or
    why it failed in one line."""
    config = load_config()
    district = config.simulator
    if district is not None:
        names = ", ".join(source.name for source in config.sources)
        print(f"Syncing the embedded demo district ({district.students:,} students, seed {district.seed}) "
              f"from {len(config.sources)} source{'s' * (len(config.sources) > 1)} ({names}) "
              f"through the Dagster 'sync' job...", flush=True)
    outcome = run_sync(mode="full", debug=debug, wait_seconds=wait_seconds,
                       waiting=lambda message: print(message, file=sys.stderr, flush=True))
    code = tell(outcome, debug=debug)
    if outcome.status != FAILED:
        print("\nExplore it: `make dev` for the Dagster UI, or duckdb on the warehouse file (raw.* tables).")
    return code
