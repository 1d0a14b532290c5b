"""The filtered stage on a small hand-built district: staff scope, emergency contacts, filter rules
and how their decisions carry to linked records."""

from __future__ import annotations

import datetime as dt
from datetime import datetime
import shutil
from pathlib import Path

import duckdb
import pytest

from passport_pipeline.config import CsvBundleSource
from passport_pipeline.entities import ENTITIES
from passport_pipeline.rules.filters import filter_records
from passport_pipeline.rules.tables import stage_table, staging_columns
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.sql import ident

TODAY = dt.date(2026, 3, 15)

DISTRICT = {
    "schools": [{"sis_id": "s1", "name": "Lincoln"}, {"sis_id": "s2", "name": "Washington"}],
    "terms": [
        {"sis_id": "y1", "title": "2025-2026", "end_date": "2026-06-30"},
        {"sis_id": "t1", "title": "Fall", "parent_sis_id": "y1", "end_date": "2025-12-19"},
        {"sis_id": "t2", "title": "Spring", "parent_sis_id": "y1", "end_date": "2026-06-30T00:00:00Z"},
    ],
    "courses": [
        {"sis_id": "c1", "title": "Math", "school_sis_id": "s1", "school_year_sis_id": "y1"},
        {"sis_id": "c2", "title": "Art", "school_sis_id": "s2", "school_year_sis_id": "y1"},
    ],
    "classes": [
        {"sis_id": "k1", "title": "Algebra", "course_sis_id": "c1", "school_sis_id": "s1", "term_sis_ids": ["t1", "t2"]},
        {"sis_id": "k2", "title": "Painting", "course_sis_id": "c2", "school_sis_id": "s2", "term_sis_ids": ["t1"]},
    ],
    "students": [
        {"sis_id": "u1", "grades": ["09"], "school_sis_ids": ["s1"], "primary_school_sis_id": "s1"},
        {"sis_id": "u2", "grades": ["10"], "school_sis_ids": ["s1", "s2"], "primary_school_sis_id": "s2"},
        {"sis_id": "u3", "grades": ["11"], "school_sis_ids": ["s2"], "primary_school_sis_id": "s2"},
    ],
    "staff": [
        {"sis_id": "p1", "role": "aide", "school_sis_ids": ["s1"]},
        {"sis_id": "p2", "role": " TEACHER ", "school_sis_ids": ["s2"]},
    ],
    "contacts": [
        {"sis_id": "g1", "role": "parent"},
        {"sis_id": "g2", "role": "relative"},
        {"sis_id": "g3", "role": " Guardian "},
        {"sis_id": "g4", "role": "relative"},
    ],
    "student_contacts": [
        {"sis_id": "l1", "student_sis_id": "u1", "contact_sis_id": "g1", "custodial": "false"},
        {"sis_id": "l2", "student_sis_id": "u1", "contact_sis_id": "g2", "custodial": "false", "emergency_contact": "true"},
        {"sis_id": "l3", "student_sis_id": "u3", "contact_sis_id": "g3", "custodial": None},
        {"sis_id": "l4", "student_sis_id": "u2", "contact_sis_id": "g4", "custodial": " TRUE "},
    ],
    "enrollments": [
        {"sis_id": "e1", "user_sis_id": "u1", "class_sis_id": "k1", "school_sis_id": "s1", "role": "student"},
        {"sis_id": "e2", "user_sis_id": "p1", "class_sis_id": "k1", "school_sis_id": "s1", "role": " Teacher "},
        {"sis_id": "e3", "user_sis_id": "u3", "class_sis_id": "k2", "school_sis_id": "s2", "role": "student"},
        {"sis_id": "e4", "user_sis_id": "p2", "class_sis_id": "k2", "school_sis_id": "s2", "role": "aide"},
        {"sis_id": "e5", "user_sis_id": "u2", "class_sis_id": "k2", "school_sis_id": "s2", "role": "student"},
    ],
    "demographics": [{"sis_id": "u1"}, {"sis_id": "u3"}],
}
ALL_IDS = {entity: [row["sis_id"] for row in rows] for entity, rows in DISTRICT.items()}


@pytest.fixture(scope="module")
def district(tmp_path_factory, extracted) -> Path:
    """A warehouse file holding the mapped tables of ``DISTRICT``, every entity extracted
    completely, written once per module."""
    path = tmp_path_factory.mktemp("district") / "warehouse.duckdb"
    with Warehouse(path) as warehouse:
        for entity, rows in DISTRICT.items():
            put(warehouse, entity, rows)
        extracted(warehouse)
    return path


