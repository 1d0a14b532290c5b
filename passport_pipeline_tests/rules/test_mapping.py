"""The mapped stage: newest record per id, attribute mapping, SIS ID prefix, schools mapping applied."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from passport_pipeline.config import CsvBundleSource
from passport_pipeline.entities import ENTITIES, TEXT_LIST
from passport_pipeline.rules import mapping
from passport_pipeline.rules.mapping import map_attributes
from passport_pipeline.rules.schools import map_schools
from passport_pipeline.rules.tables import stage_table, staging_columns
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.raw import ensure_raw_table
from passport_pipeline.warehouse.sql import ident

T0 = datetime(2026, 9, 1)
HOSTILE = "x'); DROP TABLE sync.issues; -- \"$prefix\" École 学校"

IDS = {
    "schools": ["sis_id", "parent_sis_id"],
    "terms": ["sis_id", "parent_sis_id"],
    "courses": ["sis_id", "school_sis_id", "school_year_sis_id"],
    "classes": ["sis_id", "course_sis_id", "school_sis_id", "term_sis_ids"],
    "students": ["sis_id", "school_sis_ids", "primary_school_sis_id"],
    "staff": ["sis_id", "school_sis_ids", "primary_school_sis_id"],
    "contacts": ["sis_id"],
    "student_contacts": ["sis_id", "student_sis_id", "contact_sis_id"],
    "enrollments": ["sis_id", "user_sis_id", "class_sis_id", "school_sis_id"],
    "demographics": ["sis_id"],
}
"""Every id and reference the prefix applies to, written out (not derived from the code under test)."""


@pytest.fixture
def warehouse(tmp_path):
    with Warehouse(tmp_path / "warehouse.duckdb") as opened:
        yield opened


def source(tmp_path, schools=None, prefix="p-", **settings):
    mode = {"mode": "explicit", "schools": schools} if schools else {"mode": "auto"}
    return CsvBundleSource(name="sis", path=tmp_path, sis_id_prefix=prefix, advanced={"schools_mapping": mode}, **settings)


def land(warehouse, entity, *records, extracted_at=T0, scope="*"):
    """Raw rows of ``entity``: dicts of columns; the payload is the record as JSON unless given."""
    table = ensure_raw_table(warehouse, "sis", entity)
    columns = list(ENTITIES[entity].all_columns)
    names = ", ".join(ident(c) for c in [*columns, "payload", "scope", "extracted_at"])
    rows = [[r.get(c) for c in columns] + [json.dumps(r.get("payload", r)), scope, extracted_at] for r in records]
    with warehouse.writing() as con:
        con.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * (len(columns) + 3))})", rows)


def run(warehouse, src, run_id="r1"):
    map_schools(warehouse, src, run_id)
    return map_attributes(warehouse, src, run_id)


def rows(warehouse, entity, *columns) -> list:
    """The mapped rows of ``entity`` (the given columns, or all), by id."""
    selected = ", ".join(ident(c) for c in columns or staging_columns(entity))
    table = stage_table("mapped", "sis", entity)
    found = warehouse.reading().execute(f"SELECT {selected} FROM {table} ORDER BY sis_id, {selected}").fetchall()
    return [row[0] for row in found] if len(columns) == 1 else found


def test_every_entity_gets_a_table_of_the_staging_columns_even_with_nothing_landed(warehouse, tmp_path):
    report = run(warehouse, source(tmp_path))
    assert list(report.entities) == [e for e in mapping.ORDER]
    for entity in ENTITIES:
        described = warehouse.reading().execute(f"DESCRIBE {stage_table('mapped', 'sis', entity)}").fetchall()
        assert [(name, kind) for name, kind, *_ in described] == list(staging_columns(entity).items())
        assert (report.entities[entity].rows_in, report.entities[entity].rows_out) == (0, 0)


def test_only_the_entities_of_the_source_are_mapped(warehouse, tmp_path):
    report = run(warehouse, source(tmp_path, entities=["students", "schools"]))
    assert list(report.entities) == ["schools", "students"]


def test_the_newest_version_of_each_record_is_kept_and_older_ones_counted(warehouse, tmp_path):
    land(warehouse, "students",
         {"sis_id": "s1", "given_name": "Old", "date_last_modified": "2026-01-01T00:00:00Z"},
         {"sis_id": "s1", "given_name": "New", "date_last_modified": "2026-03-01T10:00:00+02:00"},
         {"sis_id": "s1", "given_name": "Unreadable date", "date_last_modified": "yesterday"},
         {"sis_id": "s2", "given_name": "First pull", "date_last_modified": "2026-01-01"},
         {"sis_id": None, "given_name": "No id one"}, {"sis_id": None, "given_name": "No id two"})
    land(warehouse, "students", {"sis_id": "s2", "given_name": "Second pull", "date_last_modified": "2026-01-01"},
         extracted_at=datetime(2026, 9, 2))
    report = run(warehouse, source(tmp_path))
    assert rows(warehouse, "students", "given_name") == ["New", "Second pull", "No id one", "No id two"]
    counts = report.entities["students"]
    assert (counts.rows_in, counts.rows_out, counts.dropped) == (7, 4, {"duplicate rows": 3})


def test_ties_are_broken_by_the_values_never_by_row_order(tmp_path):
    versions = [{"sis_id": "s1", "given_name": name, "date_last_modified": "2026-01-01"} for name in ("Ann", "Bea")]
    kept = []
    for order in (versions, versions[::-1]):
        with Warehouse(tmp_path / f"w{len(kept)}.duckdb") as warehouse:
            for scope in ("school-a", "school-b"):
                land(warehouse, "students", *order, scope=scope)
            run(warehouse, source(tmp_path))
            kept.append(rows(warehouse, "students"))
    assert kept[0] == kept[1] and len(kept[0]) == 1


def test_attribute_mapping_defaults_and_configured_expressions(warehouse, tmp_path):
    land(warehouse, "students", {
        "sis_id": "s1", "given_name": "  Ann\t", "family_name": HOSTILE, "email": " ANN@X.ORG ",
        "identifier": "", "username": None, "phone": "(555) 010-2030", "birth_date": "09/30/2012",
        "payload": {"extra": {"code": "c'7"}, "metadata": {"district.id": "ignored", "nick": "Annie"}},
    })
    attributes = {"students": {
        "username": {"default": {"of": "username", "value": HOSTILE}},
        "identifier": {"coalesce": ["identifier", "payload.extra.code"]},
        "preferred_first_name": "metadata.nick",
        "phone": {"regex_replace": {"of": "phone", "pattern": "[^0-9]"}},
        "birth_date": {"date": {"of": "birth_date", "format": "%m/%d/%Y"}},
        "state_id": {"concat": [{"value": "ST-"}, {"upper": "family_name"}]},
    }}
    run(warehouse, source(tmp_path, attributes=attributes))
    [row] = rows(warehouse, "students", "given_name", "family_name", "email", "username", "identifier",
                 "preferred_first_name", "phone", "birth_date", "state_id")
    assert row == ("Ann", HOSTILE, "ann@x.org", HOSTILE, "c'7", "Annie", "5550102030", "2012-09-30",
                   "ST-" + HOSTILE.upper())


def test_the_payload_is_read_only_when_an_expression_needs_it(warehouse, tmp_path, monkeypatch):
    read = {}

    def spy(table, columns):
        read[table] = columns
        return original(table, columns)

    original = mapping.newest_records
    monkeypatch.setattr(mapping, "newest_records", spy)
    for entity in ("staff", "students"):
        land(warehouse, entity, {"sis_id": "u1", "payload": {"role": "teacher"}})
    run(warehouse, source(tmp_path, attributes={"staff": {"role": "payload.role"}}))
    assert "payload" in read['"raw"."sis__staff"'] and "payload" not in read['"raw"."sis__students"']
    assert [table for table, columns in read.items() if "payload" in columns] == ['"raw"."sis__staff"']


def test_the_prefix_goes_on_every_id_and_reference_and_nothing_else(warehouse, tmp_path):
    for entity, spec in ENTITIES.items():
        land(warehouse, entity, {c: [f"{c} 1", f"{c} 2"] if k == TEXT_LIST else f"{c} value"
                                 for c, k in spec.all_columns.items()})
    prefix = "q'\"$1;"
    run(warehouse, source(tmp_path, prefix=prefix))
    for entity, spec in ENTITIES.items():
        [row] = rows(warehouse, entity)
        mapped = dict(zip(staging_columns(entity), row))
        expected = {"source": "sis"}
        for c, kind in spec.all_columns.items():
            value = [f"{c} 1", f"{c} 2"] if kind == TEXT_LIST else f"{c} value"
            if c in IDS[entity]:
                value = [prefix + v for v in value] if kind == TEXT_LIST else prefix + value
            expected[c] = value
        assert mapped == expected, entity


def test_ids_are_kept_as_sent_null_stays_null_and_empty_stays_empty(warehouse, tmp_path):
    land(warehouse, "enrollments",
         {"sis_id": " e1 ", "user_sis_id": "", "class_sis_id": None, "school_sis_id": HOSTILE},
         {"sis_id": "", "user_sis_id": "Ünï", "class_sis_id": "c1"})
    land(warehouse, "students", {"sis_id": "s1", "school_sis_ids": ["", None, " a"]})
    run(warehouse, source(tmp_path))
    assert rows(warehouse, "enrollments", "sis_id", "user_sis_id", "class_sis_id", "school_sis_id") == [
        ("", "p-Ünï", "p-c1", None), ("p- e1 ", "", None, "p-" + HOSTILE)]
    assert rows(warehouse, "students", "school_sis_ids") == [["", None, "p- a"]]


@pytest.fixture
def district(warehouse):
    """Schools A and B (merged into one), C (unmapped), E (an existing Passport school), a district
    org; records in each, and records linked to them."""
    land(warehouse, "schools",
         {"sis_id": "D", "name": "District", "org_type": "district"},
         {"sis_id": "B", "name": "West", "identifier": "id-B", "org_type": "school", "parent_sis_id": "D"},
         {"sis_id": "A", "name": "East", "identifier": "id-A", "org_type": "school", "parent_sis_id": "D"},
         {"sis_id": "C", "name": "Unlisted", "org_type": "school"},
         {"sis_id": "E", "name": "  Existing  ", "org_type": "school"})
    land(warehouse, "courses", *({"sis_id": f"c{s}", "school_sis_id": s} for s in ("A", "B", "C", None, "X")))
    land(warehouse, "classes", *({"sis_id": f"k{s}", "school_sis_id": s} for s in ("A", "B", "C")))
    land(warehouse, "students",
         {"sis_id": "s1", "school_sis_ids": ["B", "A"], "primary_school_sis_id": "B"},
         {"sis_id": "s2", "school_sis_ids": ["C"], "primary_school_sis_id": "C"},
         {"sis_id": "s3", "school_sis_ids": ["C", "E"], "primary_school_sis_id": "C"},
         {"sis_id": "s4", "school_sis_ids": []}, {"sis_id": "s5"},
         {"sis_id": "s6", "school_sis_ids": ["X"], "primary_school_sis_id": "X"})
    land(warehouse, "staff", {"sis_id": "t1", "school_sis_ids": ["C"]}, {"sis_id": "t2", "school_sis_ids": ["A"]})
    land(warehouse, "enrollments",
         {"sis_id": "e1", "user_sis_id": "s1", "class_sis_id": "kA", "school_sis_id": "A"},
         {"sis_id": "e2", "user_sis_id": "s2", "class_sis_id": "kA", "school_sis_id": "A"},
         {"sis_id": "e3", "user_sis_id": "t1", "class_sis_id": "kA", "school_sis_id": "A"},
         {"sis_id": "e4", "user_sis_id": "s1", "class_sis_id": "kC", "school_sis_id": "C"},
         {"sis_id": "e5", "user_sis_id": "s1", "class_sis_id": "kC", "school_sis_id": None},
         {"sis_id": "e6", "user_sis_id": "nobody", "class_sis_id": "kA", "school_sis_id": "A"},
         {"sis_id": "e7", "user_sis_id": "s1", "class_sis_id": "kB", "school_sis_id": "B"})
    land(warehouse, "contacts", *({"sis_id": g} for g in ("g1", "g2", "g3")))
    land(warehouse, "student_contacts",
         {"sis_id": "l1", "student_sis_id": "s2", "contact_sis_id": "g1"},
         {"sis_id": "l2", "student_sis_id": "s2", "contact_sis_id": "g2"},
         {"sis_id": "l3", "student_sis_id": "s1", "contact_sis_id": "g2"},
         {"sis_id": "l4", "student_sis_id": "s1", "contact_sis_id": None})
    land(warehouse, "demographics", *({"sis_id": s} for s in ("s1", "s2", "ghost")))
    return warehouse


EXPLICIT = {"A": "North", "B": "North", "E": {"existing": "P-9"}, "Z": "Gone"}


def test_explicit_mapping_drops_unmapped_schools_and_what_is_linked_to_them(district, tmp_path):
    report = run(district, source(tmp_path, EXPLICIT))
    assert rows(district, "courses", "sis_id", "school_sis_id") == [
        ("p-cA", "p-A"), ("p-cB", "p-A"), ("p-cNone", None), ("p-cX", "p-X")]
    assert rows(district, "classes", "sis_id", "school_sis_id") == [("p-kA", "p-A"), ("p-kB", "p-A")]
    assert rows(district, "students", "sis_id", "school_sis_ids", "primary_school_sis_id") == [
        ("p-s1", ["p-A"], "p-A"), ("p-s3", ["p-E"], None), ("p-s4", [], None), ("p-s5", None, None),
        ("p-s6", ["p-X"], "p-X")]
    assert rows(district, "staff", "sis_id") == ["p-t2"]
    assert rows(district, "enrollments", "sis_id", "school_sis_id") == [
        ("p-e1", "p-A"), ("p-e6", "p-A"), ("p-e7", "p-A")]
    assert rows(district, "student_contacts", "sis_id") == ["p-l3", "p-l4"]
    assert rows(district, "contacts", "sis_id") == ["p-g2", "p-g3"]
    assert rows(district, "demographics", "sis_id") == ["p-ghost", "p-s1"]
    dropped = {entity: counts.dropped for entity, counts in report.entities.items() if counts.dropped}
    assert dropped == {
        "schools": {"merged into one Passport school": 1, "unmapped school": 1},
        "courses": {"unmapped school": 1},
        "classes": {"unmapped school": 1},
        "students": {"unmapped school": 1},
        "staff": {"unmapped school": 1},
        "student_contacts": {"linked to unmapped school": 2},
        "contacts": {"linked to unmapped school": 1},
        "enrollments": {"linked to unmapped school": 3, "unmapped school": 1},
        "demographics": {"linked to unmapped school": 1},
    }
    assert all(c.rows_in - c.rows_out == sum(c.dropped.values()) for c in report.entities.values())


def issues(warehouse, run_id="r1") -> list[tuple]:
    return sorted(warehouse.reading().execute(
        "SELECT entity, record_id, attribute, rule, severity, message FROM sync.issues WHERE run_id = ?",
        [run_id]).fetchall())


def test_every_record_left_out_by_the_schools_mapping_has_an_issue_saying_why(district, tmp_path, readme):
    report = run(district, source(tmp_path, EXPLICIT))
    assert report.entities["enrollments"].issues == {
        "linked_to_unmapped_school (Skipped)": 3, "unmapped_school (Skipped)": 1}
    assert report.entities["schools"].issues == {"merged_school (Skipped)": 1, "unmapped_school (Skipped)": 1}
    quoted = {"school_sis_id 'C' is a school not in the schools mapping: the record is left out",
              "class_sis_id 'p-kC' is left out with an unmapped school: the record is left out"}
    assert quoted <= {message for *_, message in issues(district)} and all(m in readme for m in quoted)
    left_out = "the record is left out"
    assert issues(district) == [
        ("classes", "p-kC", "school_sis_id", "unmapped_school", "Skipped",
         f"school_sis_id 'C' is a school not in the schools mapping: {left_out}"),
        ("contacts", "p-g1", None, "linked_to_unmapped_school", "Skipped",
         "every student of the contact is left out with an unmapped school: the contact is left out"),
        ("courses", "p-cC", "school_sis_id", "unmapped_school", "Skipped",
         f"school_sis_id 'C' is a school not in the schools mapping: {left_out}"),
        ("demographics", "p-s2", "sis_id", "linked_to_unmapped_school", "Skipped",
         f"sis_id 'p-s2' is left out with an unmapped school: {left_out}"),
        ("enrollments", "p-e2", "user_sis_id", "linked_to_unmapped_school", "Skipped",
         f"user_sis_id 'p-s2' is left out with an unmapped school: {left_out}"),
        ("enrollments", "p-e3", "user_sis_id", "linked_to_unmapped_school", "Skipped",
         f"user_sis_id 'p-t1' is left out with an unmapped school: {left_out}"),
        ("enrollments", "p-e4", "school_sis_id", "unmapped_school", "Skipped",
         f"school_sis_id 'C' is a school not in the schools mapping: {left_out}"),
        ("enrollments", "p-e5", "class_sis_id", "linked_to_unmapped_school", "Skipped",
         f"class_sis_id 'p-kC' is left out with an unmapped school: {left_out}"),
        ("schools", "p-B", "sis_id", "merged_school", "Skipped",
         "school 'B' is merged into Passport school 'p-A': only that school is synced"),
        ("schools", "p-C", "sis_id", "unmapped_school", "Skipped",
         "school 'C' is not in the schools mapping: its data is left out"),
        ("staff", "p-t1", "school_sis_ids", "unmapped_school", "Skipped",
         f"none of school_sis_ids is a school in the schools mapping: {left_out}"),
        ("student_contacts", "p-l1", "student_sis_id", "linked_to_unmapped_school", "Skipped",
         f"student_sis_id 'p-s2' is left out with an unmapped school: {left_out}"),
        ("student_contacts", "p-l2", "student_sis_id", "linked_to_unmapped_school", "Skipped",
         f"student_sis_id 'p-s2' is left out with an unmapped school: {left_out}"),
        ("students", "p-s2", "school_sis_ids", "unmapped_school", "Skipped",
         f"none of school_sis_ids is a school in the schools mapping: {left_out}"),
    ]


def test_explicit_mapping_writes_one_row_per_passport_school(district, tmp_path):
    run(district, source(tmp_path, EXPLICIT, attributes={"schools": {"name": {"trim": "name"}}}))
    assert rows(district, "schools", "sis_id", "name", "identifier", "org_type", "parent_sis_id") == [
        ("p-A", "North", "id-A", "school", "p-D"), ("p-D", "District", None, "district", None),
        ("p-E", "Existing", None, "school", None)]


def test_hostile_school_names_from_the_config_reach_the_schools_table(district, tmp_path):
    run(district, source(tmp_path, {"A": HOSTILE, "B": HOSTILE}))
    assert rows(district, "schools", "name") == [HOSTILE, "District"]


def test_auto_mapping_drops_nothing_for_schools(district, tmp_path):
    report = run(district, source(tmp_path, attributes={"schools": {"name": {"trim": "name"}}}))
    assert all(counts.dropped == {} for counts in report.entities.values())
    assert rows(district, "schools", "sis_id", "name") == [
        ("p-A", "East"), ("p-B", "West"), ("p-C", "Unlisted"), ("p-D", "District"), ("p-E", "Existing")]
    assert rows(district, "students", "school_sis_ids") == [["p-B", "p-A"], ["p-C"], ["p-C", "p-E"], [], None, ["p-X"]]


def test_without_a_schools_mapping_report_nothing_is_dropped(district, tmp_path):
    report = map_attributes(district, source(tmp_path, EXPLICIT), "r1")
    assert all(counts.rows_in == counts.rows_out for counts in report.entities.values())


def test_rerunning_gives_the_same_tables_and_issues(district, tmp_path):
    src = source(tmp_path, EXPLICIT)
    first = run(district, src)
    tables = {entity: rows(district, entity) for entity in ENTITIES}
    raised = issues(district)
    assert run(district, src) == first
    assert {entity: rows(district, entity) for entity in ENTITIES} == tables
    assert issues(district) == raised and len(raised) == 14
    run(district, source(tmp_path))
    assert issues(district) == [], "auto mapping leaves nothing out: the explicit run's issues go"


def test_a_failure_leaves_every_previous_table(district, tmp_path, monkeypatch):
    run(district, source(tmp_path))
    before = {entity: rows(district, entity) for entity in ENTITIES}

    def broken(con, src, entity, *args):
        if entity == "students":
            raise RuntimeError("disk full")
        return original(con, src, entity, *args)

    original = mapping._map_entity
    monkeypatch.setattr(mapping, "_map_entity", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        map_attributes(district, source(tmp_path, EXPLICIT, prefix="other-"), "r2")
    assert {entity: rows(district, entity) for entity in ENTITIES} == before
