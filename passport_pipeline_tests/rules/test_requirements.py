"""The staged stage: data requirements, masking, the stage contract (tables, issues, report,
re-runs, one transaction) on small hand-built filtered tables."""

from __future__ import annotations

import pytest

from passport_pipeline.config import CsvBundleSource
from passport_pipeline.rules import requirements
from passport_pipeline.rules.requirements import check_requirements, effective_requirements
from passport_pipeline.rules.tables import stage_table, staging_columns
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.sql import ident

RUN = "run-1"


def make_source(tmp_path, entities=("students",), **requirement_rules) -> CsvBundleSource:
    return CsvBundleSource.model_validate(
        {"name": "sis", "app": "oneroster_csv", "path": str(tmp_path), "entities": list(entities),
         "requirements": requirement_rules})


def put(warehouse, entity: str, rows: list[dict], source: str = "sis") -> None:
    """The filtered table of ``entity`` holding ``rows`` (missing columns NULL)."""
    table = stage_table("filtered", source, entity)
    columns = ", ".join(f"{ident(c)} {kind}" for c, kind in staging_columns(entity).items())
    with warehouse.writing() as con:
        con.execute(f"CREATE OR REPLACE TABLE {table} ({columns})")
        for row in rows:
            row = {"source": source, "status": "active", **row}
            con.execute(f"INSERT INTO {table} ({', '.join(ident(c) for c in row)})"
                        f" VALUES ({', '.join('?' * len(row))})", list(row.values()))


def staged(warehouse, entity: str, columns: str = "sis_id") -> list[tuple]:
    table = stage_table("staged", "sis", entity)
    return sorted(warehouse.reading().execute(f"SELECT {columns} FROM {table}").fetchall())


def issues(warehouse, run_id: str = RUN) -> list[tuple]:
    return sorted(warehouse.reading().execute(
        "SELECT entity, record_id, attribute, rule, severity, message FROM sync.issues WHERE run_id = ?",
        [run_id]).fetchall())


@pytest.fixture
def warehouse(tmp_path, extracted):
    with Warehouse(tmp_path / "warehouse.duckdb") as wh:
        extracted(wh)
        yield wh


BLANKS = [("u1", "ann@school.org"), ("u2", None), ("u3", ""), ("u4", " \t\r\n"), ("u5", "\u00a0")]


def test_include_takes_values_as_they_are(warehouse, tmp_path):
    put(warehouse, "students", [{"sis_id": i, "email": e} for i, e in BLANKS])
    report = check_requirements(warehouse, make_source(tmp_path), RUN)
    assert staged(warehouse, "students", "sis_id, email") == sorted(BLANKS, key=lambda r: r[0])
    assert issues(warehouse) == []
    assert report.entities["students"].rows_out == 5


def test_report_if_missing_reports_and_keeps(warehouse, tmp_path):
    put(warehouse, "students", [{"sis_id": i, "email": e} for i, e in BLANKS])
    report = check_requirements(warehouse, make_source(tmp_path, students={"email": "report_if_missing"}), RUN)
    assert staged(warehouse, "students") == [("u1",), ("u2",), ("u3",), ("u4",), ("u5",)]
    assert issues(warehouse) == [("students", f"u{n}", "email", "report_if_missing", "Error",
                                  "email is missing: the record is kept") for n in (2, 3, 4, 5)]
    assert report.entities["students"].issues == {"report_if_missing (Error)": 4}
    assert report.entities["students"].dropped == {"tobedeleted": 0, "skip_if_missing": 0, "referential": 0}


def test_skip_if_missing_reports_and_leaves_out(warehouse, tmp_path):
    put(warehouse, "students", [{"sis_id": i, "email": e} for i, e in BLANKS])
    report = check_requirements(warehouse, make_source(tmp_path, students={"email": "skip_if_missing"}), RUN)
    assert staged(warehouse, "students") == [("u1",)]
    assert issues(warehouse) == [("students", f"u{n}", "email", "skip_if_missing", "Skipped",
                                  "email is missing: the record is left out") for n in (2, 3, 4, 5)]
    counts = report.entities["students"]
    assert (counts.rows_in, counts.rows_out, counts.dropped) == (5, 1, {"tobedeleted": 0, "skip_if_missing": 4, "referential": 0})
    assert counts.issues == {"skip_if_missing (Skipped)": 4}


