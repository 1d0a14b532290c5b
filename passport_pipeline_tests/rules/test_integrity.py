"""Referential integrity in the staged stage: unknown references, what they cost their record,
the cascade through skipped records, lists, self references and entities not extracted."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest

from passport_pipeline.config import CsvBundleSource
from passport_pipeline.entities import ENTITIES, links
from passport_pipeline.rules.requirements import check_requirements
from passport_pipeline.rules.tables import stage_table, staging_columns
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.sql import ident

RUN = "run-1"

DISTRICT = {
    "schools": [{"sis_id": "s1"}],
    "terms": [{"sis_id": "y1"}, {"sis_id": "t1", "parent_sis_id": "y1"}],
    "courses": [{"sis_id": "c1", "school_sis_id": "s1", "school_year_sis_id": "y1"}],
    "classes": [{"sis_id": "k1", "course_sis_id": "c1", "school_sis_id": "s1", "term_sis_ids": ["t1"]}],
    "students": [{"sis_id": "u1", "school_sis_ids": ["s1"], "primary_school_sis_id": "s1"}],
    "staff": [{"sis_id": "p1", "school_sis_ids": ["s1"]}],
    "contacts": [{"sis_id": "g1"}],
    "student_contacts": [{"sis_id": "l1", "student_sis_id": "u1", "contact_sis_id": "g1"}],
    "enrollments": [{"sis_id": "e1", "user_sis_id": "u1", "class_sis_id": "k1", "school_sis_id": "s1"},
                    {"sis_id": "e2", "user_sis_id": "p1", "class_sis_id": "k1", "school_sis_id": "s1"}],
    "demographics": [{"sis_id": "u1"}],
}


def make_source(tmp_path, entities=tuple(ENTITIES), **requirement_rules) -> CsvBundleSource:
    return CsvBundleSource.model_validate(
        {"name": "sis", "app": "oneroster_csv", "path": str(tmp_path), "entities": list(entities),
         "requirements": requirement_rules})


def put(warehouse, entity: str, rows: list[dict]) -> None:
    """The filtered table of ``entity`` holding ``rows`` (missing columns NULL)."""
    table = stage_table("filtered", "sis", entity)
    columns = ", ".join(f"{ident(c)} {kind}" for c, kind in staging_columns(entity).items())
    with warehouse.writing() as con:
        con.execute(f"CREATE OR REPLACE TABLE {table} ({columns})")
        for row in rows:
            row = {"source": "sis", "status": "active", **row}
            con.execute(f"INSERT INTO {table} ({', '.join(ident(c) for c in row)})"
                        f" VALUES ({', '.join('?' * len(row))})", list(row.values()))


@pytest.fixture(scope="module")
def district(tmp_path_factory, extracted) -> Path:
    """A warehouse file holding the filtered tables of ``DISTRICT``, every entity extracted
    completely, written once per module."""
    path = tmp_path_factory.mktemp("district") / "warehouse.duckdb"
    with Warehouse(path) as warehouse:
        for entity, rows in DISTRICT.items():
            put(warehouse, entity, rows)
        extracted(warehouse)
    return path


@pytest.fixture
def warehouse(district, tmp_path):
    """A private copy of ``district``."""
    shutil.copy(district, tmp_path / "warehouse.duckdb")
    with Warehouse(tmp_path / "warehouse.duckdb") as wh:
        yield wh


def add(warehouse, entity: str, *rows: dict) -> None:
    put(warehouse, entity, DISTRICT[entity] + list(rows))


def staged(warehouse, entity: str) -> list[str]:
    return sorted(i for (i,) in warehouse.reading().execute(
        f"SELECT sis_id FROM {stage_table('staged', 'sis', entity)}").fetchall())


def issues(warehouse) -> list[tuple]:
    return sorted(warehouse.reading().execute(
        "SELECT entity, record_id, attribute, severity, message FROM sync.issues"
        " WHERE run_id = ? AND rule = 'referential'", [RUN]).fetchall())


def test_a_consistent_district_has_no_referential_issue(warehouse, tmp_path):
    check_requirements(warehouse, make_source(tmp_path), RUN)
    assert issues(warehouse) == []
    assert all(staged(warehouse, entity) == sorted(r["sis_id"] for r in rows) for entity, rows in DISTRICT.items())


def test_references_come_from_the_registry_plus_the_enrollment_user():
    assert links("enrollments") == {"class_sis_id": ("classes",), "school_sis_id": ("schools",),
                                         "user_sis_id": ("students", "staff")}
    assert links("demographics") == {"sis_id": ("students",)}
    assert links("terms") == {"parent_sis_id": ("terms",)}
    assert links("schools") == {}


def test_an_unknown_required_reference_leaves_the_record_out(warehouse, tmp_path):
    add(warehouse, "enrollments", {"sis_id": "e3", "user_sis_id": "u1", "class_sis_id": "k9'; --"})
    check_requirements(warehouse, make_source(tmp_path), RUN)
    assert staged(warehouse, "enrollments") == ["e1", "e2"]
    assert issues(warehouse) == [("enrollments", "e3", "class_sis_id", "Skipped",
                                  "class_sis_id 'k9'; --' names no record of classes: the record is left out")]


def test_an_unknown_optional_reference_is_reported_and_kept(warehouse, tmp_path):
    add(warehouse, "enrollments", {"sis_id": "e3", "user_sis_id": "u1", "class_sis_id": "k1", "school_sis_id": "s9"})
    report = check_requirements(warehouse, make_source(tmp_path), RUN)
    assert staged(warehouse, "enrollments") == ["e1", "e2", "e3"]
    assert issues(warehouse) == [("enrollments", "e3", "school_sis_id", "Error",
                                  "school_sis_id 's9' names no record of schools: the record is kept")]
    assert report.entities["enrollments"].issues == {"referential (Error)": 1}


def test_skip_if_missing_makes_any_reference_required(warehouse, tmp_path):
    add(warehouse, "students", {"sis_id": "u2", "primary_school_sis_id": "s9"})
    check_requirements(warehouse, make_source(tmp_path, students={"primary_school_sis_id": "skip_if_missing"}), RUN)
    assert staged(warehouse, "students") == ["u1"]
    assert [(record, severity) for _, record, _, severity, _ in issues(warehouse)] == [("u2", "Skipped")]


def test_a_skipped_record_takes_its_dependents_along(warehouse, tmp_path):
    add(warehouse, "classes", {"sis_id": "k2", "course_sis_id": None, "school_sis_id": "s1"})
    add(warehouse, "enrollments", {"sis_id": "e3", "user_sis_id": "u1", "class_sis_id": "k2"},
        {"sis_id": "e4", "user_sis_id": "p1", "class_sis_id": "k2"})
    report = check_requirements(warehouse, make_source(tmp_path), RUN)
    assert staged(warehouse, "classes") == ["k1"]
    assert staged(warehouse, "enrollments") == ["e1", "e2"]
    assert [(entity, record) for entity, record, *_ in issues(warehouse)] == [
        ("enrollments", "e3"), ("enrollments", "e4")]
    assert report.entities["enrollments"].dropped == {"tobedeleted": 0, "skip_if_missing": 0, "referential": 2}


def test_a_cascade_runs_through_several_entities(warehouse, tmp_path):
    put(warehouse, "courses", [{"sis_id": "c1", "school_sis_id": "s9"}])
    source = make_source(tmp_path, courses={"school_sis_id": "skip_if_missing"})
    check_requirements(warehouse, source, RUN)
    assert staged(warehouse, "courses") == staged(warehouse, "classes") == staged(warehouse, "enrollments") == []
    assert staged(warehouse, "students") == ["u1"]


def test_the_enrollment_user_is_a_student_or_a_staff_member(warehouse, tmp_path):
    add(warehouse, "enrollments", {"sis_id": "e3", "user_sis_id": "g1", "class_sis_id": "k1"})
    check_requirements(warehouse, make_source(tmp_path), RUN)
    assert staged(warehouse, "enrollments") == ["e1", "e2"]
    assert issues(warehouse) == [("enrollments", "e3", "user_sis_id", "Skipped",
                                  "user_sis_id 'g1' names no record of students or staff: the record is left out")]


def test_demographics_of_an_unknown_student_are_always_left_out(warehouse, tmp_path):
    add(warehouse, "demographics", {"sis_id": "u9"})
    check_requirements(warehouse, make_source(tmp_path), RUN)
    assert staged(warehouse, "demographics") == ["u1"]
    assert [(record, attribute, severity) for _, record, attribute, severity, _ in issues(warehouse)] == [
        ("u9", "sis_id", "Skipped")]


def test_each_element_of_a_list_is_checked_once_per_record(warehouse, tmp_path):
    add(warehouse, "classes", {"sis_id": "k2", "course_sis_id": "c1", "school_sis_id": "s1",
                               "term_sis_ids": ["t1", "t8", "t9", " ", None]})
    check_requirements(warehouse, make_source(tmp_path), RUN)
    assert "k2" in staged(warehouse, "classes")
    assert issues(warehouse) == [("classes", "k2", "term_sis_ids", "Error",
                                  "term_sis_ids 't8' (and 1 more) names no record of terms: the record is kept")]


def test_a_term_refers_to_terms_of_the_same_source(warehouse, tmp_path):
    add(warehouse, "terms", {"sis_id": "t2", "parent_sis_id": "y0"})
    check_requirements(warehouse, make_source(tmp_path), RUN)
    assert [(record, attribute) for _, record, attribute, *_ in issues(warehouse)] == [("t2", "parent_sis_id")]


def test_missing_references_are_left_to_the_requirements(warehouse, tmp_path):
    add(warehouse, "enrollments", {"sis_id": "e3", "user_sis_id": "u1", "class_sis_id": "k1", "school_sis_id": None},
        {"sis_id": "e4", "user_sis_id": "u1", "class_sis_id": "k1", "school_sis_id": "  "})
    check_requirements(warehouse, make_source(tmp_path), RUN)
    assert staged(warehouse, "enrollments") == ["e1", "e2", "e3", "e4"]
    assert issues(warehouse) == []


def test_references_into_entities_not_extracted_are_not_checked(warehouse, tmp_path):
    add(warehouse, "enrollments", {"sis_id": "e3", "user_sis_id": "u9", "class_sis_id": "k9", "school_sis_id": "s9"})
    check_requirements(warehouse, make_source(tmp_path, entities=["students", "enrollments"]), RUN)
    assert staged(warehouse, "enrollments") == ["e1", "e2", "e3"]
    assert issues(warehouse) == []


def test_an_extracted_entity_without_records_knows_no_reference(warehouse, tmp_path):
    with warehouse.writing() as con:
        con.execute(f"DROP TABLE {stage_table('filtered', 'sis', 'schools')}")
    check_requirements(warehouse, make_source(tmp_path, entities=["schools", "courses"]), RUN)
    assert staged(warehouse, "courses") == ["c1"]
    assert [(record, severity) for _, record, _, severity, _ in issues(warehouse)] == [("c1", "Error")]


def test_ids_are_compared_exactly(warehouse, tmp_path):
    add(warehouse, "enrollments", {"sis_id": "e3", "user_sis_id": " u1", "class_sis_id": "K1"})
    check_requirements(warehouse, make_source(tmp_path), RUN)
    assert [attribute for _, _, attribute, *_ in issues(warehouse)] == ["class_sis_id", "user_sis_id"]


def test_a_failed_pull_is_not_blamed_on_the_data(warehouse, tmp_path, extracted):
    """Issue 8, failure 9: with students failed, every demographics record was skipped as
    "names no record of students". Students not extracted are unknown, not missing."""
    put(warehouse, "students", [])
    extracted(warehouse, ["students"], run_id="run-2", status="failed", scopes=["s1", "s2"],
              started_at=datetime(2026, 9, 2))
    report = check_requirements(warehouse, make_source(tmp_path), RUN)
    assert staged(warehouse, "demographics") == ["u1"]
    assert staged(warehouse, "enrollments") == ["e1", "e2"]
    assert staged(warehouse, "student_contacts") == ["l1"]
    assert issues(warehouse) == []
    assert report.facts["unknown entities"] == (
        "students (latest extraction (run 'run-2') not complete: 2 failed, of 2 scopes)")


@pytest.mark.parametrize("status", ["absent", "running"])
def test_an_entity_whose_latest_extraction_is_not_complete_is_unknown(warehouse, tmp_path, extracted, status):
    put(warehouse, "courses", [])
    extracted(warehouse, ["courses"], run_id="run-2", status=status, started_at=datetime(2026, 9, 2))
    report = check_requirements(warehouse, make_source(tmp_path), RUN)
    assert staged(warehouse, "classes") == ["k1"]
    assert issues(warehouse) == []
    assert report.facts["unknown entities"].startswith("courses (")


def test_the_latest_extraction_decides(warehouse, tmp_path, extracted):
    put(warehouse, "courses", [])
    extracted(warehouse, ["courses"], run_id="run-0", status="failed", started_at=datetime(2026, 8, 31))
    report = check_requirements(warehouse, make_source(tmp_path), RUN)
    assert report.facts["unknown entities"] == "none"
    assert issues(warehouse)[0] == ("classes", "k1", "course_sis_id", "Skipped",
                                    "course_sis_id 'c1' names no record of courses: the record is left out")


def test_an_entity_never_extracted_is_unknown(tmp_path, extracted):
    with Warehouse(tmp_path / "warehouse.duckdb") as warehouse:
        for entity, rows in DISTRICT.items():
            put(warehouse, entity, rows if entity != "classes" else [])
        extracted(warehouse, [e for e in ENTITIES if e != "classes"])
        report = check_requirements(warehouse, make_source(tmp_path), RUN)
        assert staged(warehouse, "enrollments") == ["e1", "e2"]
        assert issues(warehouse) == []
    assert report.facts["unknown entities"] == "classes (never extracted)"
