"""Records to be deleted in the staged stage: they leave the candidate roster, and take along
the records that cannot be without them, each with an issue naming the tobedeleted record."""

from __future__ import annotations

from datetime import datetime

import pytest

from passport_pipeline.config import CsvBundleSource
from passport_pipeline.entities import ENTITIES
from passport_pipeline.rules.requirements import check_requirements
from passport_pipeline.rules.tables import stage_table, staging_columns
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.sql import ident

RUN = "run-1"

DISTRICT = {
    "schools": [{"sis_id": "s1"}, {"sis_id": "s2"}],
    "terms": [{"sis_id": "y1"}],
    "courses": [{"sis_id": "c1", "school_sis_id": "s1"}, {"sis_id": "c2", "school_sis_id": "s1"}],
    "classes": [{"sis_id": "k1", "course_sis_id": "c1", "school_sis_id": "s1"},
                {"sis_id": "k2", "course_sis_id": "c2", "school_sis_id": "s1"}],
    "students": [{"sis_id": "u1", "school_sis_ids": ["s1"]}, {"sis_id": "u2", "school_sis_ids": ["s1"]}],
    "staff": [{"sis_id": "p1", "school_sis_ids": ["s1"]}],
    "contacts": [{"sis_id": "g1"}, {"sis_id": "g2"}],
    "student_contacts": [{"sis_id": "l1", "student_sis_id": "u1", "contact_sis_id": "g1"},
                         {"sis_id": "l2", "student_sis_id": "u2", "contact_sis_id": "g2"}],
    "enrollments": [{"sis_id": "e1", "user_sis_id": "u1", "class_sis_id": "k1", "school_sis_id": "s1"},
                    {"sis_id": "e2", "user_sis_id": "p1", "class_sis_id": "k1", "school_sis_id": "s1"},
                    {"sis_id": "e3", "user_sis_id": "u2", "class_sis_id": "k2", "school_sis_id": "s1"}],
    "demographics": [{"sis_id": "u1"}, {"sis_id": "u2"}],
}


@pytest.fixture
def warehouse(tmp_path, extracted):
    with Warehouse(tmp_path / "warehouse.duckdb") as wh:
        extracted(wh)
        yield wh


def district(warehouse, **statuses: dict[str, str]) -> None:
    """The filtered tables of ``DISTRICT``, with the given ``entity={record id: status}``."""
    for entity, rows in DISTRICT.items():
        table = stage_table("filtered", "sis", entity)
        columns = ", ".join(f"{ident(c)} {kind}" for c, kind in staging_columns(entity).items())
        with warehouse.writing() as con:
            con.execute(f"CREATE OR REPLACE TABLE {table} ({columns})")
            for row in rows:
                row = {"source": "sis", "status": statuses.get(entity, {}).get(row["sis_id"], "active"), **row}
                con.execute(f"INSERT INTO {table} ({', '.join(ident(c) for c in row)})"
                            f" VALUES ({', '.join('?' * len(row))})", list(row.values()))


def source(tmp_path, **requirements) -> CsvBundleSource:
    return CsvBundleSource.model_validate({"name": "sis", "app": "oneroster_csv", "path": str(tmp_path),
                                           "requirements": requirements})


def staged(warehouse, entity: str) -> list[str]:
    return sorted(i for (i,) in warehouse.reading().execute(
        f"SELECT sis_id FROM {stage_table('staged', 'sis', entity)}").fetchall())


def issues(warehouse, *rules: str) -> list[tuple]:
    return sorted(warehouse.reading().execute(
        "SELECT entity, record_id, attribute, rule, severity, message FROM sync.issues"
        " WHERE run_id = ? AND list_contains(?, rule)", [RUN, list(rules or ["tobedeleted", "referential"])]).fetchall())


def test_a_tobedeleted_class_takes_its_active_enrollments_along(warehouse, tmp_path, readme):
    """Issue 8, failure 8: a tobedeleted class kept its active enrollments in the candidate
    roster, with no issue."""
    district(warehouse, classes={"k1": " TobeDeleted "})
    report = check_requirements(warehouse, source(tmp_path), RUN)
    assert staged(warehouse, "classes") == ["k2"]
    assert staged(warehouse, "enrollments") == ["e3"]
    assert issues(warehouse) == [
        ("classes", "k1", "status", "tobedeleted", "Skipped",
         "status ' TobeDeleted ' marks the record to be deleted: it is left out"),
        ("enrollments", "e1", "class_sis_id", "tobedeleted", "Skipped",
         "class_sis_id 'k1' is tobedeleted: the record leaves with it"),
        ("enrollments", "e2", "class_sis_id", "tobedeleted", "Skipped",
         "class_sis_id 'k1' is tobedeleted: the record leaves with it")]
    assert report.entities["enrollments"].dropped == {"tobedeleted": 2, "skip_if_missing": 0, "referential": 0}
    assert report.entities["enrollments"].issues == {"tobedeleted (Skipped)": 2}
    assert "class_sis_id 'k1' is tobedeleted: the record leaves with it" in readme


def test_inactive_is_one_point_zero_for_tobedeleted(warehouse, tmp_path):
    district(warehouse, enrollments={"e3": "inactive"}, contacts={"g2": "INACTIVE"})
    check_requirements(warehouse, source(tmp_path), RUN)
    assert staged(warehouse, "enrollments") == ["e1", "e2"]
    assert staged(warehouse, "contacts") == ["g1"]
    assert staged(warehouse, "student_contacts") == ["l1"]


