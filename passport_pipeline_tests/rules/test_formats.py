"""Format checks: each pandera model's checks on valid and invalid values, validated as distinct
values in chunks and joined back to the records, hostile values included."""

from __future__ import annotations

import pytest

from passport_pipeline.entities import ENTITIES, TEXT_LIST
from passport_pipeline.rules import formats
from passport_pipeline.rules.formats import MODELS, date_order_findings, format_findings
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.sql import ident

HOSTILE = ["x'); DROP TABLE students; --", 'say "hi"', "Ærøskøbing ✓", "$1", "\u00a0active"]

CASES = {
    ("schools", "status"): (["active", "tobedeleted", "  active\t"], ["Active", "inactive", "deleted", *HOSTILE[:4]]),
    ("schools", "org_type"): (["district", "school", "department", "local", "state", "national"],
                              ["School", "campus", "org"]),
    ("terms", "term_type"): (["schoolYear", "semester", "term", "gradingPeriod"], ["schoolyear", "quarter"]),
    ("terms", "start_date"): (["2026-08-24", "2024-02-29"], ["2026-08-24T00:00:00", "2026-13-01", "2025-02-29",
                                                            "2026-8-24", "08/24/2026"]),
    ("terms", "school_year"): (["2027"], ["27", "2026-2027", "２０２７"]),
    ("courses", "grades"): (["IT", "PR", "PK", "TK", "KG", "01", "09", "12", "13", "PS", "UG", "Other"],
                            ["K", "Grade 6", "kg", "1", "14", "00", "other"]),
    ("classes", "class_type"): (["homeroom", "scheduled"], ["Homeroom", "lab"]),
    ("students", "email"): (["ann.lee+math@students.district.k12.us", "o'brien@school.org", "A.B@X.ORG",
                             "andrés.allen@example.org", "用户@例子.广告", "чебурашка@ящик-с-апельсинами.рф",
                             "x@xn--bcher-kva.de"],
                            ["bad@", "no-at.org", "ann@localhost", "ann lee@school.org", "ann@@school.org",
                             "ann@school..org", "ann@school.org\nbcc:x@y.org", "ann\u00a0lee@school.org",
                             "ann@school\u3000x.org", "ann@-school.org", "ann@例子。广告", "andrés"]),
    ("students", "enabled_user"): (["true", "false"], ["True", "yes", "1", "t"]),
    ("students", "grad_year"): (["2038"], ["38", "class of 2038"]),
    ("students", "birth_date"): (["2015-02-28", "1900-01-01"], ["1899-12-31", "2999-01-01", "2021-02-29",
                                                             "02/03/2015", "2015-2-3"]),
    ("staff", "role"): (["teacher", "administrator", "aide", "counselor", "principal", "proctor",
                         "siteAdministrator", "districtAdministrator", "systemAdministrator"],
                        ["Teacher", "librarian", "student", "parent"]),
    ("contacts", "role"): (["parent", "guardian", "relative"], ["mother", "Guardian", "teacher"]),
    ("student_contacts", "custodial"): (["true", "false"], ["TRUE", "no"]),
    ("enrollments", "role"): (["student", "teacher", "administrator", "aide", "proctor"], ["Student", "guardian"]),
    ("enrollments", "primary"): (["true", "false"], ["Y"]),
    ("enrollments", "end_date"): (["2027-06-04"], ["2027-06-31"]),
    ("demographics", "sex"): (["male", "female", "other", "unspecified"], ["M", "F", "Male", "x"]),
    ("demographics", "hispanic_or_latino_ethnicity"): (["true", "false"], ["unknown"]),
}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    with Warehouse(tmp_path_factory.mktemp("formats") / "warehouse.duckdb") as wh:
        yield wh


def records(con, entity: str, rows: list[dict]) -> str:
    """A temporary table of ``entity`` holding ``rows`` (missing columns NULL); its quoted name."""
    columns = ENTITIES[entity].all_columns
    con.execute(f"CREATE OR REPLACE TEMP TABLE records ({', '.join(f'{ident(c)} {k}' for c, k in columns.items())})")
    for row in rows:
        con.execute(f"INSERT INTO records ({', '.join(ident(c) for c in row)}) VALUES ({', '.join('?' * len(row))})",
                    list(row.values()))
    return "records"


def findings(con, queries) -> list[tuple]:
    return sorted(row for select, params in queries for row in con.execute(select, params).fetchall())


def flagged(warehouse, entity: str, attribute: str, values: list) -> dict[str, str]:
    """Record id -> message of the format findings of one record per value."""
    with warehouse.writing() as con:
        table = records(con, entity, [{"sis_id": f"r{i}", attribute: value} for i, value in enumerate(values)])
        found = findings(con, format_findings(con, entity, table))
    assert all(rule == "format" and severity == "Error" and attr == attribute for _, attr, rule, severity, _ in found)
    return {record: message for record, _, _, _, message in found}


@pytest.mark.parametrize(("entity", "attribute"), list(CASES))
def test_each_check_passes_valid_and_flags_invalid_values(warehouse, entity, attribute):
    valid, invalid = CASES[entity, attribute]
    listed = ENTITIES[entity].all_columns[attribute] == TEXT_LIST
    values = [[v] if listed else v for v in valid + invalid]
    found = flagged(warehouse, entity, attribute, values)
    assert set(found) == {f"r{i}" for i in range(len(valid), len(values))}