@pytest.fixture
def warehouse(district, tmp_path):
    with Warehouse(shutil.copy(district, tmp_path / "warehouse.duckdb")) as warehouse:
        yield warehouse


def put(warehouse: Warehouse, entity: str, rows: list[dict]) -> None:
    """Write ``rows`` as the mapped table of ``entity`` (absent columns NULL)."""
    columns = staging_columns(entity)
    table = stage_table("mapped", "sis", entity)
    with warehouse.writing() as con:
        con.execute("BEGIN")
        con.execute(f"CREATE OR REPLACE TABLE {table} ({', '.join(f'{ident(c)} {k}' for c, k in columns.items())})")
        values = [[{**row, "source": "sis"}.get(column) for column in columns] for row in rows]
        if values:
            con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(columns))})", values)
        con.execute("COMMIT")


def source(tmp_path, **settings) -> CsvBundleSource:
    return CsvBundleSource.model_validate({"name": "sis", "path": str(tmp_path), **settings},
                                          context={"config_dir": tmp_path})


def only(attribute: str, operator: str, value=None, include_linked: bool = True) -> dict:
    """A filter of one rule of one condition."""
    condition = {"attribute": attribute, "operator": operator, **({"value": value} if value is not None else {})}
    return {"rules": [{"name": "only", "when": [condition]}], "include_linked": include_linked}


def kept(warehouse: Warehouse, entity: str, column: str = "sis_id") -> list:
    rows = warehouse.reading().execute(
        f"SELECT {ident(column)} FROM {stage_table('filtered', 'sis', entity)} ORDER BY sis_id").fetchall()
    return [value for (value,) in rows]


def issues(warehouse) -> list[tuple]:
    return sorted(warehouse.reading().execute(
        "SELECT entity, record_id, attribute, rule, severity, message FROM sync.issues WHERE run_id = 'run-1'"
    ).fetchall(), key=str)


def run(warehouse, tmp_path, **settings):
    return filter_records(warehouse, source(tmp_path, **settings), "run-1", TODAY)


def test_without_rules_every_record_is_kept_exactly_as_mapped(warehouse, tmp_path):
    report = run(warehouse, tmp_path)
    assert (report.stage, report.source) == ("filtered", "sis")
    assert report.facts == {"today": "2026-03-15", "unknown entities": "none"}
    for entity in ENTITIES:
        mapped = warehouse.reading().execute(f"SELECT * FROM {stage_table('mapped', 'sis', entity)} ORDER BY sis_id")
        filtered = warehouse.reading().execute(f"SELECT * FROM {stage_table('filtered', 'sis', entity)} ORDER BY sis_id")
        assert [d[0] for d in filtered.description] == list(staging_columns(entity))
        assert filtered.fetchall() == mapped.fetchall()
        counts = report.entities[entity]
        assert (counts.rows_in, counts.rows_out, counts.dropped, counts.issues) == (len(DISTRICT[entity]),) * 2 + ({}, {})


def test_a_missing_mapped_table_counts_as_empty(warehouse, tmp_path):
    with warehouse.writing() as con:
        con.execute(f"DROP TABLE {stage_table('mapped', 'sis', 'enrollments')}")
    report = run(warehouse, tmp_path, advanced={"staff_scope": "active_teachers_only"})
    assert kept(warehouse, "enrollments") == []
    assert (report.entities["enrollments"].rows_in, report.entities["enrollments"].rows_out) == (0, 0)
    assert kept(warehouse, "staff") == [], "nobody teaches when no enrollment is known"


def test_only_the_sources_entities_get_a_table(warehouse, tmp_path):
    report = run(warehouse, tmp_path, entities=["students", "schools"])
    assert list(report.entities) == ["schools", "students"]
    tables = warehouse.reading().execute(
        "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '%filtered' UNION ALL"
        " SELECT view_name FROM duckdb_views() WHERE view_name LIKE '%filtered' ORDER BY 1").fetchall()
    assert tables == [("sis__schools__filtered",), ("sis__students__filtered",)]


