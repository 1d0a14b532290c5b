"""Fixtures of the fault and crash suites: one simulator of the small district, and each API's
reference made once (see :mod:`reference_sync`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from reference_sync import Reference, picture, sync, write_config

from passport_pipeline.simulator import store
from passport_pipeline.simulator.district import working_copy
from passport_pipeline.simulator.server import RunningSimulator, running_simulator


@pytest.fixture(scope="session")
def district(small_district, tmp_path_factory) -> Path:
    """The small district with one student enrolled nowhere: a server that builds
    ``schools/{id}/students`` from enrollments leaves that student out, so that fault bites."""
    path = working_copy(small_district, tmp_path_factory.mktemp("reliability") / "district.duckdb")
    con = store.connect(path)
    try:
        con.execute("DELETE FROM enrollments"
                    " WHERE user_id = (SELECT min(sourced_id) FROM users WHERE role = 'student')")
        store.finalize(con)
    finally:
        con.close()
    return path


@pytest.fixture(scope="session")
def simulator(district) -> Iterator[RunningSimulator]:
    """One read-only simulator for the reliability suites."""
    with running_simulator(district, read_only=True) as running:
        yield running


@pytest.fixture
def sim(simulator) -> Iterator[RunningSimulator]:
    """The shared simulator, its faults cleared after the test."""
    yield simulator
    simulator.clear_faults()


@pytest.fixture(scope="session")
def reference(simulator, tmp_path_factory) -> Callable[[str], Reference]:
    """``reference(api)``: the clean sync of ``api``, made on first use."""
    made: dict[str, Reference] = {}

    def of(api: str) -> Reference:
        if api not in made:
            simulator.clear_faults()
            folder = tmp_path_factory.mktemp(f"reference-{api}")
            done = sync(write_config(folder, api, simulator.base_url))
            assert done.code == 0, done.err
            warehouse = folder / "warehouse.duckdb"
            made[api] = Reference(warehouse, picture(warehouse))
        return made[api]

    return of