def test_the_cascade_names_the_tobedeleted_record(warehouse, tmp_path, readme):
    district(warehouse, courses={"c1": "tobedeleted"})
    check_requirements(warehouse, source(tmp_path), RUN)
    assert staged(warehouse, "courses") == ["c2"]
    assert staged(warehouse, "classes") == ["k2"]
    assert staged(warehouse, "enrollments") == ["e3"]
    assert [issue for issue in issues(warehouse) if issue[1] in ("k1", "e1")] == [
        ("classes", "k1", "course_sis_id", "tobedeleted", "Skipped",
         "course_sis_id 'c1' is tobedeleted: the record leaves with it"),
        ("enrollments", "e1", "class_sis_id", "tobedeleted", "Skipped",
         "class_sis_id 'k1' leaves with tobedeleted record 'c1' of courses: the record leaves with it")]
    assert issues(warehouse)[1][-1] == "status 'tobedeleted' marks the record to be deleted: it is left out"
    assert issues(warehouse)[1][-1] in readme and issues(warehouse)[2][-1] in readme


def test_a_tobedeleted_student_takes_what_describes_them(warehouse, tmp_path):
    district(warehouse, students={"u1": "tobedeleted"}, staff={"p1": "tobedeleted"})
    check_requirements(warehouse, source(tmp_path), RUN)
    assert (staged(warehouse, "students"), staged(warehouse, "staff")) == (["u2"], [])
    assert staged(warehouse, "demographics") == ["u2"]
    assert staged(warehouse, "student_contacts") == ["l2"]
    assert staged(warehouse, "enrollments") == ["e3"]
    assert staged(warehouse, "contacts") == ["g1", "g2"], "a contact stands on its own here"
    assert [(entity, record, attribute) for entity, record, attribute, *_ in issues(warehouse)] == [
        ("demographics", "u1", "sis_id"), ("enrollments", "e1", "user_sis_id"), ("enrollments", "e2", "user_sis_id"),
        ("staff", "p1", "status"), ("student_contacts", "l1", "student_sis_id"), ("students", "u1", "status")]


def test_an_optional_reference_to_a_tobedeleted_record_is_an_error(warehouse, tmp_path):
    district(warehouse, schools={"s1": "tobedeleted"})
    report = check_requirements(warehouse, source(tmp_path), RUN)
    assert staged(warehouse, "schools") == ["s2"]
    assert staged(warehouse, "courses") == ["c1", "c2"]
    assert staged(warehouse, "students") == ["u1", "u2"]
    assert staged(warehouse, "classes") == staged(warehouse, "enrollments") == []
    found = {(entity, record, attribute): (severity, message)
             for entity, record, attribute, _, severity, message in issues(warehouse)}
    assert found["courses", "c1", "school_sis_id"] == ("Error", "school_sis_id 's1' is tobedeleted: the record is kept")
    assert found["students", "u1", "school_sis_ids"] == (
        "Error", "school_sis_ids 's1' is tobedeleted: the record is kept")
    assert found["classes", "k1", "school_sis_id"] == (
        "Skipped", "school_sis_id 's1' is tobedeleted: the record leaves with it")
    assert found["enrollments", "e1", "class_sis_id"] == (
        "Skipped", "class_sis_id 'k1' leaves with tobedeleted record 's1' of schools: the record leaves with it")
    assert report.entities["students"].issues == {"tobedeleted (Error)": 2}


def test_a_required_reference_follows_the_requirements(warehouse, tmp_path):
    district(warehouse, schools={"s1": "tobedeleted"})
    check_requirements(warehouse, source(tmp_path, courses={"school_sis_id": "skip_if_missing"},
                                         classes={"school_sis_id": "report_if_missing"}), RUN)
    assert staged(warehouse, "courses") == staged(warehouse, "classes") == []
    assert [(record, attribute, severity) for entity, record, attribute, _, severity, _ in issues(warehouse)
            if entity == "classes"] == [("k1", "course_sis_id", "Skipped"), ("k1", "school_sis_id", "Error"),
                                        ("k2", "course_sis_id", "Skipped"), ("k2", "school_sis_id", "Error")]


def test_references_into_an_unknown_entity_do_not_cascade(warehouse, tmp_path, extracted):
    district(warehouse, classes={"k1": "tobedeleted"})
    extracted(warehouse, ["classes"], run_id="run-2", status="failed", started_at=datetime(2026, 9, 2))
    check_requirements(warehouse, source(tmp_path), RUN)
    assert staged(warehouse, "classes") == ["k2"], "its own status still counts"
    assert staged(warehouse, "enrollments") == ["e1", "e2", "e3"]
    assert [(entity, record) for entity, record, *_ in issues(warehouse)] == [("classes", "k1")]


def test_a_rerun_replaces_its_issues(warehouse, tmp_path):
    district(warehouse, classes={"k1": "tobedeleted"}, students={"u2": "tobedeleted"})
    check_requirements(warehouse, source(tmp_path), RUN)
    first = issues(warehouse)
    check_requirements(warehouse, source(tmp_path), RUN)
    assert issues(warehouse) == first and len(first) == 7


def test_every_entity_may_be_tobedeleted(warehouse, tmp_path):
    district(warehouse, **{entity: {row["sis_id"]: "tobedeleted" for row in rows} for entity, rows in DISTRICT.items()})
    check_requirements(warehouse, source(tmp_path), RUN)
    assert all(staged(warehouse, entity) == [] for entity in ENTITIES)
    assert {(entity, record) for entity, record, attribute, *_ in issues(warehouse) if attribute == "status"} == {
        (entity, row["sis_id"]) for entity, rows in DISTRICT.items() for row in rows}
