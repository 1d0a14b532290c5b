"""The schools mapping report: auto and explicit modes, merges, history, hostile values, rollback."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from passport_pipeline.config import CsvBundleSource
from passport_pipeline.entities import ENTITIES
from passport_pipeline.rules import schools
from passport_pipeline.rules.schools import map_schools
from passport_pipeline.rules.tables import schools_mapping_table
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.raw import ensure_raw_table
from passport_pipeline.warehouse.sql import ident

MAPPING = schools_mapping_table("sis")
REPORT_COLUMNS = [
    ("source_school_id", "VARCHAR"), ("source_school_name", "VARCHAR"), ("status", "VARCHAR"),
    ("new_in_source", "BOOLEAN"), ("passport_school_sis_id", "VARCHAR"), ("passport_school_name", "VARCHAR"),
    ("existing_passport_id", "VARCHAR"),
]


@pytest.fixture
def warehouse(tmp_path):
    with Warehouse(tmp_path / "warehouse.duckdb") as opened:
        yield opened


def source(tmp_path, schools=None, prefix="p-"):
    mapping = {"mode": "explicit", "schools": schools} if schools else {"mode": "auto"}
    return CsvBundleSource(name="sis", path=tmp_path, sis_id_prefix=prefix, advanced={"schools_mapping": mapping})


def land(warehouse, *orgs, extracted_at=datetime(2026, 9, 1)):
    """Raw schools rows: ``(sis_id, name)`` for a school, or a dict of columns."""
    table = ensure_raw_table(warehouse, "sis", "schools")
    columns = [*ENTITIES["schools"].all_columns, "payload", "extracted_at"]
    records = [org if isinstance(org, dict) else {"sis_id": org[0], "name": org[1], "org_type": "school"} for org in orgs]
    with warehouse.writing() as con:
        con.executemany(
            f"INSERT INTO {table} ({', '.join(ident(c) for c in columns)}) VALUES ({', '.join('?' for _ in columns)})",
            [[r.get(c) for c in columns[:-2]] + [json.dumps(r), extracted_at] for r in records])


def clear_raw(warehouse):
    with warehouse.writing() as con:
        con.execute('DELETE FROM raw."sis__schools"')


def report(warehouse) -> list[tuple]:
    return warehouse.reading().execute(f"SELECT * FROM {MAPPING} ORDER BY source_school_id").fetchall()


def test_auto_maps_every_school_as_itself_with_the_prefix(warehouse, tmp_path):
    land(warehouse, {"sis_id": "d1", "name": "District", "org_type": "district"}, ("101", "Lincoln"), ("102", "Adams"))
    result = map_schools(warehouse, source(tmp_path), "r1")
    assert report(warehouse) == [
        ("101", "Lincoln", "mapped", False, "p-101", "Lincoln", None),
        ("102", "Adams", "mapped", False, "p-102", "Adams", None),
    ]
    assert (result.stage, result.source) == ("schools_mapping", "sis")
    assert result.facts == {"mapped": 2, "unmapped": 0, "missing_in_source": 0, "new_in_source": 0, "passport_schools": 2}
    assert (result.entities["schools"].rows_in, result.entities["schools"].rows_out) == (2, 2)


def test_the_newest_version_of_a_school_decides(warehouse, tmp_path):
    land(warehouse, {"sis_id": "101", "name": "Old name", "org_type": "school", "date_last_modified": "2026-01-01T00:00:00Z"},
         {"sis_id": "101", "name": "New name", "org_type": "school", "date_last_modified": "2026-05-01T00:00:00Z"},
         {"sis_id": "102", "name": "A school", "org_type": "school", "date_last_modified": "2026-01-01"},
         {"sis_id": "102", "name": "Now a district", "org_type": "district", "date_last_modified": "2026-02-01"},
         {"sis_id": "103", "name": "First pull", "org_type": "school"})
    land(warehouse, {"sis_id": "103", "name": "Later pull", "org_type": "school"}, extracted_at=datetime(2026, 9, 2))
    map_schools(warehouse, source(tmp_path), "r1")
    assert [(row[0], row[1]) for row in report(warehouse)] == [("101", "New name"), ("103", "Later pull")]


def test_schools_without_an_id_and_other_orgs_are_not_in_the_report(warehouse, tmp_path):
    land(warehouse, (None, "No id"), {"sis_id": "d1", "name": "District", "org_type": "district"},
         {"sis_id": "x1", "name": "No type", "org_type": None}, ("101", "Lincoln"))
    map_schools(warehouse, source(tmp_path), "r1")
    assert [row[0] for row in report(warehouse)] == ["101"]


def test_explicit_merges_schools_given_the_same_name_and_reports_the_others(warehouse, tmp_path):
    land(warehouse, ("101", "Lincoln East"), ("102", "Lincoln West"), ("103", "Adams"), ("104", "Unlisted"))
    mapping = {"102": "Lincoln", "101": "Lincoln", "103": "Adams Middle", "999": "Gone school"}
    result = map_schools(warehouse, source(tmp_path, mapping), "r1")
    assert report(warehouse) == [
        ("101", "Lincoln East", "mapped", False, "p-101", "Lincoln", None),
        ("102", "Lincoln West", "mapped", False, "p-101", "Lincoln", None),
        ("103", "Adams", "mapped", False, "p-103", "Adams Middle", None),
        ("104", "Unlisted", "unmapped", False, None, None, None),
        ("999", None, "missing_in_source", False, None, None, None),
    ]
    assert result.facts == {"mapped": 3, "unmapped": 1, "missing_in_source": 1, "new_in_source": 0, "passport_schools": 2}
    assert (result.entities["schools"].rows_in, result.entities["schools"].rows_out) == (4, 3)


def test_explicit_existing_school_groups_by_id_and_takes_the_first_source_name(warehouse, tmp_path):
    land(warehouse, ("201", "Second"), ("200", "First"), ("300", "Other"))
    mapping = {"201": {"existing": "P-7"}, "200": {"existing": "P-7"}, "300": {"name": "P-7"}}
    map_schools(warehouse, source(tmp_path, mapping), "r1")
    assert report(warehouse) == [
        ("200", "First", "mapped", False, "p-200", "First", "P-7"),
        ("201", "Second", "mapped", False, "p-200", "First", "P-7"),
        ("300", "Other", "mapped", False, "p-300", "P-7", None),
    ]


def test_a_merged_school_keeps_its_id_when_its_first_source_school_disappears(warehouse, tmp_path):
    land(warehouse, ("102", "Lincoln West"))
    map_schools(warehouse, source(tmp_path, {"101": "Lincoln", "102": "Lincoln"}), "r1")
    assert report(warehouse) == [
        ("101", None, "missing_in_source", False, None, None, None),
        ("102", "Lincoln West", "mapped", False, "p-101", "Lincoln", None),
    ]


def test_history_marks_new_and_missing_schools_and_reruns_give_the_same_report(warehouse, tmp_path):
    land(warehouse, ("101", "Lincoln"), ("102", "Adams"))
    first = map_schools(warehouse, source(tmp_path), "r1")
    assert first.facts["new_in_source"] == 0
    clear_raw(warehouse)
    land(warehouse, ("101", "Lincoln"), ("103", "New school"))
    second = map_schools(warehouse, source(tmp_path), "r2")
    expected = [
        ("101", "Lincoln", "mapped", False, "p-101", "Lincoln", None),
        ("102", None, "missing_in_source", False, None, None, None),
        ("103", "New school", "mapped", True, "p-103", "New school", None),
    ]
    assert report(warehouse) == expected
    assert second.facts == {"mapped": 2, "unmapped": 0, "missing_in_source": 1, "new_in_source": 1, "passport_schools": 2}
    assert map_schools(warehouse, source(tmp_path), "r2") == second
    assert report(warehouse) == expected
    seen = warehouse.reading().execute("SELECT * FROM sync.schools_seen ORDER BY school_id").fetchall()
    assert seen == [("sis", "101", "r1", "r2"), ("sis", "102", "r1", "r1"), ("sis", "103", "r2", "r2")]


def test_the_first_run_of_a_source_sees_nothing_new_even_after_other_sources_ran(warehouse, tmp_path):
    with warehouse.writing() as con:
        con.execute("INSERT INTO sync.schools_seen VALUES ('other', '101', 'r0', 'r0')")
    land(warehouse, ("101", "Lincoln"))
    assert map_schools(warehouse, source(tmp_path), "r1").facts["new_in_source"] == 0


def test_explicit_reports_new_unlisted_schools_but_not_vanished_unlisted_ones(warehouse, tmp_path):
    land(warehouse, ("101", "Lincoln"), ("102", "Adams"))
    map_schools(warehouse, source(tmp_path, {"101": "Lincoln"}), "r1")
    clear_raw(warehouse)
    land(warehouse, ("101", "Lincoln"), ("104", "Brand new"))
    map_schools(warehouse, source(tmp_path, {"101": "Lincoln"}), "r2")
    assert report(warehouse) == [
        ("101", "Lincoln", "mapped", False, "p-101", "Lincoln", None),
        ("104", "Brand new", "unmapped", True, None, None, None),
    ]


def test_hostile_ids_names_and_prefix_are_kept_exactly(warehouse, tmp_path):
    hostile = "x'); DROP TABLE sync.issues; --"
    land(warehouse, (" 101", "O'Brien \"Elementary\""), ("101", "École Ñandú 学校"), (hostile, "$name"), ("", ""))
    mapping = {" 101": "Name with 'quotes' and $prefix", "101": {"existing": hostile}, hostile: "  padded  ", "": "Empty id"}
    map_schools(warehouse, source(tmp_path, mapping, prefix="q'\"$1;"), "r1")
    assert report(warehouse) == [
        ("", "", "mapped", False, "", "Empty id", None),
        (" 101", "O'Brien \"Elementary\"", "mapped", False, "q'\"$1; 101", "Name with 'quotes' and $prefix", None),
        ("101", "École Ñandú 学校", "mapped", False, "q'\"$1;101", "École Ñandú 学校", hostile),
        (hostile, "$name", "mapped", False, "q'\"$1;" + hostile, "  padded  ", None),
    ]
    assert warehouse.reading().execute("SELECT count(*) FROM sync.issues").fetchone() == (0,)


def test_without_raw_schools_the_report_is_empty_or_all_missing(warehouse, tmp_path):
    result = map_schools(warehouse, source(tmp_path), "r1")
    columns = warehouse.reading().execute(f"DESCRIBE {MAPPING}").fetchall()
    assert [(name, kind) for name, kind, *_ in columns] == REPORT_COLUMNS
    assert report(warehouse) == [] and result.facts["passport_schools"] == 0
    map_schools(warehouse, source(tmp_path, {"101": "Lincoln"}), "r1")
    assert report(warehouse) == [("101", None, "missing_in_source", False, None, None, None)]


def test_a_failure_leaves_the_previous_report_and_sightings(warehouse, tmp_path, monkeypatch):
    land(warehouse, ("101", "Lincoln"))
    map_schools(warehouse, source(tmp_path), "r1")
    before = report(warehouse)
    land(warehouse, ("102", "Adams"))

    def broken(con, sql, params):
        if sql.lstrip().startswith("CREATE"):
            raise RuntimeError("disk full")
        return original(con, sql, params)

    original = schools.execute
    monkeypatch.setattr(schools, "execute", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        map_schools(warehouse, source(tmp_path), "r2")
    assert report(warehouse) == before
    assert warehouse.reading().execute("SELECT school_id FROM sync.schools_seen").fetchall() == [("101",)]