def test_an_entity_the_stage_leaves_as_it_is_is_a_view_of_its_mapped_table(warehouse, tmp_path):
    def kind(entity):
        (found,) = warehouse.reading().execute(
            "SELECT count(*) FROM duckdb_views() WHERE view_name = ?", [f"sis__{entity}__filtered"]).fetchone()
        return "view" if found else "table"

    run(warehouse, tmp_path)
    assert (kind("terms"), kind("staff")) == ("view", "view")
    run(warehouse, tmp_path, advanced={"staff_scope": "active_teachers_only"})
    assert (kind("terms"), kind("staff")) == ("view", "table"), "a view and a table swap places"
    assert kept(warehouse, "staff") == ["p1"]
    run(warehouse, tmp_path)
    assert kind("staff") == "view" and kept(warehouse, "staff") == ["p1", "p2"]


def test_all_active_staff_keeps_every_staff_member(warehouse, tmp_path):
    run(warehouse, tmp_path, advanced={"staff_scope": "all_active_staff"})
    assert kept(warehouse, "staff") == ["p1", "p2"]


def test_active_teachers_only_keeps_the_users_of_teacher_enrollments(warehouse, tmp_path):
    report = run(warehouse, tmp_path, advanced={"staff_scope": "active_teachers_only"})
    assert kept(warehouse, "staff") == ["p1"], "p1 teaches k1 (' Teacher '); p2, a teacher by role, has only an aide enrollment"
    assert report.entities["staff"].dropped == {"staff scope": 1}
    assert kept(warehouse, "enrollments") == ["e1", "e2", "e3", "e5"]
    assert report.entities["enrollments"].dropped == {"linked staff dropped": 1}


def test_staff_scope_drops_carry_even_when_staff_do_not_include_linked(warehouse, tmp_path):
    run(warehouse, tmp_path, advanced={"staff_scope": "active_teachers_only"},
        filters={"staff": {"include_linked": False}})
    assert kept(warehouse, "enrollments") == ["e1", "e2", "e3", "e5"]


def test_without_enrollments_a_teacher_is_known_by_their_own_role(warehouse, tmp_path):
    report = run(warehouse, tmp_path, entities=["schools", "staff"], advanced={"staff_scope": "active_teachers_only"})
    assert kept(warehouse, "staff") == ["p2"]
    assert report.entities["staff"].dropped == {"staff scope": 1}


def test_emergency_contacts_on_keeps_every_link(warehouse, tmp_path):
    run(warehouse, tmp_path, advanced={"sync_emergency_contacts": True})
    assert kept(warehouse, "student_contacts") == ["l1", "l2", "l3", "l4"]
    assert kept(warehouse, "contacts") == ["g1", "g2", "g3", "g4"]


def test_emergency_contacts_off_keeps_guardian_links_and_their_contacts(warehouse, tmp_path):
    report = run(warehouse, tmp_path, advanced={"sync_emergency_contacts": False})
    assert kept(warehouse, "student_contacts") == ["l1", "l3", "l4"], "parent, guardian, custodial"
    assert report.entities["student_contacts"].dropped == {"emergency contacts off": 1}
    assert kept(warehouse, "contacts") == ["g1", "g3", "g4"]
    assert report.entities["contacts"].dropped == {"no linked student": 1}
    assert (report.entities["contacts"].rows_in, report.entities["contacts"].rows_out) == (4, 3)


def test_emergency_contacts_off_without_contacts_needs_custody(warehouse, tmp_path):
    run(warehouse, tmp_path, entities=["students", "student_contacts"], advanced={"sync_emergency_contacts": False})
    assert kept(warehouse, "student_contacts") == ["l4"]


def test_contacts_are_not_judged_by_links_that_are_not_extracted(warehouse, tmp_path):
    run(warehouse, tmp_path, entities=["contacts"], advanced={"sync_emergency_contacts": False})
    assert kept(warehouse, "contacts") == ["g1", "g2", "g3", "g4"]


def test_a_contact_without_any_link_is_dropped(warehouse, tmp_path):
    put(warehouse, "contacts", DISTRICT["contacts"] + [{"sis_id": "g9", "role": "parent"}])
    report = run(warehouse, tmp_path)
    assert kept(warehouse, "contacts") == ["g1", "g2", "g3", "g4"]
    assert report.entities["contacts"].dropped == {"no linked student": 1}