def test_every_entity_has_a_model_of_its_own_columns():
    assert set(MODELS) == set(ENTITIES)
    for entity, model in MODELS.items():
        assert set(model.to_schema().columns) <= set(ENTITIES[entity].all_columns), entity


def test_missing_values_are_not_format_errors(warehouse):
    assert flagged(warehouse, "students", "email", [None, "", "   ", "\t\n", "\u00a0"]) == {}
    assert flagged(warehouse, "students", "grades", [None, [], [None], ["", "  "]]) == {}


def test_message_names_the_attribute_the_value_and_what_it_should_be(warehouse):
    found = flagged(warehouse, "students", "enabled_user", ["yes", "x'); DROP TABLE students; --"])
    assert found == {"r0": "enabled_user 'yes' is not one of true, false: the record is kept",
                     "r1": "enabled_user 'x'); DROP TABLE students; --' is not one of true, false: the record is kept"}
    found = flagged(warehouse, "students", "birth_date", ["1850-01-01"])
    assert found["r0"].startswith("birth_date '1850-01-01' is not a date written YYYY-MM-DD from 1900-01-01 to today")


def test_a_long_value_is_cut_in_the_message(warehouse):
    found = flagged(warehouse, "students", "email", ["é" * 300])
    assert found["r0"] == f"email '{'é' * 100}…' is not an e-mail address: the record is kept"


def test_values_are_checked_trimmed(warehouse):
    assert flagged(warehouse, "schools", "status", [" active ", "\tactive\n", "act ive"]) == {"r2": (
        "status 'act ive' is not one of active, tobedeleted: the record is kept")}


def test_each_list_element_is_checked_and_a_record_gets_one_finding(warehouse):
    found = flagged(warehouse, "students", "grades", [["09", "10"], ["K", "09", "Grade 1", " "], ["KG", None, "05"]])
    assert found == {"r1": "grades 'Grade 1' is not one of IT, PR, PK, TK, KG, 01, 02, 03, 04, 05, 06, 07, 08, 09,"
                           " 10, 11, 12, 13, PS, UG, Other (and 1 more): the record is kept"}


def test_records_sharing_a_bad_value_each_get_a_finding(warehouse):
    assert set(flagged(warehouse, "contacts", "role", ["mother", "parent", "mother", " mother "])) == {"r0", "r2", "r3"}


def test_chunks_give_the_same_findings_as_one_pass(warehouse, monkeypatch):
    values = [f"user{i}@school.org" if i % 3 else f"user{i} at school" for i in range(20)]
    whole = flagged(warehouse, "staff", "email", values)
    monkeypatch.setattr(formats, "VALUES_PER_CHUNK", 3)
    assert flagged(warehouse, "staff", "email", values) == whole
    assert len(whole) == 7


def test_every_checked_column_of_a_record_is_reported(warehouse):
    with warehouse.writing() as con:
        table = records(con, "enrollments", [
            {"sis_id": "e1", "status": "active", "role": "student", "primary": "false", "begin_date": "2026-08-24"},
            {"sis_id": "e2", "status": "gone", "role": "pupil", "primary": "no", "begin_date": "24.08.2026",
             "date_last_modified": "later"},
        ])
        found = findings(con, format_findings(con, "enrollments", table))
    assert [(record, attribute) for record, attribute, *_ in found] == [
        ("e2", "begin_date"), ("e2", "primary"), ("e2", "role"), ("e2", "status")]


def test_an_empty_table_has_no_findings(warehouse):
    with warehouse.writing() as con:
        assert format_findings(con, "demographics", records(con, "demographics", [])) == []


def test_an_end_before_its_start_is_reported(warehouse):
    with warehouse.writing() as con:
        table = records(con, "enrollments", [
            {"sis_id": "e1", "begin_date": "2026-08-24", "end_date": "2026-07-25"},
            {"sis_id": "e2", "begin_date": "2026-08-24", "end_date": "2026-08-24"},
            {"sis_id": "e3", "begin_date": "2026-08-24", "end_date": "2027-06-04"},
            {"sis_id": "e4", "begin_date": "2026-08-24", "end_date": None},
            {"sis_id": "e5", "begin_date": "2026-02-30", "end_date": "2026-01-01"},
            {"sis_id": "e6", "begin_date": " 2026-08-24 ", "end_date": "2026-08-01 "},
        ])
        found = findings(con, date_order_findings("enrollments", table))
        assert date_order_findings("students", table) == []
    assert found == [
        ("e1", "end_date", "date_order", "Error",
         "end_date '2026-07-25' is before begin_date '2026-08-24': the record is kept"),
        ("e6", "end_date", "date_order", "Error",
         "end_date '2026-08-01 ' is before begin_date ' 2026-08-24 ': the record is kept"),
    ]


def test_internationalized_addresses_are_addresses_in_both_engines(warehouse):
    """Issue 8, failure 10: a server's students with accented local parts (valid under RFC 6531)
    were each given a format Error. DuckDB's regular expressions (the benchmark's baseline) agree."""
    addresses = ["andrés.allen7@example.org", "zoë.o'neil@lincoln.k12.wa.us", "björn@exämple.de"]
    assert flagged(warehouse, "students", "email", addresses) == {}
    with warehouse.writing() as con:
        assert con.execute("SELECT bool_and(regexp_full_match(v, ?)) FROM unnest(?) AS t(v)",
                           [formats.EMAIL, addresses]).fetchone() == (True,)
