"""The rule stages end to end: a district extracted from the simulator, then every stage.

What must hold whatever the rules: staged tables have one row per id, carry the prefix on every
id, name no unmapped school, and every reference they keep names a staged record.
"""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from passport_pipeline.config import OneRosterSource
from passport_pipeline.entities import ENTITIES, TEXT_LIST, links
from passport_pipeline.extract import extract_source
from passport_pipeline.rules.chain import transform_source
from passport_pipeline.rules.tables import schools_mapping_table, stage_table
from passport_pipeline.simulator.server import running_simulator
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.sql import ident

ENV = {"SIM_ID": "passport-demo", "SIM_SECRET": "passport-demo-secret"}
TODAY = dt.date(2026, 11, 29)


def source(base_url: str, token_url: str, **rules) -> OneRosterSource:
    return OneRosterSource(name="sky", base_url=base_url, token_url=token_url, sis_id_prefix="x'-",
                           credentials={"client_id_env": "SIM_ID", "client_secret_env": "SIM_SECRET"}, **rules)


@pytest.fixture(scope="module")
def extracted(small_district, tmp_path_factory):
    """A warehouse file holding the small district's raw tables, and the simulator's addresses."""
    path = tmp_path_factory.mktemp("chain") / "warehouse.duckdb"
    with running_simulator(small_district, read_only=True) as sim, Warehouse(path) as warehouse:
        outcome = extract_source(warehouse, source(sim.base_url, sim.token_url), run_id="extract", env=ENV)
        assert not outcome.failed
        addresses = (sim.base_url, sim.token_url)
    return path, addresses


@pytest.fixture
def warehouse(extracted, tmp_path):
    path, _ = extracted
    with Warehouse(shutil.copy(path, tmp_path / "warehouse.duckdb")) as warehouse:
        yield warehouse


def rows(warehouse, entity, columns="*"):
    return warehouse.reading().execute(f"SELECT {columns} FROM {stage_table('staged', 'sky', entity)}").fetchall()


def test_an_explicit_mapping_keeps_every_trace_of_unmapped_schools_out(warehouse, extracted):
    _, addresses = extracted
    schools = [s for (s,) in warehouse.reading().execute(
        "SELECT DISTINCT sis_id FROM raw.sky__schools WHERE org_type = 'school' ORDER BY 1").fetchall()]
    kept, left_out = schools[:-1], schools[-1]
    mapping = {"mode": "explicit", "schools": {school: "One Passport school" for school in kept}}
    reports = transform_source(warehouse, source(*addresses, advanced={"schools_mapping": mapping}), "run", TODAY)
    assert reports[0].facts["mapped"] == len(kept) and reports[0].facts["unmapped"] == 1
    merged = "x'-" + min(kept)
    districts = {"x'-" + d for (d,) in warehouse.reading().execute(
        "SELECT sis_id FROM raw.sky__schools WHERE org_type = 'district'").fetchall()}
    assert {s for (s,) in rows(warehouse, "schools", "sis_id")} == {merged, *districts}
    for entity in ("courses", "classes", "enrollments"):
        assert {s for (s,) in rows(warehouse, entity, "DISTINCT school_sis_id")} == {merged}
    assert {tuple(s) for (s,) in rows(warehouse, "students", "school_sis_ids")} == {(merged,)}
    assert {s for (schools,) in rows(warehouse, "staff", "school_sis_ids") for s in schools} == {merged, *districts}, \
        "district staff keep the district, which is not a school"
    (unmapped_students,) = warehouse.reading().execute(
        "SELECT count(DISTINCT sis_id) FROM raw.sky__students WHERE NOT list_has_any(school_sis_ids, ?)",
        [kept]).fetchone()
    assert unmapped_students > 0
    assert len(rows(warehouse, "students")) + unmapped_students == warehouse.reading().execute(
        "SELECT count(DISTINCT sis_id) FROM raw.sky__students").fetchone()[0]
    status = dict(warehouse.reading().execute(
        f"SELECT source_school_id, status FROM {schools_mapping_table('sky')}").fetchall())
    assert status[left_out] == "unmapped"


def test_staged_tables_hold_one_prefixed_row_per_id_and_only_known_references(warehouse, extracted):
    _, addresses = extracted
    rules = {
        "advanced": {"staff_scope": "active_teachers_only", "sync_emergency_contacts": False},
        "filters": {"students": {"rules": [{"when": [{"attribute": "grades", "operator": "in_list",
                                                       "value": ["09", "10", "11", "12"]}]}]}},
        "requirements": {"students": {"email": "report_if_missing"}, "demographics": {"birth_date": "mask"}},
    }
    transform_source(warehouse, source(*addresses, **rules), "run", TODAY)
    staged = {entity: rows(warehouse, entity) for entity in ENTITIES}
    assert staged["students"] and all(any(g in ("09", "10", "11", "12") for g in r[15]) for r in staged["students"])
    read = warehouse.reading()
    for entity, spec in ENTITIES.items():
        table = stage_table("staged", "sky", entity)
        (ids, distinct, unprefixed) = read.execute(
            f"SELECT count(*), count(DISTINCT sis_id), count(*) FILTER (NOT starts_with(sis_id, 'x''-')) FROM {table}"
        ).fetchone()
        assert ids == distinct and unprefixed == 0, entity
        for column, targets in links(entity).items():
            known = " UNION ALL ".join(f"SELECT sis_id FROM {stage_table('staged', 'sky', t)}" for t in targets)
            value = f"unnest({ident(column)})" if spec.all_columns[column] == TEXT_LIST else ident(column)
            (dangling,) = read.execute(
                f"SELECT count(*) FROM (SELECT {value} AS ref FROM {table}) WHERE ref IS NOT NULL AND ref NOT IN ({known})"
            ).fetchone()
            assert dangling == 0, f"{entity}.{column}"
    assert {r for (r,) in read.execute(
        f"SELECT DISTINCT birth_date FROM {stage_table('staged', 'sky', 'demographics')}").fetchall()} <= {"****", None}
    teachers = {u for (u,) in read.execute(
        f"SELECT user_sis_id FROM {stage_table('staged', 'sky', 'enrollments')} WHERE role = 'teacher'").fetchall()}
    assert {s for (s,) in rows(warehouse, "staff", "sis_id")} <= teachers


def test_a_clean_district_read_through_sms_needs_no_configuration(small_district, tmp_path):
    """SMS 2.0's native API sends dates with a time and sex as a letter: its default mapping
    makes them Passport's, so a clean district raises no format issue."""
    from passport_pipeline.config import SmsSource

    with running_simulator(small_district, read_only=True) as sim, Warehouse(tmp_path / "w.duckdb") as warehouse:
        sms = SmsSource(name="sms", base_url=sim.sms_url, token_url=sim.sms_token_url,
                        credentials={"client_id_env": "SIM_ID", "client_secret_env": "SIM_SECRET"})
        assert not extract_source(warehouse, sms, run_id="extract", env=ENV).failed
        transform_source(warehouse, sms, "run", TODAY)
        found = warehouse.reading().execute(
            "SELECT entity, attribute, count(*) FROM sync.issues WHERE run_id = 'run' AND rule = 'format'"
            " GROUP BY ALL").fetchall()
        sexes = {s for (s,) in warehouse.reading().execute(
            f"SELECT DISTINCT sex FROM {stage_table('staged', 'sms', 'demographics')}").fetchall()}
    assert found == []
    assert sexes <= {"male", "female", "other"} and sexes