def test_a_list_is_missing_when_no_element_has_a_value(warehouse, tmp_path):
    put(warehouse, "students", [
        {"sis_id": "u1", "grades": ["09"]}, {"sis_id": "u2", "grades": None}, {"sis_id": "u3", "grades": []},
        {"sis_id": "u4", "grades": [" ", None]}, {"sis_id": "u5", "grades": ["", "10"]}])
    check_requirements(warehouse, make_source(tmp_path, students={"grades": "skip_if_missing"}), RUN)
    assert staged(warehouse, "students") == [("u1",), ("u5",)]


def test_mask_hides_values_and_keeps_missing_ones(warehouse, tmp_path):
    put(warehouse, "students", [
        {"sis_id": "u1", "email": "ann@school.org", "grades": ["09", "10"], "birth_date": "2011-04-01"},
        {"sis_id": "u2", "email": None, "grades": [], "birth_date": " "},
        {"sis_id": "u3", "email": "x'); DROP TABLE t; --", "grades": None, "birth_date": "ünïcødé"}])
    source = make_source(tmp_path, students={"email": "mask", "grades": "mask", "birth_date": "mask"})
    report = check_requirements(warehouse, source, RUN)
    assert staged(warehouse, "students", "sis_id, email, grades, birth_date") == [
        ("u1", "****", ["****"], "****"), ("u2", None, [], " "), ("u3", "****", None, "****")]
    assert report.facts == {"masked values": 5, "unknown entities": "schools (not in the source's entities)"}
    assert [(record, attribute) for _, record, attribute, *_ in issues(warehouse)] == [
        ("u3", "birth_date"), ("u3", "email")]
    assert "'x'); DROP TABLE t; --'" in issues(warehouse)[1][-1]


def test_required_references_are_skip_if_missing_by_default(tmp_path):
    source = make_source(tmp_path, classes={"school_sis_id": "report_if_missing", "title": "mask"})
    assert effective_requirements(source, "classes") == {
        "course_sis_id": "skip_if_missing", "school_sis_id": "report_if_missing", "title": "mask"}
    assert effective_requirements(source, "enrollments") == {
        "user_sis_id": "skip_if_missing", "class_sis_id": "skip_if_missing"}
    assert effective_requirements(source, "student_contacts") == {
        "student_sis_id": "skip_if_missing", "contact_sis_id": "skip_if_missing"}
    assert effective_requirements(make_source(tmp_path, enrollments={"user_sis_id": "include"}), "enrollments") == {
        "class_sis_id": "skip_if_missing"}
    assert effective_requirements(source, "students") == {}


def test_a_class_without_course_is_left_out_by_default(warehouse, tmp_path):
    put(warehouse, "classes", [{"sis_id": "k1", "course_sis_id": "c1", "school_sis_id": "s1"},
                               {"sis_id": "k2", "course_sis_id": "  ", "school_sis_id": "s1"}])
    check_requirements(warehouse, make_source(tmp_path, entities=["classes"]), RUN)
    assert staged(warehouse, "classes") == [("k1",)]
    assert issues(warehouse) == [("classes", "k2", "course_sis_id", "skip_if_missing", "Skipped",
                                  "course_sis_id is missing: the record is left out")]


