"""Landing tables: pages stream in, complete pulls replace their scope, failed pulls leave no trace."""

import json
from datetime import datetime, timezone

import pytest

from passport_pipeline.entities import ENTITIES
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.raw import (
    Ended,
    Extraction,
    advance_watermark,
    finish_extractions,
    raw_table,
    watermark,
)


def school_like(entity: str, sis_id: str, modified: str) -> dict:
    record = dict.fromkeys(ENTITIES[entity].all_columns)
    record.update(sis_id=sis_id, status="active", date_last_modified=modified)
    record["payload"] = json.dumps({"sourcedId": sis_id})
    return record


def school(sis_id: str, name: str, modified: str = "2026-10-01T00:00:00Z") -> dict:
    record = dict.fromkeys(ENTITIES["schools"].all_columns)
    record.update(sis_id=sis_id, status="active", date_last_modified=modified, name=name)
    record["payload"] = json.dumps({"sourcedId": sis_id, "name": name})
    return record


@pytest.fixture
def warehouse(tmp_path):
    with Warehouse(tmp_path / "warehouse.duckdb") as wh:
        yield wh


def rows(warehouse, source="sky", entity="schools"):
    return warehouse.reading().execute(
        f"SELECT sis_id, name, scope, run_id FROM {raw_table(source, entity)} ORDER BY sis_id, scope"
    ).fetchall()


def test_full_pull_replaces_only_its_own_scope(warehouse):
    first = Extraction(warehouse, run_id="r1", source="sky", entity="schools", scope="A")
    first.write_page([school("1", "Old One"), school("2", "Two")])
    first.complete()
    other = Extraction(warehouse, run_id="r1", source="sky", entity="schools", scope="B")
    other.write_page([school("9", "Nine")])
    other.complete()

    second = Extraction(warehouse, run_id="r2", source="sky", entity="schools", scope="A")
    second.write_page([school("1", "New One")])
    second.complete({"pages": 1})

    assert rows(warehouse) == [("1", "New One", "A", "r2"), ("9", "Nine", "B", "r1")]
    status = warehouse.reading().execute(
        "SELECT run_id, scope, status, rows, stats->>'pages' FROM sync.extractions ORDER BY run_id, scope"
    ).fetchall()
    assert status == [("r1", "A", "complete", 2, None), ("r1", "B", "complete", 1, None),
                      ("r2", "A", "complete", 1, "1")]


def test_failed_pull_drops_its_partial_rows_and_keeps_the_previous_picture(warehouse):
    good = Extraction(warehouse, run_id="r1", source="sky", entity="schools", scope="A")
    good.write_page([school("1", "One"), school("2", "Two")])
    good.complete()

    broken = Extraction(warehouse, run_id="r2", source="sky", entity="schools", scope="A")
    broken.write_page([school("1", "Half")])
    broken.fail("server answered 503 five times on page 2")

    assert rows(warehouse) == [("1", "One", "A", "r1"), ("2", "Two", "A", "r1")]
    assert warehouse.reading().execute(
        "SELECT status, rows, error FROM sync.extractions WHERE run_id = 'r2'"
    ).fetchone() == ("failed", 0, "server answered 503 five times on page 2")


def test_delta_pull_replaces_older_versions_of_the_records_it_saw(warehouse):
    full = Extraction(warehouse, run_id="r1", source="sky", entity="schools", scope="A")
    full.write_page([school("1", "One"), school("2", "Two")])
    full.complete()
    delta = Extraction(warehouse, run_id="r2", source="sky", entity="schools", mode="delta")
    delta.write_page([school("2", "Two renamed", "2026-10-05T08:00:00Z")])
    delta.complete()

    assert rows(warehouse) == [("1", "One", "A", "r1"), ("2", "Two renamed", "*", "r2")]


def test_watermark_moves_forward_only(warehouse):
    pull = Extraction(warehouse, run_id="r1", source="sky", entity="schools")
    pull.write_page([school("1", "One", "2026-10-05T08:00:00.000Z"), school("2", "Two", "bad date"),
                     school("3", "Three", "2026-10-04T08:00:00Z")])
    pull.complete()
    assert advance_watermark(warehouse, run_id="r1", source="sky", entities=["schools"]) == "2026-10-05T08:00:00.000Z"

    older = Extraction(warehouse, run_id="r2", source="sky", entity="schools", mode="delta")
    older.write_page([school("3", "Three", "2026-10-01T00:00:00Z")])
    older.complete()
    advance_watermark(warehouse, run_id="r2", source="sky", entities=["schools"])
    assert watermark(warehouse, "sky", "schools") == "2026-10-05T08:00:00.000Z"


def test_a_read_sets_the_watermark_of_every_entity_it_lands_rows_or_not(warehouse):
    staff = Extraction(warehouse, run_id="r1", source="sky", entity="staff")
    staff.write_page([school_like("staff", "t1", "2026-10-05T08:00:00Z")])
    staff.complete()
    Extraction(warehouse, run_id="r1", source="sky", entity="contacts").complete()  # none in this district
    mark = advance_watermark(warehouse, run_id="r1", source="sky", entities=["staff", "contacts"])
    assert mark == "2026-10-05T08:00:00Z"
    assert watermark(warehouse, "sky", "contacts") == watermark(warehouse, "sky", "staff") == mark


