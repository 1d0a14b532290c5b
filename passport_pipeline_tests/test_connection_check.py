"""Test Connection end to end against the simulator: what works, what is forbidden, and why not.

One read-only simulator serves most tests, with one credential per situation (inactive,
expired, restricted to some schools...); tests that need faults start their own.
"""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import duckdb
import pytest

from passport_pipeline.config import (
    ConfigError,
    CsvBundleSource,
    OneRosterSource,
    PassportConfig,
    SmsSource,
    default_scopes,
)
from passport_pipeline.connection_check import check_source, check_sources, format_report, previous_schools
from passport_pipeline.simulator.auth import DEMO_CREDENTIAL, Credential
from passport_pipeline.simulator.csv_bundle import export_bundle
from passport_pipeline.simulator.server import running_simulator

SECRET = "tc-Secret-9f2b7c"
ENV_NAMES = {"client_id_env": "TC_CLIENT_ID", "client_secret_env": "TC_CLIENT_SECRET"}
CORE, ROSTER, DEMOGRAPHICS = default_scopes("1.1")
SCHOOLS = ("org-0000000002", "org-0000000003", "org-0000000004")


def env(client_id: str, secret: str = SECRET) -> dict[str, str]:
    return {"TC_CLIENT_ID": client_id, "TC_CLIENT_SECRET": secret}


@pytest.fixture(scope="module")
def store(small_district: Path) -> dict[str, int]:
    """Facts of the small district: its simulated date and what it holds."""
    with duckdb.connect(str(small_district), read_only=True) as con:
        today = con.execute("SELECT value FROM meta WHERE key = 'today'").fetchone()[0]
        schools = [r[0] for r in con.execute("SELECT sourced_id FROM orgs WHERE type = 'school' ORDER BY 1").fetchall()]
        users = con.execute("SELECT count(*) FROM users").fetchone()[0]
        students = con.execute("SELECT count(*) FROM users WHERE role = 'student'").fetchone()[0]
    assert tuple(schools) == SCHOOLS
    return {"today": dt.date.fromisoformat(today), "users": users, "students": students}


@pytest.fixture(scope="module")
def sim(small_district: Path, store: dict):
    day = dt.timedelta(days=1)
    credentials = [
        DEMO_CREDENTIAL,
        Credential(client_id="tc-ok", secret=SECRET),
        Credential(client_id="tc-inactive", secret=SECRET, active=False),
        Credential(client_id="tc-expired", secret=SECRET, expiration_date=store["today"] - 30 * day),
        Credential(client_id="tc-future", secret=SECRET, effective_date=store["today"] + 30 * day),
        Credential(client_id="tc-no-roster", secret=SECRET, scopes=[CORE, DEMOGRAPHICS]),
        Credential(client_id="tc-no-demographics", secret=SECRET, scopes=[CORE, ROSTER]),
        Credential(client_id="tc-two-schools", secret=SECRET, school_ids=list(SCHOOLS[:2])),
    ]
    with running_simulator(small_district, read_only=True, credentials=credentials) as running:
        yield running


def oneroster(sim, **settings) -> OneRosterSource:
    return OneRosterSource.model_validate({"name": "skyward", "base_url": sim.base_url, "token_url": sim.token_url,
                                          "credentials": ENV_NAMES, **settings})


def outcomes(report) -> dict[str, str]:
    return {check.endpoint: check.outcome for check in report.endpoints}


def shown(report) -> str:
    """Everything a person or Dagster could see of a report."""
    return "\n".join([format_report([report]), report.to_markdown(), str(report.to_metadata())])


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_a_healthy_oneroster_source_is_usable_with_every_endpoint_reachable(sim, store, version):
    report = check_source(oneroster(sim, oneroster_version=version), env("tc-ok"))

    assert report.access.ok and report.access.latency_ms is not None
    assert set(report.access.granted_scopes) == set(default_scopes(version))
    assert outcomes(report) == {
        **{name: "reachable" for name in ("orgs", "schools", "academicSessions", "courses", "classes", "students",
                                          "teachers", "users", "enrollments", "demographics")},
        f"schools/{SCHOOLS[0]}/students": "reachable",
    }
    students = next(c for c in report.endpoints if c.endpoint == "students")
    assert (students.total, students.rows) == (store["students"], 300)
    assert all(c.latency_ms is not None for c in report.endpoints)
    assert report.usable and report.warnings == [] and report.page_size_clamp is None
    assert report.schools_sentence() == "this credential sees 3 schools."
    assert format_report([report]).endswith("Result: usable.\n\n1 of 1 source usable.")
    assert report.to_metadata()["endpoints_reachable"] == 11