def test_staged_tables_have_the_staging_columns_and_every_entity_a_table(warehouse, tmp_path):
    put(warehouse, "students", [{"sis_id": "u1"}])
    source = make_source(tmp_path, entities=["schools", "students", "enrollments"])
    report = check_requirements(warehouse, source, RUN)
    assert list(report.entities) == ["schools", "students", "enrollments"]
    assert report.entities["schools"].rows_in == report.entities["schools"].rows_out == 0
    con = warehouse.reading()
    for entity in source.entities:
        described = con.execute(f"DESCRIBE {stage_table('staged', 'sis', entity)}").fetchall()
        assert [(name, kind) for name, kind, *_ in described] == list(staging_columns(entity).items())
    tables = {name for (name,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'staging'").fetchall()}
    assert "sis__classes" not in tables


def test_rerunning_gives_the_same_tables_and_issues(warehouse, tmp_path):
    put(warehouse, "students", [{"sis_id": "u1", "email": "bad"}, {"sis_id": "u2"},
                                {"sis_id": "u3", "email": "a@b.org"}])
    source = make_source(tmp_path, students={"email": "skip_if_missing", "phone": "mask"})
    first = check_requirements(warehouse, source, RUN)
    before = (staged(warehouse, "students", "*"), issues(warehouse))
    second = check_requirements(warehouse, source, RUN)
    assert (staged(warehouse, "students", "*"), issues(warehouse)) == before
    assert first == second
    assert len(before[1]) == 2


def test_a_rerun_clears_only_this_stages_issues_of_this_run_and_source(warehouse, tmp_path):
    put(warehouse, "students", [{"sis_id": "u1"}])
    with warehouse.writing() as con:
        for run, source, rule in [(RUN, "sis", "quarantine"), ("run-0", "sis", "skip_if_missing"),
                                  (RUN, "other", "skip_if_missing"), (RUN, "sis", "format")]:
            con.execute("INSERT INTO sync.issues VALUES (?, ?, 'students', 'x', NULL, ?, 'Error', 'old', now())",
                        [run, source, rule])
    check_requirements(warehouse, make_source(tmp_path), RUN)
    left = warehouse.reading().execute("SELECT run_id, source, rule FROM sync.issues ORDER BY ALL").fetchall()
    assert left == [("run-0", "sis", "skip_if_missing"), (RUN, "other", "skip_if_missing"), (RUN, "sis", "quarantine")]


def test_a_crash_leaves_the_previous_tables_and_issues(warehouse, tmp_path, monkeypatch):
    put(warehouse, "students", [{"sis_id": "u1"}, {"sis_id": "u2", "email": "bad"}])
    put(warehouse, "demographics", [{"sis_id": "u1"}])
    source = make_source(tmp_path, entities=["students", "demographics"])
    check_requirements(warehouse, source, RUN)
    before = (staged(warehouse, "students"), staged(warehouse, "demographics"), issues(warehouse))
    put(warehouse, "students", [{"sis_id": "u9"}])

    def broken(con, entity, records):
        if entity == "demographics":
            raise RuntimeError("disk full")
        return original(con, entity, records)

    original = requirements.format_findings
    monkeypatch.setattr(requirements, "format_findings", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        check_requirements(warehouse, source, RUN)
    assert (staged(warehouse, "students"), staged(warehouse, "demographics"), issues(warehouse)) == before


def test_hostile_ids_and_values_stay_data(warehouse, tmp_path):
    ids = ["u'1", 'u"2', "u;3 --", "ü4", " u5 "]
    put(warehouse, "students", [{"sis_id": i, "email": None, "username": "'); DROP TABLE x; --"} for i in ids])
    check_requirements(warehouse, make_source(tmp_path, students={"email": "skip_if_missing"}), RUN)
    assert staged(warehouse, "students") == []
    assert sorted(record for _, record, *_ in issues(warehouse)) == sorted(ids)


def test_the_report_counts_every_rule(warehouse, tmp_path):
    put(warehouse, "classes", [{"sis_id": "k1", "course_sis_id": "c1", "school_sis_id": "s1",
                                "class_type": "lab"},
                               {"sis_id": "k2", "course_sis_id": None, "school_sis_id": "s1"},
                               {"sis_id": "k3", "course_sis_id": "c9", "school_sis_id": "s1"}])
    put(warehouse, "courses", [{"sis_id": "c1"}])
    source = make_source(tmp_path, entities=["courses", "classes"], classes={"title": "report_if_missing"})
    report = check_requirements(warehouse, source, RUN)
    counts = report.entities["classes"]
    assert (report.stage, report.source) == ("staged", "sis")
    assert (counts.rows_in, counts.rows_out) == (3, 1)
    assert counts.dropped == {"tobedeleted": 0, "skip_if_missing": 1, "referential": 1}
    assert counts.issues == {"format (Error)": 1, "referential (Skipped)": 1, "report_if_missing (Error)": 3,
                             "skip_if_missing (Skipped)": 1}
