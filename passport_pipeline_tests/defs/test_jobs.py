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
                                 for e in ENTITIES} | {"staging/sky/schools_mapping", "sync_report"}
    assert "Extraction" in materialized["sync_report"]["report"].value
    assert materialized["sync_report"]["incomplete scopes"].value == 0
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


def test_a_scope_that_cannot_be_read_fails_the_run_naming_it_after_the_rule_stages_ran(configured):
    configured.set_faults(short_endpoints=["enrollments"])
    result = job("sync").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        run_config={"ops": {"extract_sky": {"config": {"mode": "full"}}}},
        raise_on_error=False,
    )
    assert not result.success
    failed = [check for check in result.get_asset_check_evaluations() if not check.passed]
    assert [check.asset_key.to_user_string() for check in failed] == ["raw/sky/enrollments"]
    assert "staging/sky/enrollments" in {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "sync_report"
    message = failure.step_failure_data.user_failure_data.description
    assert "sky enrollments, the whole source and schools" in message and "counts" in message


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


def test_an_incomplete_sync_exits_3_and_prints_each_scope_with_its_reason(configured, capsys):
    from passport_pipeline import cli

    configured.set_faults(short_endpoints=["enrollments"])
    assert cli.main(["sync"]) == 3
    out = capsys.readouterr().out
    assert "INCOMPLETE" in out and "succeeded" not in out
    assert "4 scopes were not extracted completely" in out
    assert "sky enrollments, the whole source and schools org-0000000002, org-0000000003, org-0000000004: " \
           "enrollments: the read ended" in out
    configured.set_faults()
    assert cli.main(["sync"]) == 0