def test_filter_rules_keep_what_any_rule_matches(warehouse, tmp_path):
    rules = {"rules": [
        {"name": "ninth", "when": [{"attribute": "grades", "operator": "equals", "value": "09"}]},
        {"name": "eleventh at washington", "when": [
            {"attribute": "grades", "operator": "equals", "value": "11"},
            {"attribute": "school_sis_ids", "operator": "equals", "value": "S2"}]},
        {"name": "never", "when": [
            {"attribute": "grades", "operator": "equals", "value": "10"},
            {"attribute": "school_sis_ids", "operator": "is_empty"}]},
    ]}
    report = run(warehouse, tmp_path, filters={"students": rules})
    assert kept(warehouse, "students") == ["u1", "u3"]
    assert report.entities["students"].dropped == {"filter rules": 1}


def test_a_dropped_student_drops_its_enrollments_contact_links_contacts_and_demographics(warehouse, tmp_path):
    report = run(warehouse, tmp_path, filters={"students": only("grades", "in_list", ["09", "10"])})
    assert kept(warehouse, "students") == ["u1", "u2"]
    assert kept(warehouse, "enrollments") == ["e1", "e2", "e4", "e5"]
    assert kept(warehouse, "student_contacts") == ["l1", "l2", "l4"]
    assert kept(warehouse, "contacts") == ["g1", "g2", "g4"]
    assert kept(warehouse, "demographics") == ["u1"]
    dropped = {entity: counts.dropped for entity, counts in report.entities.items() if counts.dropped}
    assert dropped == {
        "students": {"filter rules": 1},
        "contacts": {"no linked student": 1},
        "student_contacts": {"linked students dropped": 1},
        "enrollments": {"linked students dropped": 1},
        "demographics": {"linked students dropped": 1},
    }


def test_include_linked_false_keeps_the_decision_with_the_entity(warehouse, tmp_path):
    run(warehouse, tmp_path, filters={"students": only("grades", "in_list", ["09", "10"], include_linked=False)})
    assert kept(warehouse, "students") == ["u1", "u2"]
    assert kept(warehouse, "enrollments") == ALL_IDS["enrollments"]
    assert kept(warehouse, "student_contacts") == ALL_IDS["student_contacts"]
    assert kept(warehouse, "contacts") == ALL_IDS["contacts"]
    assert kept(warehouse, "demographics") == ALL_IDS["demographics"]


def test_drops_cascade_from_course_to_classes_to_enrollments(warehouse, tmp_path):
    report = run(warehouse, tmp_path, filters={"courses": only("title", "equals", " math")})
    assert kept(warehouse, "courses") == ["c1"]
    assert kept(warehouse, "classes") == ["k1"]
    assert kept(warehouse, "enrollments") == ["e1", "e2"]
    assert report.entities["classes"].dropped == {"linked courses dropped": 1}
    assert report.entities["enrollments"].dropped == {"linked classes dropped": 3}
    assert kept(warehouse, "students") == ALL_IDS["students"], "people are not dropped by their classes"


def test_a_kept_class_keeps_its_enrollments(warehouse, tmp_path):
    filters = {"classes": only("title", "equals", "Painting"), "enrollments": only("role", "equals", "student")}
    report = run(warehouse, tmp_path, filters=filters)
    assert kept(warehouse, "classes") == ["k2"]
    assert kept(warehouse, "enrollments") == ["e3", "e4", "e5"], "e4 (an aide) is kept by its class; e1 goes with k1"
    assert report.entities["enrollments"].dropped == {"linked classes dropped": 2}


def test_only_records_that_belong_to_a_kept_record_are_kept_by_it(warehouse, tmp_path):
    filters = {"courses": only("title", "equals", "Art"), "classes": only("title", "equals", "no such class"),
               "enrollments": only("role", "equals", "no such role")}
    report = run(warehouse, tmp_path, filters=filters)
    assert kept(warehouse, "classes") == [], "a class stands on its own: its course does not keep it"
    assert kept(warehouse, "enrollments") == []
    assert report.entities["classes"].dropped == {"filter rules": 1, "linked courses dropped": 1}


def test_only_an_entity_with_rules_keeps_its_linked_records(warehouse, tmp_path):
    report = run(warehouse, tmp_path, filters={"enrollments": only("role", "equals", "STUDENT")})
    assert kept(warehouse, "enrollments") == ["e1", "e3", "e5"]
    assert report.entities["enrollments"].dropped == {"filter rules": 2}


