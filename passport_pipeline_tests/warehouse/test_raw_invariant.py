"""The raw-table invariant, over random sequences of full, delta and failed pulls per scope.

After a full extraction in which every scope completed, ``raw.<source>__<entity>`` holds exactly
what the source served; a scope that failed keeps its previous complete rows; delta rows are
upserts by id, which the next full extraction replaces. The model below is that sentence; the
warehouse must agree with it after every step.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from passport_pipeline.entities import ENTITIES
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.raw import Ended, Extraction, finish_extractions, raw_table, sweep_superseded

SCOPES = ("A", "B", "C", "*")
IDS = tuple(f"s{n}" for n in range(6))

served = st.dictionaries(st.sampled_from(IDS), st.integers(0, 3), max_size=4)
"""What the source serves in one scope: record id -> a version of its values."""
pull = st.one_of(st.none(), served)
"""One scope's pull: None when it fails, else the records it got."""
step = st.tuples(st.sampled_from(["full", "delta"]),
                 st.dictionaries(st.sampled_from(SCOPES), pull, min_size=1, max_size=len(SCOPES)))


def record(sis_id: str, version: int) -> dict:
    row = dict.fromkeys(ENTITIES["students"].all_columns)
    row.update(sis_id=sis_id, status="active", given_name=f"v{version}")
    row["payload"] = json.dumps({"sourcedId": sis_id})
    return row


def apply(warehouse: Warehouse, run: str, mode: str, pulls: dict[str, dict | None]) -> None:
    """One run of extraction's bookkeeping: every scope's pull ends; a full run then sweeps."""
    started = Extraction.start(warehouse, run_id=run, source="sky", entity="students", scopes=pulls, mode=mode)
    ended = []
    for scope, got in pulls.items():
        if got is not None:
            started[scope].write_page([record(sis_id, version) for sis_id, version in got.items()])
        ended.append(Ended(started[scope], None if got is not None else "the server kept failing"))
    finish_extractions(warehouse, ended)
    if mode == "full":
        failed = [scope for scope, got in pulls.items() if got is None]
        sweep_superseded(warehouse, run_id=run, source="sky", entity="students", kept=failed)


def expect(model: dict[str, dict[str, str]], mode: str, pulls: dict[str, dict | None], run: str) -> None:
    """The same run in words: a full run leaves the served scopes and its failed scopes' previous
    rows; a delta run moves each record it saw into the scope that saw it."""
    if mode == "full":
        kept = {scope: model.get(scope, {}) for scope, got in pulls.items() if got is None}
        model.clear()
        model.update({scope: rows for scope, rows in kept.items() if rows})
        for scope, got in pulls.items():
            if got:
                model[scope] = {sis_id: f"v{version}" for sis_id, version in got.items()}
        return
    seen = {sis_id for got in pulls.values() if got for sis_id in got}
    for scope in list(model):
        model[scope] = {sis_id: value for sis_id, value in model[scope].items() if sis_id not in seen}
        if not model[scope]:
            del model[scope]
    for scope, got in pulls.items():
        for sis_id, version in (got or {}).items():
            model.setdefault(scope, {})[sis_id] = f"v{version}"


def table(warehouse: Warehouse) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for scope, sis_id, name in warehouse.reading().execute(
            f"SELECT scope, sis_id, given_name FROM {raw_table('sky', 'students')}").fetchall():
        assert sis_id not in found.get(scope, {}), f"{sis_id} twice in scope {scope}"
        found.setdefault(scope, {})[sis_id] = name
    return found


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=6))
def test_raw_tables_hold_what_the_source_served(tmp_path_factory, steps):
    with Warehouse(tmp_path_factory.mktemp("raw") / "warehouse.duckdb") as warehouse:
        model: dict[str, dict[str, str]] = {}
        for number, (mode, pulls) in enumerate(steps):
            run = f"r{number}"
            apply(warehouse, run, mode, pulls)
            expect(model, mode, pulls, run)
            assert table(warehouse) == model
            if mode == "full" and all(got is not None for got in pulls.values()):
                assert table(warehouse) == {scope: {i: f"v{v}" for i, v in got.items()}
                                            for scope, got in pulls.items() if got}