def test_a_healthy_sms_source_reads_listings_and_per_student_endpoints(sim):
    source = SmsSource.model_validate({"name": "sms", "base_url": sim.sms_url, "token_url": sim.sms_token_url,
                                       "credentials": ENV_NAMES})
    report = check_source(source, env("tc-ok"))

    assert report.usable, format_report([report])
    found = outcomes(report)
    per_student = [name for name in found if name.startswith(("student_enrollments (student ", "names (student "))]
    assert len(per_student) == 2 and all(found[name] == "reachable" for name in per_student)
    assert {found[name] for name in found} == {"reachable"}
    assert len(found) == len(source.endpoints)


@pytest.mark.parametrize(("as_zip", "version"), [(False, "1.1"), (True, "1.1"), (False, "1.2"), (True, "1.2")])
def test_a_csv_bundle_reports_each_file_it_reads_with_its_rows(small_district, store, tmp_path, as_zip, version):
    bundle = export_bundle(small_district, tmp_path / ("bundle.zip" if as_zip else "bundle"), zip=as_zip,
                           version=version)
    report = check_source(CsvBundleSource(name="csv", path=bundle))

    assert report.usable and report.access.ok, format_report([report])
    assert f"OneRoster {version} bundle" in report.access.detail
    users = next(c for c in report.endpoints if c.endpoint == "users.csv")
    assert (users.outcome, users.total) == ("reachable", store["users"])
    assert users.detail.startswith(f"{store['users']:,} rows read")
    found = outcomes(report)
    assert {"orgs.csv", "classes.csv", "enrollments.csv", "skyward_relationships.csv"} <= set(found)
    assert (found.get("roles.csv") == "reachable") == (version == "1.2")
    assert "results.csv" not in found  # an absent file the sync does not read is not worth a line
    assert report.schools_sentence() == "the bundle holds 3 schools."


def test_an_absent_file_is_not_provided_and_fails_only_what_the_sync_needs(small_district, tmp_path):
    bundle = export_bundle(small_district, tmp_path / "bundle", version="1.2", absent=("courses",))
    report = check_source(CsvBundleSource(name="csv", path=bundle))
    courses = next(c for c in report.endpoints if c.endpoint == "courses.csv")
    assert report.usable and courses.outcome == "skipped"
    assert courses.detail == "not provided: courses will be recorded as absent, not extracted"

    report = check_source(CsvBundleSource(name="csv", path=bundle, entities=["schools", "students"]))
    courses = next(c for c in report.endpoints if c.endpoint == "courses.csv")
    assert courses.detail == "not provided: the source's entities leave out courses, so the sync does not read it"

    bundle = export_bundle(small_district, tmp_path / "no-roles", version="1.2", absent=("roles",))
    report = check_source(CsvBundleSource(name="csv", path=bundle))
    assert not report.usable and report.blockers == ["users.csv is failing"]
    users = next(c for c in report.endpoints if c.endpoint == "users.csv")
    assert "does not carry roles.csv" in users.detail


def test_rows_a_bundle_file_cannot_give_are_counted_and_shown_by_line(small_district, tmp_path):
    bundle = export_bundle(small_district, tmp_path / "bundle")
    with (bundle / "enrollments.csv").open("a") as out:
        out.write("e-short,active\n")
    report = check_source(CsvBundleSource(name="csv", path=bundle))
    enrollments = next(c for c in report.endpoints if c.endpoint == "enrollments.csv")
    assert enrollments.outcome == "reachable"
    assert "1 that cannot be read: enrollments.csv line" in enrollments.detail
    assert "2 fields where the header has 10" in enrollments.detail


def test_a_bundle_without_manifest_or_core_file_is_not_usable(small_district, tmp_path):
    bundle = export_bundle(small_district, tmp_path / "bundle")
    manifest = (bundle / "manifest.csv").read_text()
    (bundle / "manifest.csv").write_text(manifest.replace("file.enrollments,bulk", "file.enrollments,absent"))
    report = check_source(CsvBundleSource(name="csv", path=bundle))
    assert not report.usable and report.blockers == ["enrollments.csv is failing"]

    (bundle / "manifest.csv").unlink()
    report = check_source(CsvBundleSource(name="csv", path=bundle))
    assert report.access.problem == "bundle_unreadable" and "no manifest.csv" in report.access.detail
    assert "NOT USABLE: the bundle cannot be read." in format_report([report])