def test_dropping_wins_over_a_kept_link(warehouse, tmp_path):
    filters = {"classes": only("title", "equals", "Painting"), "enrollments": only("role", "equals", "student"),
               "students": only("grades", "equals", "10")}
    report = run(warehouse, tmp_path, filters=filters)
    assert kept(warehouse, "enrollments") == ["e4", "e5"], "e3's student was dropped, though its class was kept"
    assert report.entities["enrollments"].dropped == {"linked classes dropped": 2, "linked students dropped": 1}


def test_without_include_linked_a_kept_class_does_not_keep_its_enrollments(warehouse, tmp_path):
    filters = {"classes": only("title", "equals", "Painting", include_linked=False),
               "enrollments": only("role", "equals", "student")}
    report = run(warehouse, tmp_path, filters=filters)
    assert kept(warehouse, "enrollments") == ["e1", "e3", "e5"], "k1's drop does not carry, k2 keeps nothing"
    assert report.entities["enrollments"].dropped == {"filter rules": 2}


def test_a_dropped_school_leaves_lists_and_primary_schools(warehouse, tmp_path):
    report = run(warehouse, tmp_path, filters={"schools": only("name", "equals", "lincoln")})
    assert kept(warehouse, "schools") == ["s1"]
    assert kept(warehouse, "students") == ["u1", "u2"]
    assert kept(warehouse, "students", "school_sis_ids") == [["s1"], ["s1"]]
    assert kept(warehouse, "students", "primary_school_sis_id") == ["s1", None]
    assert report.entities["students"].dropped == {"linked schools dropped": 1}
    assert kept(warehouse, "staff") == ["p1"]
    assert kept(warehouse, "courses") == ["c1"]
    assert kept(warehouse, "classes") == ["k1"]
    assert kept(warehouse, "enrollments") == ["e1", "e2"]
    assert report.entities["enrollments"].dropped == {"linked classes dropped": 3}


def test_a_school_that_does_not_include_linked_leaves_lists_alone(warehouse, tmp_path):
    run(warehouse, tmp_path, filters={"schools": only("name", "equals", "lincoln", include_linked=False)})
    assert kept(warehouse, "schools") == ["s1"]
    assert kept(warehouse, "students", "school_sis_ids") == [["s1"], ["s1", "s2"], ["s2"]]
    assert kept(warehouse, "students", "primary_school_sis_id") == ["s1", "s2", "s2"]
    assert kept(warehouse, "enrollments") == ALL_IDS["enrollments"]


def test_a_list_keeps_unknown_and_null_ids_and_an_empty_list_drops_nothing(warehouse, tmp_path):
    put(warehouse, "students", [
        {"sis_id": "u1", "school_sis_ids": ["s2", "s-unknown"]},
        {"sis_id": "u2", "school_sis_ids": [None, "s2"], "primary_school_sis_id": "s-unknown"},
        {"sis_id": "u3", "school_sis_ids": []},
        {"sis_id": "u4", "school_sis_ids": None},
    ])
    run(warehouse, tmp_path, filters={"schools": only("name", "equals", "lincoln")})
    assert kept(warehouse, "students", "school_sis_ids") == [["s-unknown"], [None], [], None]
    assert kept(warehouse, "students", "primary_school_sis_id") == [None, "s-unknown", None, None]


def test_a_kept_school_does_not_overrule_its_students_own_rules(warehouse, tmp_path):
    filters = {"schools": only("name", "equals", "Lincoln"), "students": only("grades", "equals", "11")}
    run(warehouse, tmp_path, filters=filters)
    assert kept(warehouse, "students") == []
    put(warehouse, "students", [{"sis_id": "u1", "grades": ["09"], "primary_school_sis_id": "s1"},
                                {"sis_id": "u2", "grades": ["09"], "primary_school_sis_id": "s2"}])
    run(warehouse, tmp_path, filters={"schools": only("name", "equals", "Lincoln"), "students": only("grades", "equals", "09")})
    assert kept(warehouse, "students") == ["u1", "u2"], "a dropped primary school is cleared, not a reason to drop"


