"""Extraction end to end: the simulator over loopback into a real DuckDB warehouse file."""

from __future__ import annotations

import pytest

from passport_pipeline.config import CsvBundleSource, OneRosterSource, SmsSource
from passport_pipeline.extract import extract_source
from passport_pipeline.simulator import store
from passport_pipeline.simulator.csv_bundle import export_bundle
from passport_pipeline.simulator.server import running_simulator
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.landing import PageLanding
from passport_pipeline.warehouse.raw import raw_table

ENV = {"SIM_ID": "passport-demo", "SIM_SECRET": "passport-demo-secret"}
CREDENTIALS = {"client_id_env": "SIM_ID", "client_secret_env": "SIM_SECRET"}


def oneroster(sim, version="1.1", **http) -> OneRosterSource:
    return OneRosterSource(
        name="sky", base_url=sim.base_url, token_url=sim.token_url, oneroster_version=version,
        credentials=CREDENTIALS, http={"backoff_base_s": 0.01, "backoff_max_s": 0.05, **http},
    )


def expected(district) -> dict[str, int]:
    """What a complete extraction must land, counted in the simulator's own store."""
    con = store.connect(district, read_only=True)
    try:
        one = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "schools": one("SELECT count(*) FROM orgs"),
            "students": one("SELECT count(*) FROM users WHERE role = 'student'"),
            "contacts": one("SELECT count(*) FROM users WHERE role IN ('guardian', 'parent', 'relative')"),
            "staff": one("SELECT count(*) FROM users WHERE role NOT IN ('student', 'guardian', 'parent', 'relative')"),
            "student_contacts": one("SELECT count(*) FROM student_contacts"),
            "enrollments": one("SELECT count(*) FROM enrollments"),
            "classes": one("SELECT count(*) FROM classes"),
            "courses": one("SELECT count(*) FROM courses"),
            "demographics": one("SELECT count(*) FROM demographics"),
        }
    finally:
        con.close()


def landed(warehouse, source="sky") -> dict[str, int]:
    """Distinct records per entity in the raw tables (a multi-school student lands per school)."""
    read = warehouse.reading()
    return {
        entity: read.execute(f"SELECT count(DISTINCT sis_id) FROM {raw_table(source, entity)}").fetchone()[0]
        for entity in ("schools", "students", "contacts", "staff", "student_contacts", "enrollments",
                       "classes", "courses", "demographics")
    }


@pytest.fixture
def warehouse(tmp_path):
    with Warehouse(tmp_path / "warehouse.duckdb") as wh:
        yield wh


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_oneroster_extraction_lands_the_whole_district(small_district, warehouse, version):
    with running_simulator(small_district, read_only=True) as sim:
        result = extract_source(warehouse, oneroster(sim, version), run_id="r1", env=ENV)
    assert not result.failed
    assert landed(warehouse) == expected(small_district)
    schools = warehouse.reading().execute(
        "SELECT count(*) FROM sync.extractions WHERE entity = 'students' AND status = 'complete' AND scope <> '*'"
    ).fetchone()[0]
    assert schools == expected(small_district)["schools"] - 1  # every school but the district org


def test_oneroster_extraction_survives_every_quirk_at_once(small_district, warehouse):
    with running_simulator(small_district, read_only=True) as sim:
        sim.set_faults(seed=3, rate_limit_share=0.1, retry_after_seconds=0, burst_every=15, burst_length=2,
                       burst_status=[503, 502, 500], token_ttl_seconds=1, expired_token_status=403,
                       clamp_limit=70, non_spec_wrappers=True, overlap_rows=3)
        result = extract_source(warehouse, oneroster(sim, page_size=100, max_retries=8), run_id="r1", env=ENV)
    assert not result.failed
    assert landed(warehouse) == expected(small_district)


def test_sms_extraction_lands_the_whole_district(small_district, warehouse):
    with running_simulator(small_district, read_only=True) as sim:
        source = SmsSource(name="sky", base_url=sim.sms_url, token_url=sim.sms_token_url, credentials=CREDENTIALS)
        result = extract_source(warehouse, source, run_id="r1", env=ENV)
    assert not result.failed
    counts, want = landed(warehouse), expected(small_district)
    assert {k: counts[k] for k in ("students", "contacts", "staff", "student_contacts", "enrollments",
                                   "classes", "courses", "demographics")} == \
           {k: want[k] for k in ("students", "contacts", "staff", "student_contacts", "enrollments",
                                 "classes", "courses", "demographics")}


