"""The embedded demo district: the simulator started for sources with ``base_url: embedded``, and
the other system's bundle written for sources with ``path: embedded``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from passport_pipeline.config import ApiSource, CsvBundleSource, PassportConfig
from passport_pipeline.simulator import store
from passport_pipeline.simulator.district import DirtyData, ensure_district, working_copy
from passport_pipeline.simulator.other_system import ensure_other_system
from passport_pipeline.simulator.server import running_simulator
from passport_pipeline.warehouse.lock import Busy, duckdb_holder


class DistrictBusy(Busy):
    """The embedded district's store is open for writing by another process."""


@contextmanager
def reachable(config: PassportConfig, root: Path | None = None) -> Iterator[PassportConfig]:
    """``config`` with its ``embedded`` sources pointing at the demo district.

    An API source with ``base_url: embedded`` reads the running simulator, a bundle source with
    ``path: embedded`` the district's other-system bundle (:mod:`.other_system`, written beside
    the district on first use). The simulator starts on a free loopback port only when a source
    needs it, and stops when the block ends. The district is generated once (cached by seed, size
    and dirt) and served from a lasting working copy beside it, so next-day changes made to that
    copy (by a ``passport-pipeline simulate --store`` on it) carry over from one sync to the next,
    as a real Skyward's data would; the other system's bundle is made from the pristine district and
    does not change. The district is served read-only: a sync and a Test Connection running at the
    same time, in two processes, each start their own simulator on the same copy.
    """
    district = config.simulator
    served = any(isinstance(s, ApiSource) and s.embedded for s in config.sources)
    bundled = any(isinstance(s, CsvBundleSource) and s.embedded for s in config.sources)
    if district is None or not (served or bundled):
        yield config
        return
    dirty = DirtyData.demo() if district.dirty == "demo" else DirtyData()
    pristine = ensure_district(district.seed, district.students, dirty, root=root)
    if bundled:
        config = config.bundled_at(ensure_other_system(pristine))
    if not served:
        yield config
        return
    serving = pristine.with_name(f"embedded-{pristine.name}")
    if not serving.exists():
        partial = serving.with_name(f"{serving.name}.{os.getpid()}.partial")
        os.replace(working_copy(pristine, partial), serving)  # a copy cut off by a crash never looks whole
    _check_readable(serving)
    with running_simulator(serving, read_only=True) as simulator:
        yield config.served_by(simulator.base_url)


def _check_readable(path: Path) -> None:
    """Refuse in one line, saying what to do, when another process writes the store (DuckDB then
    lets nobody else open it, even to read)."""
    try:
        store.connect(path, read_only=True).close()
    except duckdb.IOException as error:
        who = duckdb_holder(error)
        if who is None:
            raise
        raise DistrictBusy(
            f"The embedded demo district {path} is open for writing by another process ({who}), so the "
            "simulator cannot serve it: stop that process (a `passport-pipeline simulate --store` on this "
            "file?), or point the source's base_url at that simulator instead of `embedded`.") from None