def test_a_wrong_secret_is_named_by_its_variables_and_never_shown(sim):
    wrong = "Wrong-Secret-4d1e8a"
    report = check_source(oneroster(sim), env("tc-ok", wrong))

    assert report.access.problem == "wrong_credentials" and not report.usable
    assert "TC_CLIENT_ID and TC_CLIENT_SECRET" in report.access.detail
    assert report.endpoints == ()
    assert wrong not in shown(report) and SECRET not in shown(report)


@pytest.mark.parametrize(("client_id", "problem", "server_words"), [
    ("tc-inactive", "inactive", "is inactive"),
    ("tc-expired", "expired", "expired on"),
    ("tc-future", "not_yet_effective", "not effective until"),
])
def test_an_unusable_integration_access_record_is_told_apart_from_a_wrong_secret(sim, client_id, problem, server_words):
    report = check_source(oneroster(sim), env(client_id))

    assert report.access.problem == problem and not report.usable
    assert server_words in report.access.detail
    assert "client id/secret" not in report.access.detail
    assert SECRET not in shown(report)


def test_the_sms_token_endpoint_tells_an_inactive_key_apart_too(sim):
    source = SmsSource.model_validate({"name": "sms", "base_url": sim.sms_url, "token_url": sim.sms_token_url,
                                       "credentials": ENV_NAMES})
    assert check_source(source, env("tc-inactive")).access.problem == "inactive"
    assert check_source(source, env("tc-inactive", "not-the-secret")).access.problem == "wrong_credentials"


def test_an_unset_secret_variable_is_named_without_calling_the_server():
    source = OneRosterSource.model_validate({"name": "skyward", "base_url": "http://127.0.0.1:9",
                                             "token_url": "http://127.0.0.1:9/oauth/token", "credentials": ENV_NAMES})
    report = check_source(source, {"TC_CLIENT_ID": "tc-ok"})

    assert report.access.problem == "missing_credentials" and not report.usable
    assert "TC_CLIENT_SECRET is not set" in report.access.detail


def test_a_wrong_token_url_says_to_check_token_url(sim):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    refused = check_source(oneroster(sim, token_url=f"http://127.0.0.1:{port}/oauth/token"), env("tc-ok"))
    missing = check_source(oneroster(sim, token_url=f"{sim.base_url}/oauth/tokens"), env("tc-ok"))

    assert refused.access.problem == "token_url_unreachable" and "token_url" in refused.access.detail
    assert missing.access.problem == "token_url_wrong" and "404" in missing.access.detail
    assert "token_url" in missing.access.detail
    assert not refused.usable and not missing.usable


def test_scopes_the_credential_may_not_have_are_refused_by_name(sim):
    report = check_source(oneroster(sim), env("tc-no-roster"))

    assert report.access.problem == "invalid_scope" and not report.usable
    assert ROSTER in report.access.detail


def test_without_roster_scope_only_the_nested_endpoint_is_forbidden(sim):
    report = check_source(oneroster(sim, scopes=[CORE, DEMOGRAPHICS]), env("tc-no-roster"))

    nested = report.endpoints[-1]
    assert (nested.outcome, nested.missing_scope) == ("forbidden", ROSTER)
    assert [c.endpoint for c in report.endpoints if c.outcome != "reachable"] == [nested.endpoint]
    assert report.usable
    assert "the credential lacks the scope " + ROSTER in format_report([report])


def test_without_demographics_scope_demographics_are_forbidden_naming_the_scope(sim):
    report = check_source(oneroster(sim, scopes=[CORE, ROSTER]), env("tc-no-demographics"))

    demographics = next(c for c in report.endpoints if c.endpoint == "demographics")
    assert (demographics.outcome, demographics.missing_scope) == ("forbidden", DEMOGRAPHICS)
    assert report.usable and len(report.warnings) == 1 and DEMOGRAPHICS in report.warnings[0]