def test_csv_bundle_extraction_lands_the_whole_district(small_district, warehouse, tmp_path):
    bundle = export_bundle(small_district, tmp_path / "bundle.zip", zip=True)
    result = extract_source(warehouse, CsvBundleSource(name="sky", path=bundle), run_id="r1")
    assert not result.failed
    assert landed(warehouse) == expected(small_district)


def test_failed_scopes_keep_the_previous_picture_and_the_watermark(small_district, warehouse):
    with running_simulator(small_district, read_only=True) as sim:
        extract_source(warehouse, oneroster(sim), run_id="good", env=ENV)
        before = landed(warehouse)
        marks = dict(warehouse.reading().execute("SELECT entity, watermark FROM sync.watermarks").fetchall())
        sim.set_faults(burst_every=2, burst_length=1, burst_status=[503])
        result = extract_source(warehouse, oneroster(sim, max_retries=0, max_concurrency=1), run_id="bad", env=ENV)
    assert result.failed, "the fault plan should break some pulls"
    read = warehouse.reading()
    for entity, scopes in result.failed.items():
        for scope in scopes:
            runs = read.execute(f"SELECT DISTINCT run_id FROM {raw_table('sky', entity)} WHERE scope = ?",
                                [scope]).fetchall()
            assert runs in ([("good",)], []), f"{entity}/{scope} must keep only the good run's rows"
        assert read.execute("SELECT run_id FROM sync.watermarks WHERE entity = ?", [entity]).fetchone() == ("good",)
    assert landed(warehouse) == before
    assert dict(read.execute("SELECT entity, watermark FROM sync.watermarks").fetchall()) == marks
    assert read.execute("SELECT count(*) FROM sync.extractions WHERE run_id = 'bad' AND status = 'failed'"
                        " AND error IS NOT NULL").fetchone()[0] == sum(len(s) for s in result.failed.values())


def test_delta_lands_only_what_changed_and_moves_the_watermark(district_copy, warehouse):
    with running_simulator(district_copy) as sim:
        full = extract_source(warehouse, oneroster(sim), run_id="full", env=ENV)
        summary = sim.next_day(creates=0.02, updates=0.05, withdrawals=0.02)
        delta = extract_source(warehouse, oneroster(sim), run_id="delta", mode="delta", env=ENV)
        day = sim.state()["counts"]
    assert delta.mode == "delta" and not delta.failed
    students = delta.entities["students"]
    assert 0 < students.rows < full.entities["students"].rows / 2
    assert students.watermark > full.entities["students"].watermark
    assert summary["created"] and summary["withdrawn"]
    read = warehouse.reading()
    tobedeleted = read.execute(
        f"SELECT count(*) FROM {raw_table('sky', 'students')} WHERE status = 'tobedeleted'").fetchone()[0]
    assert tobedeleted > 0
    # full picture + delta = the district as it is today
    assert read.execute(f"SELECT count(DISTINCT sis_id) FROM {raw_table('sky', 'enrollments')}").fetchone()[0] \
        == day["enrollments"]


def test_a_bug_mid_read_rolls_back_what_the_read_landed(small_district, warehouse, monkeypatch):
    monkeypatch.setattr("passport_pipeline.warehouse.landing.BATCH_ROWS", 1)  # every page lands at once
    pages = 0
    add = PageLanding.add

    def add_then_break(self, records, scope):
        nonlocal pages
        pages += 1
        if pages == 3:
            raise RuntimeError("a bug")
        add(self, records, scope)

    monkeypatch.setattr(PageLanding, "add", add_then_break)
    read = warehouse.reading()
    connections = read.execute("SELECT * FROM duckdb_connection_count()").fetchone()[0]
    with running_simulator(small_district, read_only=True) as sim:
        with pytest.raises(RuntimeError, match="a bug") as broken:  # its traceback keeps the run alive
            extract_source(warehouse, oneroster(sim), run_id="r1", env=ENV)
        monkeypatch.setattr(PageLanding, "add", add)
        assert broken.traceback and read.execute("SELECT * FROM duckdb_connection_count()").fetchone()[0] == connections
        tables = read.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'raw'").fetchall()
        assert tables and all(read.execute(f'SELECT count(*) FROM raw."{t}"').fetchone()[0] == 0 for (t,) in tables)
        result = extract_source(warehouse, oneroster(sim), run_id="r2", env=ENV)
    assert not result.failed
    assert landed(warehouse) == expected(small_district)
