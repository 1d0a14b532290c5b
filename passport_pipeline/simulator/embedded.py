"""The embedded demo district: the simulator started for sources with ``base_url: embedded``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from passport_pipeline.config import ApiSource, PassportConfig
from passport_pipeline.simulator.district import DirtyData, ensure_district, working_copy
from passport_pipeline.simulator.server import running_simulator


@contextmanager
def reachable(config: PassportConfig, root: Path | None = None) -> Iterator[PassportConfig]:
    """``config`` with its ``embedded`` sources pointing at the running demo district.

    The simulator starts on a free loopback port only when a source needs it, and stops when
    the block ends. The district is generated once (cached by seed, size and dirt) and served
    from a lasting working copy beside it, so next-day changes made through the admin
    endpoints carry over from one sync to the next, as a real Skyward's data would.
    """
    district = config.simulator
    if district is None or not any(isinstance(s, ApiSource) and s.embedded for s in config.sources):
        yield config
        return
    dirty = DirtyData.demo() if district.dirty == "demo" else DirtyData()
    pristine = ensure_district(district.seed, district.students, dirty, root=root)
    serving = pristine.with_name(f"embedded-{pristine.name}")
    if not serving.exists():
        working_copy(pristine, serving)
    with running_simulator(serving) as simulator:
        yield config.served_by(simulator.base_url)