def test_a_credential_restricted_to_some_schools_is_reported_as_such(sim):
    mapping = {"mode": "explicit", "schools": {SCHOOLS[0]: "Elementary", "353189-0003": "Middle", SCHOOLS[2]: "High"}}
    source = oneroster(sim, advanced={"schools_mapping": mapping})
    restricted = check_source(source, env("tc-two-schools"))
    everything = check_source(source, env("tc-ok"))
    wrong_secret = check_source(source, env("tc-two-schools", "nope-nope"))

    assert restricted.access.ok and restricted.usable
    assert restricted.schools.missing == (SCHOOLS[2],)
    assert (f"this credential sees 2 of the 3 schools the mapping expects: missing {SCHOOLS[2]}; a Qmlativ "
            "Integration Access record may restrict schools") in format_report([restricted])
    assert everything.schools.missing == () and everything.warnings == []
    assert wrong_secret.access.problem == "wrong_credentials" and wrong_secret.schools is None


def test_in_auto_mode_schools_are_compared_with_the_previous_sync(sim, tmp_path):
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        assert previous_schools(con, "skyward") is None
        con.execute('CREATE SCHEMA raw; CREATE TABLE raw."skyward__schools" (sis_id VARCHAR, org_type VARCHAR)')
        con.execute("INSERT INTO raw.skyward__schools VALUES ('org-0000000001', 'district'), "
                    + ", ".join(f"('{school}', 'school')" for school in SCHOOLS))
        known = previous_schools(con, "skyward")
    assert known == set(SCHOOLS)

    report = check_source(oneroster(sim), env("tc-two-schools"), known_schools=known)
    assert report.schools.missing == (SCHOOLS[2],)
    assert "sees 2 of the 3 schools the previous sync saw" in report.schools_sentence()


def test_a_page_size_clamp_and_an_empty_endpoint_are_reported(small_district):
    with running_simulator(small_district, read_only=True,
                           faults={"clamp_limit": 40, "empty_endpoints": ["enrollments"]}) as sim:
        source = OneRosterSource(name="skyward", base_url="embedded", http={"page_size": 100}).served_by(sim.base_url)
        report = check_source(source, {})

    assert report.page_size_clamp == 40
    assert outcomes(report)["enrollments"] == "empty"
    assert report.usable and report.warnings == ["enrollments: answered with no rows; syncing it would find nothing"]
    text = format_report([report])
    assert "the server returns at most 40 records per page; paging adapts, nothing to do." in text
    assert "usable, with 1 warning." in text


def test_a_failing_core_endpoint_makes_the_source_unusable(sim):
    report = check_source(oneroster(sim, endpoints={"students": "pupils", "demographics": "demo"}), env("tc-ok"))

    found = {c.endpoint: c for c in report.endpoints}
    assert (found["students"].outcome, found["students"].status) == ("failing", 404)
    assert "endpoints.students" in found["students"].detail
    assert found["demographics"].outcome == "failing"
    assert not report.usable and report.blockers == ["students is failing"]


def test_check_sources_checks_the_named_sources_of_a_config(sim, small_district, tmp_path):
    bundle = export_bundle(small_district, tmp_path / "bundle")
    config = PassportConfig.model_validate({
        "simulator": {"students": 300},
        "sources": [{"name": "skyward", "app": "skyward_oneroster", "base_url": "embedded"},
                    {"name": "sms", "app": "skyward_sms", "base_url": "embedded"},
                    {"name": "csv", "app": "oneroster_csv", "path": str(bundle)}],
    }).served_by(sim.base_url)

    reports = check_sources(config, env={})
    assert [r.source for r in reports] == ["skyward", "sms", "csv"] and all(r.usable for r in reports)
    assert format_report(reports).endswith("3 of 3 sources usable.")
    assert [r.source for r in check_sources(config, ["csv"], env={})] == ["csv"]
    with pytest.raises(ConfigError, match="no source named 'nope'"):
        check_sources(config, ["nope"], env={})


@pytest.mark.parametrize("version,fault,said", [("1.1", "nested_as_schools", "answered a list of 'schools'"),
                                                ("1.2", "nested_not_found", "404")])
def test_nested_endpoints_that_do_not_serve_their_collection_are_named_with_what_the_sync_does(
        small_district, version, fault, said):
    with running_simulator(small_district, read_only=True, faults={fault: True}) as running:
        report = check_source(oneroster(running, oneroster_version=version), env("passport-demo",
                                                                                 DEMO_CREDENTIAL.secret))
    nested = report.endpoints[-1]
    assert nested.endpoint.startswith("schools/") and nested.outcome == "failing"
    assert said in nested.detail and "splits them by school instead" in nested.detail
    assert report.usable, "the sync falls back, so the source can still be synced"
    assert any(nested.endpoint in warning for warning in report.warnings)