def test_dropped_terms_leave_class_term_lists_but_not_their_child_terms(warehouse, tmp_path):
    report = run(warehouse, tmp_path, filters={"terms": only("end_date", "is_future")})
    assert kept(warehouse, "terms") == ["t2", "y1"], "the day of the sync decides; Fall ended"
    assert kept(warehouse, "classes", "term_sis_ids") == [["t2"]]
    assert report.entities["classes"].dropped == {"linked terms dropped": 1}
    assert kept(warehouse, "courses") == ["c1", "c2"]
    run(warehouse, tmp_path, filters={"terms": only("title", "not_equals", "2025-2026")})
    assert kept(warehouse, "terms") == ["t1", "t2"]
    assert kept(warehouse, "courses") == [], "their school year was dropped"


def test_a_reference_to_an_unknown_record_is_left_alone(warehouse, tmp_path):
    put(warehouse, "enrollments", [{"sis_id": "e9", "user_sis_id": "nobody", "class_sis_id": "no class",
                                    "school_sis_id": "no school", "role": "student"}])
    run(warehouse, tmp_path, filters={"classes": only("title", "equals", "Algebra"),
                                      "students": only("grades", "equals", "09")},
        advanced={"staff_scope": "active_teachers_only"})
    assert kept(warehouse, "enrollments") == ["e9"]


def test_hostile_ids_and_values_are_safe(warehouse, tmp_path):
    hostile = "k'\"; DROP TABLE x; -- ünï %_"
    put(warehouse, "classes", [{"sis_id": hostile, "title": "O'Neil \"%_\" ünï"}, {"sis_id": "k2", "title": "Other"}])
    put(warehouse, "enrollments", [{"sis_id": "e1", "class_sis_id": hostile, "role": "student"},
                                   {"sis_id": "e2", "class_sis_id": "k2", "role": "student"}])
    run(warehouse, tmp_path, filters={"classes": only("title", "contains", "\"%_\" ÜNÏ")})
    assert kept(warehouse, "classes") == [hostile]
    assert kept(warehouse, "enrollments") == ["e1"]


def test_a_record_without_an_id_is_filtered_like_any_other(warehouse, tmp_path):
    put(warehouse, "courses", [{"sis_id": None, "title": "Art"}, {"sis_id": "c1", "title": "Math"}])
    run(warehouse, tmp_path, filters={"courses": only("title", "equals", "Math")})
    assert kept(warehouse, "courses") == ["c1"]
    run(warehouse, tmp_path, filters={"courses": only("title", "equals", "Art")})
    assert kept(warehouse, "courses") == [None]


def test_re_running_gives_the_same_tables_report_and_issues(warehouse, tmp_path):
    settings = {"filters": {"students": only("grades", "equals", "09")}, "advanced": {"sync_emergency_contacts": False}}
    first = run(warehouse, tmp_path, **settings)
    tables = {entity: kept(warehouse, entity) for entity in ENTITIES}
    raised = issues(warehouse)
    assert run(warehouse, tmp_path, **settings) == first
    assert {entity: kept(warehouse, entity) for entity in ENTITIES} == tables
    assert issues(warehouse) == raised and len(raised) == 11


def test_a_crash_leaves_the_previous_tables(warehouse, tmp_path):
    run(warehouse, tmp_path)
    with warehouse.writing() as con:
        con.execute(f"ALTER TABLE {stage_table('mapped', 'sis', 'enrollments')} DROP COLUMN role")
    with pytest.raises(duckdb.Error):
        run(warehouse, tmp_path, filters={"schools": only("name", "equals", "Lincoln")})
    assert kept(warehouse, "schools") == ["s1", "s2"]
    assert kept(warehouse, "students") == ALL_IDS["students"]


def test_a_source_without_guardian_links_raises_an_issue_per_contact(warehouse, tmp_path):
    """Issue 8, failure 10: a source sending no guardian links lost all its parents in staging
    with no issue raised; the reason was only in the asset's metadata."""
    put(warehouse, "student_contacts", [])
    report = run(warehouse, tmp_path)
    assert kept(warehouse, "contacts") == []
    assert issues(warehouse) == [("contacts", f"g{n}", None, "no_linked_student", "Skipped",
                                  "no linked student is synced: the contact is left out") for n in (1, 2, 3, 4)]
    assert report.entities["contacts"].dropped == {"no linked student": 4}