def test_the_watermark_is_never_later_than_the_server_clock_when_the_read_started(warehouse):
    pull = Extraction(warehouse, run_id="r1", source="sky", entity="staff")
    pull.write_page([school_like("staff", "t1", "2026-10-05T08:00:00.250Z")])  # changed while paging
    pull.complete()
    started = datetime(2026, 10, 5, 7, 59, 58, tzinfo=timezone.utc)
    assert advance_watermark(warehouse, run_id="r1", source="sky", entities=["staff"],
                             server_time=started) == "2026-10-05T07:59:58Z"
    empty = Extraction(warehouse, run_id="r2", source="sky", entity="staff", mode="delta")
    empty.complete()  # nothing changed: the watermark still moves to when this read started
    later = datetime(2026, 10, 6, 8, 0, tzinfo=timezone.utc)
    assert advance_watermark(warehouse, run_id="r2", source="sky", entities=["staff"],
                             server_time=later) == "2026-10-06T08:00:00Z"
    assert advance_watermark(warehouse, run_id="r3", source="sky", entities=["staff"]) is None
    assert watermark(warehouse, "sky", "staff") == "2026-10-06T08:00:00Z"


def test_quarantine_is_an_issue_not_an_error(warehouse):
    pull = Extraction(warehouse, run_id="r1", source="sky", entity="schools")
    pull.quarantine("record has no sourcedId", '{"name": "Nameless"}')
    pull.complete()
    issue = warehouse.reading().execute(
        "SELECT entity, rule, severity, message FROM sync.issues"
    ).fetchone()
    assert issue == ("schools", "quarantine", "Error", 'record has no sourcedId: {"name": "Nameless"}')
    assert warehouse.reading().execute("SELECT quarantined FROM sync.extractions").fetchone() == (1,)


def test_hostile_source_names_and_values_are_quoted(warehouse):
    pull = Extraction(warehouse, run_id="r1", source='we"ird', entity="schools")
    pull.write_page([school("1'; DROP TABLE sync.issues; --", "Ünïcode \"quoted\"")])
    pull.complete()
    assert rows(warehouse, source='we"ird') == [
        ("1'; DROP TABLE sync.issues; --", 'Ünïcode "quoted"', "*", "r1")
    ]


def test_pulls_of_many_scopes_start_together_and_end_together(warehouse):
    before = Extraction.start(warehouse, run_id="r1", source="sky", entity="schools", scopes=["A", "B"])
    before["A"].write_page([school("1", "Old One")])
    before["B"].write_page([school("2", "Two")])
    finish_extractions(warehouse, [Ended(before["A"]), Ended(before["B"])])

    hostile = "O'Brien \"Elementary\"; DROP TABLE sync.issues; --"
    pulls = Extraction.start(warehouse, run_id="r2", source="sky", entity="schools", scopes=["A", "B", hostile, "A"])
    assert list(pulls) == ["A", "B", hostile]
    assert warehouse.reading().execute(
        "SELECT scope FROM sync.extractions WHERE run_id = 'r2' AND status = 'running' ORDER BY scope"
    ).fetchall() == [("A",), ("B",), (hostile,)]
    pulls["A"].write_page([school("1", "New One")])
    pulls["B"].write_page([school("2", "Half")])
    pulls[hostile].write_page([school("3", "Three")])
    finish_extractions(warehouse, [Ended(pulls["A"], stats={"pages": 1}), Ended(pulls["B"], "cut off", {"pages": 2}),
                                   Ended(pulls[hostile])])

    assert rows(warehouse) == [("1", "New One", "A", "r2"), ("2", "Two", "B", "r1"), ("3", "Three", hostile, "r2")]
    assert warehouse.reading().execute(
        "SELECT scope, status, rows, error, stats->>'pages' FROM sync.extractions WHERE run_id = 'r2' ORDER BY scope"
    ).fetchall() == [("A", "complete", 1, None, "1"), ("B", "failed", 0, "cut off", "2"),
                     (hostile, "complete", 1, None, None)]


def test_payloads_are_stored_with_zstd(warehouse):
    pull = Extraction(warehouse, run_id="r1", source="sky", entity="schools")
    pull.write_page([school(str(n), f"School {n}") for n in range(3)])
    pull.complete()
    with warehouse.writing() as con:
        con.execute("CHECKPOINT")
        codecs = dict(con.execute(
            f"SELECT DISTINCT column_name, compression FROM pragma_storage_info('{raw_table('sky', 'schools')}')"
            " WHERE segment_type <> 'VALIDITY' AND column_name IN ('payload', 'name')").fetchall())
    assert codecs["payload"] == "ZSTD" and codecs["name"] != "ZSTD"


def test_what_is_stored_of_a_failure_is_scrubbed_of_secrets(warehouse):
    from passport_pipeline.redaction import remember

    remember("wh-Secret-77c1", client_id="wh-client")
    pull = Extraction(warehouse, run_id="r1", source="sky", entity="schools", scope="A")
    pull.quarantine("not valid JSON", '{"echo": "Basic d2gtY2xpZW50OndoLVNlY3JldC03N2Mx"')
    pull.fail("a bug holding wh-Secret-77c1", {"warnings": ["the server said wh-Secret-77c1"]})

    failure = warehouse.reading().execute("SELECT error, stats::VARCHAR FROM sync.extractions").fetchall()
    issues = warehouse.reading().execute("SELECT message FROM sync.issues").fetchall()
    assert failure == [("a bug holding ***", '{"warnings": ["the server said ***"]}')]
    assert issues == [('not valid JSON: {"echo": "Basic ***"',)]
