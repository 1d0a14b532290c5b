"""The Dagster wiring: the sync job lands every configured entity, and Test Connection reports."""

import dagster as dg
import pytest

from passport_pipeline.simulator.server import running_simulator
from passport_pipeline.sync import run_sync

CONFIG = """
warehouse: {warehouse}
sources:
  - name: sky
    app: skyward_oneroster
    base_url: {base_url}
    token_url: {base_url}/oauth/token
    credentials: {{client_id_env: SIM_ID, client_secret_env: SIM_SECRET}}
    http: {{max_retries: 1, backoff_base_s: 0.01, backoff_max_s: 0.02}}
"""


@pytest.fixture
def configured(small_district, tmp_path, monkeypatch):
    """A passport.yaml pointing at a running simulator, and an ephemeral Dagster instance."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("SIM_ID", "passport-demo")
    monkeypatch.setenv("SIM_SECRET", "passport-demo-secret")
    with running_simulator(small_district, read_only=True) as sim:
        path = tmp_path / "passport.yaml"
        path.write_text(CONFIG.format(warehouse=tmp_path / "warehouse.duckdb", base_url=sim.base_url))
        monkeypatch.setenv("PASSPORT_CONFIG", str(path))
        yield sim


def job(name):
    from passport_pipeline.definitions import defs

    return defs().resolve_job_def(name)


ENTITIES = ("schools", "terms", "courses", "classes", "students", "staff", "contacts", "student_contacts",
            "enrollments", "demographics")


def test_sync_job_materializes_every_stage_of_every_entity_with_metadata(configured):
    result = job("sync").execute_in_process(instance=dg.DagsterInstance.ephemeral())
    assert result.success
    materialized = {e.asset_key.to_user_string(): e.materialization.metadata
                    for e in result.get_asset_materialization_events()}
    assert set(materialized) == {f"{stage}/sky/{e}" for stage in ("raw", "mapped", "filtered", "staging")
                                 for e in ENTITIES} | {"staging/sky/schools_mapping"}
    students = materialized["raw/sky/students"]
    assert students["dagster/row_count"].value > 300
    assert students["scopes failed"].value == 0
    assert "sis_id" in students["preview"].value
    staged = materialized["staging/sky/students"]
    assert staged["dagster/row_count"].value == materialized["mapped/sky/students"]["dagster/row_count"].value
    assert staged["rows in"].value == materialized["filtered/sky/students"]["dagster/row_count"].value
    assert "duplicate rows" in materialized["mapped/sky/students"]["dropped because"].value, \
        "students of two schools are extracted once per school"
    assert materialized["staging/sky/schools_mapping"]["mapped"].value == materialized["staging/sky/schools"][
        "dagster/row_count"].value - 1, "every school, plus the district"
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 20 and all(check.passed for check in checks), "a clean district raises no issue"


def test_completeness_check_fails_when_a_school_cannot_be_read(configured):
    configured.set_faults(burst_every=3, burst_length=50, burst_status=[500])
    result = job("sync").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        run_config={"ops": {"extract_sky": {"config": {"mode": "full"}}}},
        raise_on_error=False,
    )
    failed = [check for check in result.get_asset_check_evaluations() if not check.passed]
    assert failed, "a server answering 500 must leave some scope incomplete"


def test_run_sync_reports_rows_per_entity(configured):
    outcome = run_sync()
    assert outcome.success
    assert "students" in outcome.report and "Issues:" in outcome.report


def test_test_connection_job_passes_and_fails_with_what_to_fix(configured, monkeypatch):
    assert job("test_connection").execute_in_process(instance=dg.DagsterInstance.ephemeral()).success
    monkeypatch.setenv("SIM_SECRET", "wrong-secret")
    result = job("test_connection").execute_in_process(instance=dg.DagsterInstance.ephemeral(),
                                                       raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    text = failure.step_failure_data.user_failure_data.description
    assert "SIM_SECRET" in text and "wrong-secret" not in text