def test_every_record_left_out_has_an_issue_saying_why(warehouse, tmp_path, readme):
    grade = {"attribute": "grades", "operator": "equals", "value": "09"}
    students = {"rules": [{"name": "high school", "when": [grade]}, {"when": [{**grade, "value": "12"}]},
                          {"name": "eighth graders of Lincoln Middle", "when": [{**grade, "value": "08"}]}]}
    report = run(warehouse, tmp_path, advanced={"staff_scope": "active_teachers_only", "sync_emergency_contacts": False},
                 filters={"students": students, "schools": only("name", "equals", "Lincoln")})
    found = issues(warehouse)
    assert all(severity == "Skipped" for *_, severity, _ in found)
    by_rule = {}
    for entity, _, _, rule, _, _ in found:
        by_rule[entity, rule] = by_rule.get((entity, rule), 0) + 1
    dropped = {(entity, reason): n for entity, counts in report.entities.items() for reason, n in counts.dropped.items()}
    assert sorted(by_rule.values()) == sorted(dropped.values()) and sum(by_rule.values()) == len(found)
    assert {(entity, rule.removesuffix(" (Skipped)")): n for entity, counts in report.entities.items()
            for rule, n in counts.issues.items()} == by_rule
    messages = {(entity, record): (attribute, rule, message) for entity, record, attribute, rule, _, message in found}
    assert messages["staff", "p2"] == (
        None, "staff_scope", "teaches no class (staff_scope: active_teachers_only): the record is left out")
    assert messages["student_contacts", "l2"] == (None, "emergency_contacts", (
        "not custodial, nor to a parent or guardian (sync_emergency_contacts: false): the record is left out"))
    assert messages["students", "u2"] == (None, "filter_rules", (
        "matches no filter rule of students (high school, eighth graders of Lincoln Middle): the record is left out"))
    assert messages["students", "u3"] == ("school_sis_ids", "include_linked",
                                          "every one of school_sis_ids is filtered out of schools: the record is left out")
    assert messages["enrollments", "e3"] == ("class_sis_id", "include_linked",
                                             "class_sis_id 'k2' is filtered out of classes: the record is left out")
    assert messages["contacts", "g3"] == (None, "no_linked_student", "no linked student is synced: the contact is left out")
    assert all(messages[record][-1] in readme for record in (
        ("staff", "p2"), ("students", "u2"), ("enrollments", "e3"), ("contacts", "g3")))


def test_decisions_do_not_rest_on_unknown_entities(warehouse, tmp_path, extracted):
    """Enrollments failed, contacts absent, contact links still running: a staff member's own role
    decides, only custody makes a guardian's link, and no contact is dropped for want of a link."""
    put(warehouse, "student_contacts", [])
    extracted(warehouse, ["enrollments"], run_id="run-0", status="failed", started_at=datetime(2026, 9, 2))
    extracted(warehouse, ["contacts"], run_id="run-0", status="absent", started_at=datetime(2026, 9, 2))
    extracted(warehouse, ["student_contacts"], run_id="run-0", status="running", started_at=datetime(2026, 9, 2))
    report = run(warehouse, tmp_path, advanced={"staff_scope": "active_teachers_only", "sync_emergency_contacts": False})
    assert kept(warehouse, "staff") == ["p2"], "p2's role is teacher"
    assert kept(warehouse, "contacts") == ALL_IDS["contacts"]
    assert [(entity, record, rule) for entity, record, _, rule, *_ in issues(warehouse)] == [
        ("enrollments", "e2", "include_linked"), ("staff", "p1", "staff_scope")]
    assert issues(warehouse)[1][-1] == "role is not teacher (staff_scope: active_teachers_only): the record is left out"
    assert report.facts["unknown entities"] == (
        "contacts (not provided by the source (absent in run 'run-0')); "
        "student_contacts (latest extraction (run 'run-0') not complete: 1 running, of 1 scope); "
        "enrollments (latest extraction (run 'run-0') not complete: 1 failed, of 1 scope)")


def test_a_message_shows_a_hostile_value_as_text(warehouse, tmp_path):
    hostile = "k'\"; DROP TABLE x; -- ünï %_"
    put(warehouse, "classes", [{"sis_id": hostile, "title": "Art"}])
    put(warehouse, "enrollments", [{"sis_id": "e1", "class_sis_id": hostile, "role": "student"}])
    run(warehouse, tmp_path, filters={"classes": only("title", "equals", "Math")})
    assert [message for entity, *_, message in issues(warehouse) if entity == "enrollments"] == [
        f"class_sis_id '{hostile}' is filtered out of classes: the record is left out"]
