"""Complete is proven: extraction against servers that answer wrong, short, or built differently.

Each test is one way a real server made a wrong or partial read pass for complete (issue 8):
nested endpoints that are not implemented or serve another collection, nested students built
from enrollments, a short or empty page, delta rows that outlived a full pull, and deltas that
re-read everything.
"""

from __future__ import annotations

import pytest

from passport_pipeline.extract import extract_source
from passport_pipeline.simulator import store
from passport_pipeline.simulator.server import running_simulator
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.raw import raw_table
from passport_pipeline_tests.test_extract import ENV, expected, landed, oneroster


@pytest.fixture
def warehouse(tmp_path):
    with Warehouse(tmp_path / "warehouse.duckdb") as wh:
        yield wh


def ids(warehouse, entity: str, source: str = "sky") -> set[str]:
    return {sis_id for (sis_id,) in warehouse.reading().execute(
        f"SELECT DISTINCT sis_id FROM {raw_table(source, entity)}").fetchall()}


def store_ids(district, sql: str) -> set[str]:
    con = store.connect(district, read_only=True)
    try:
        return {sis_id for (sis_id,) in con.execute(sql).fetchall()}
    finally:
        con.close()


def warnings_of(warehouse, run_id: str, entity: str) -> str:
    rows = warehouse.reading().execute(
        "SELECT DISTINCT unnest(CAST(stats->'warnings' AS VARCHAR[])) FROM sync.extractions"
        " WHERE run_id = ? AND entity = ?", [run_id, entity]).fetchall()
    return "\n".join(warning for (warning,) in rows)


@pytest.mark.parametrize("version,fault", [("1.1", "nested_as_schools"), ("1.2", "nested_not_found")])
def test_nested_endpoints_that_do_not_serve_their_collection_fall_back_to_it(small_district, warehouse,
                                                                               version, fault):
    with running_simulator(small_district, read_only=True, faults={fault: True}) as sim:
        result = extract_source(warehouse, oneroster(sim, version), run_id="r1", env=ENV)
    assert not result.failed
    assert landed(warehouse) == expected(small_district)
    orgs = store_ids(small_district, "SELECT sourced_id FROM orgs")
    for entity in ("courses", "classes", "enrollments"):
        assert not ids(warehouse, entity) & orgs, f"no school may land as one of the {entity}"
        assert "split it by school instead" in warnings_of(warehouse, "r1", entity)
        assert f"schools/{{id}}/{entity}" in warnings_of(warehouse, "r1", entity)


def test_nested_students_built_from_enrollments_do_not_lose_a_student_without_one(district_copy, warehouse):
    con = store.connect(district_copy)
    (lonely,) = con.execute("SELECT min(sourced_id) FROM users WHERE role = 'student'").fetchone()
    con.execute("DELETE FROM enrollments WHERE user_id = ?", [lonely])
    store.finalize(con)
    con.close()
    with running_simulator(district_copy, faults={"nested_students_from_enrollments": True}) as sim:
        full = extract_source(warehouse, oneroster(sim), run_id="full", env=ENV)
        after_full = ids(warehouse, "students")
        delta = extract_source(warehouse, oneroster(sim), run_id="delta", mode="delta", env=ENV)
    assert not full.failed and not delta.failed
    assert lonely in after_full, "the full sync must find the student the nested endpoint leaves out"
    assert ids(warehouse, "students") == after_full, "full and delta must agree"
    assert "counts" in warnings_of(warehouse, "full", "students")


@pytest.mark.parametrize("rows", [0, 10])
def test_a_read_short_of_the_servers_own_count_is_never_complete(small_district, warehouse, rows):
    with running_simulator(small_district, read_only=True) as sim:
        extract_source(warehouse, oneroster(sim), run_id="good", env=ENV)
        before = ids(warehouse, "students")
        sim.set_faults(short_endpoints=["students"], short_rows=rows)
        result = extract_source(warehouse, oneroster(sim), run_id="short", env=ENV)
    assert result.failed.get("students"), "a short read must fail its scopes"
    assert "counts" in next(iter(result.failed["students"].values()))
    assert ids(warehouse, "students") == before, "the previous picture is kept"
    assert warehouse.reading().execute(f"SELECT DISTINCT run_id FROM {raw_table('sky', 'students')}").fetchall() \
        == [("good",)]


def test_full_after_delta_holds_exactly_what_the_source_serves(district_copy, warehouse):
    with running_simulator(district_copy) as sim:
        extract_source(warehouse, oneroster(sim), run_id="full-1", env=ENV)
        for day in range(5):  # withdrawals show as tobedeleted for three days, then are purged
            sim.next_day(creates=0.01, updates=0.02, withdrawals=0.02,
                         events=[{"kind": "source_id_change"}] if day == 0 else [])
            assert not extract_source(warehouse, oneroster(sim), run_id=f"delta-{day}", mode="delta",
                                      env=ENV).failed
        assert not extract_source(warehouse, oneroster(sim), run_id="full-2", env=ENV).failed
    served = {
        "students": "SELECT sourced_id FROM users WHERE role = 'student'",
        "enrollments": "SELECT sourced_id FROM enrollments",
        "contacts": "SELECT sourced_id FROM users WHERE role IN ('guardian', 'parent', 'relative')",
        "classes": "SELECT sourced_id FROM classes",
    }
    for entity, sql in served.items():
        assert ids(warehouse, entity) == store_ids(district_copy, sql), entity
    runs = warehouse.reading().execute(f"SELECT DISTINCT run_id FROM {raw_table('sky', 'students')}").fetchall()
    assert runs == [("full-2",)], "no delta row outlives the full pull"


def test_a_delta_with_nothing_changed_reads_nothing_even_without_guardians(district_copy, warehouse):
    con = store.connect(district_copy)
    con.execute("DELETE FROM student_contacts")
    con.execute("DELETE FROM users WHERE role IN ('guardian', 'parent', 'relative')")
    store.finalize(con)
    con.close()
    with running_simulator(district_copy) as sim:
        full = extract_source(warehouse, oneroster(sim), run_id="full", env=ENV)
        delta = extract_source(warehouse, oneroster(sim), run_id="delta", mode="delta", env=ENV)
    assert not full.failed and not delta.failed
    assert full.entities["contacts"].rows == 0 and full.entities["contacts"].watermark is not None
    assert {entity: outcome.rows for entity, outcome in delta.entities.items()} == dict.fromkeys(delta.entities, 0)


def test_an_unexpectedly_empty_answer_is_a_warning_that_names_the_scope(small_district, warehouse):
    with running_simulator(small_district, read_only=True) as sim:
        extract_source(warehouse, oneroster(sim), run_id="good", env=ENV)
        sim.set_faults(empty_endpoints=["demographics"])
        result = extract_source(warehouse, oneroster(sim), run_id="empty", env=ENV)
    (warning,) = result.entities["demographics"].warnings
    assert "demographics of the whole source: the source answered no rows where the last full extraction " \
           "found 300" in warning
    assert warning in warnings_of(warehouse, "empty", "demographics")
