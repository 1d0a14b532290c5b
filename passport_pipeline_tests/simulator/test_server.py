"""The simulator over real HTTP on loopback: tokens, bearer checks, faults, admin, lifecycle."""

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor

import duckdb
import pytest
import requests
from starlette.requests import Request

from passport_pipeline.simulator import admin, store
from passport_pipeline.simulator.district import working_copy
from passport_pipeline.simulator.server import running_simulator

DEMO = ("passport-demo", "passport-demo-secret")
V1P1 = "https://purl.imsglobal.org/spec/or/v1p1/scope/"


@pytest.fixture(scope="module")
def sim(small_district, tmp_path_factory):
    """One simulator for the read-only tests of this module, on a private copy."""
    path = working_copy(small_district, tmp_path_factory.mktemp("server") / "district.duckdb")
    with running_simulator(path) as running:
        yield running


@pytest.fixture(autouse=True)
def _faults_off(request):
    yield
    if "sim" in request.fixturenames:
        request.getfixturevalue("sim").clear_faults()


def token(sim, auth=DEMO, **form) -> requests.Response:
    return requests.post(sim.token_url, auth=auth, data={"grant_type": "client_credentials", **form})


def session(sim, **form) -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token(sim, **form).json()['access_token']}"
    return s


def sms_session(sim, auth=DEMO) -> requests.Session:
    form = {"grant_type": "password", "username": auth[0], "password": auth[1]}
    access_token = requests.post(sim.sms_token_url, auth=auth, data=form).json()["access_token"]
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {access_token}"
    return s


# --- lifecycle -----------------------------------------------------------------------------

def test_running_simulator_binds_loopback_on_a_free_port_and_stops_cleanly(district_copy):
    with running_simulator(district_copy) as first:
        assert first.base_url.startswith("http://127.0.0.1:")
        port = int(first.base_url.rsplit(":", 1)[1])
        assert port != 8765 and requests.get(f"{first.admin_url}/state").ok
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{first.admin_url}/state", timeout=2)
    with running_simulator(district_copy) as second:  # the store was closed: a second start works
        assert second.state()["counts"]["users:student"] > 0
    # a still-open read-write connection would refuse a read-only one in this process
    duckdb.connect(str(district_copy), read_only=True).close()


def test_read_only_simulator_serves_a_pristine_store_and_refuses_next_day(small_district):
    with running_simulator(small_district, read_only=True) as sim:
        assert session(sim).get(f"{sim.oneroster_url()}/schools").status_code == 200
        refused = requests.post(f"{sim.admin_url}/next-day", json={})
        assert refused.status_code == 409 and "read-only" in refused.json()["error"]


def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no district store"):
        with running_simulator(tmp_path / "nothing.duckdb"):
            pass


# --- tokens and bearer checks --------------------------------------------------------------

def test_token_success_is_an_oauth2_bearer_token(sim):
    body = token(sim, scope=f"{V1P1}roster-core.readonly").json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["scope"] == f"{V1P1}roster-core.readonly" and len(body["access_token"]) >= 32


def test_token_refusals_tell_their_cause(sim):
    wrong = token(sim, auth=("passport-demo", "nope"))
    assert wrong.status_code == 401 and wrong.json() == {
        "error": "invalid_client", "error_description": "Client authentication failed"}
    sim.put_credential(client_id="old", secret="pw", expiration_date="2000-01-01")
    sim.put_credential(client_id="off", secret="pw", active=False)
    assert "2000-01-01" in token(sim, auth=("old", "pw")).json()["error_description"]
    assert "inactive" in token(sim, auth=("off", "pw")).json()["error_description"]
    unsupported = token(sim, grant_type="password")
    assert (unsupported.status_code, unsupported.json()["error"]) == (400, "unsupported_grant_type")
    sim.put_credential(client_id="core", secret="pw", scopes=[f"{V1P1}roster-core.readonly"])
    scope = token(sim, auth=("core", "pw"), scope=f"{V1P1}roster.readonly")
    assert (scope.status_code, scope.json()["error"]) == (400, "invalid_scope")
    assert f"{V1P1}roster.readonly" in scope.json()["error_description"]
    listed = requests.get(f"{sim.admin_url}/credentials").json()
    assert {c["client_id"] for c in listed} >= {"passport-demo", "old", "off", "core"}
    assert not any("secret" in c for c in listed)


def test_missing_or_unknown_bearer_is_401_imsx(sim):
    response = requests.get(f"{sim.oneroster_url()}/students")
    assert response.status_code == 401
    minor = response.json()["imsx_CodeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"]
    assert minor == "unauthorisedrequest"
    native = requests.get(f"{sim.sms_url}/v1/students", headers={"Authorization": "Bearer nope"})
    assert native.status_code == 401 and "Message" in native.json()


def test_granted_scopes_limit_the_endpoints(sim):
    core = session(sim, scope=f"{V1P1}roster-core.readonly")
    assert core.get(f"{sim.oneroster_url()}/students").status_code == 200
    assert core.get(f"{sim.oneroster_url()}/demographics").status_code == 403


@pytest.mark.parametrize("status", [401, 403, 500])
def test_expired_token_is_answered_as_configured(sim, status):
    sim.set_faults(token_ttl_seconds=0, expired_token_status=status)
    s = session(sim)
    time.sleep(0.01)
    response = s.get(f"{sim.oneroster_url()}/students")
    assert response.status_code == status and "Token has expired" in response.text
    native = sms_session(sim).get(f"{sim.sms_url}/v1/students")
    assert native.status_code == status and native.json() == {"Message": "Token has expired"}


# --- paths ---------------------------------------------------------------------------------

def test_every_oneroster_base_path_serves(sim):
    s = session(sim)
    for version in ("v1p1", "v1p2", "v1p2-skyward"):
        response = s.get(f"{sim.oneroster_url(version)}/schools")
        assert response.status_code == 200 and response.json()["orgs"]
        assert response.links["first"]["url"].startswith(sim.oneroster_url(version))


def test_percent_encoded_sourced_ids_with_spaces(district_copy):
    con = store.connect(district_copy)
    student = con.execute("SELECT sourced_id FROM users WHERE role = 'student' LIMIT 1").fetchone()[0]
    con.execute("UPDATE users SET sourced_id = ' ' || sourced_id || ' ' WHERE sourced_id = ?", [student])
    store.finalize(con)
    con.close()
    with running_simulator(district_copy) as sim:
        response = session(sim).get(f"{sim.oneroster_url()}/students/%20{student}%20")
        assert response.status_code == 200 and response.json()["user"]["sourcedId"] == f" {student} "


# --- faults --------------------------------------------------------------------------------

def test_latency_is_added_without_blocking_other_requests(sim):
    sim.set_faults(latency_ms=300)
    s = session(sim)
    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda _: requests.get(f"{sim.oneroster_url()}/schools",
                                                        headers=s.headers).status_code, range(4)))
    elapsed = time.perf_counter() - started
    assert statuses == [200] * 4 and 0.3 <= elapsed < 1.0


def test_rate_limit_answers_a_share_with_429_and_retry_after(sim):
    sim.set_faults(rate_limit_share=0.5, retry_after_seconds=7, seed=3)
    s = session(sim)
    responses = [s.get(f"{sim.oneroster_url()}/schools") for _ in range(40)]
    limited = [r for r in responses if r.status_code == 429]
    assert 8 <= len(limited) <= 32 and len(limited) + sum(r.ok for r in responses) == 40
    assert {r.headers["Retry-After"] for r in limited} == {"7"}
    assert token(sim).status_code == 200  # token endpoints never see faults


def test_error_burst_then_recovery(sim):
    sim.set_faults(burst_every=2, burst_length=2, burst_status=[503, 502])
    s = sms_session(sim)
    statuses = [s.get(f"{sim.sms_url}/v1/schools").status_code for _ in range(6)]
    assert statuses == [200, 200, 503, 502, 200, 200]
    sim.set_faults(burst_every=1, burst_length=1, burst_status=[504])
    s.get(f"{sim.sms_url}/v1/schools")
    gateway = s.get(f"{sim.sms_url}/v1/schools")
    assert gateway.status_code == 504 and gateway.headers["content-type"].startswith("text/html")


def test_clamp_wrappers_and_plain_errors(sim):
    s = session(sim)
    sim.set_faults(clamp_limit=7, non_spec_wrappers=True, plain_errors=True)
    page = s.get(f"{sim.oneroster_url()}/students", params={"limit": 50})
    assert list(page.json()) == ["students"] and len(page.json()["students"]) == 7
    assert int(page.headers["X-Total-Count"]) > 7
    missing = s.get(f"{sim.oneroster_url()}/students/no-such-id")
    assert missing.status_code == 404 and set(missing.json()) == {"error"}
    assert len(sms_session(sim).get(f"{sim.sms_url}/v1/students", params={"paging.limit": 50}).json()) == 7


def test_overlap_rows_repeat_across_pages(sim):
    sim.set_faults(overlap_rows=3)
    s = session(sim)
    first = [u["sourcedId"] for u in s.get(f"{sim.oneroster_url()}/students", params={"limit": 10}).json()["users"]]
    second = s.get(f"{sim.oneroster_url()}/students", params={"limit": 10, "offset": 10}).json()["users"]
    assert [u["sourcedId"] for u in second[:3]] == first[-3:]


def test_bad_json_is_a_200_that_does_not_parse(sim):
    sim.set_faults(bad_json_share=1.0)
    response = session(sim).get(f"{sim.oneroster_url()}/students")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_empty_endpoints_answer_200_with_no_rows(sim):
    sim.set_faults(empty_endpoints=["students"])
    s = session(sim)
    assert s.get(f"{sim.oneroster_url()}/students").json() == {"users": []}
    assert s.get(f"{sim.oneroster_url()}/teachers").json()["users"]
    assert sms_session(sim).get(f"{sim.sms_url}/v1/students").json() == []


# --- restricted credentials ---------------------------------------------------------------

def test_restricted_credential_sees_only_its_school_on_both_apis(sim):
    schools = session(sim).get(f"{sim.oneroster_url()}/schools").json()["orgs"]
    north = schools[0]
    sim.put_credential(client_id="north", secret="pw", school_ids=[north["sourcedId"]])
    s = session(sim, auth=("north", "pw"))
    students = s.get(f"{sim.oneroster_url()}/students", params={"limit": 1000}).json()["users"]
    assert students and all(north["sourcedId"] in [o["sourcedId"] for o in u["orgs"]] for u in students)
    assert [o["sourcedId"] for o in s.get(f"{sim.oneroster_url()}/schools").json()["orgs"]] == [north["sourcedId"]]
    native_north = int(north["metadata"]["skyward.nativeId"])
    native = sms_session(sim, auth=("north", "pw")).get(f"{sim.sms_url}/v1/students", params={"paging.limit": 1000})
    assert native.json() and all(native_north in row["schoolIds"] for row in native.json())
    assert len(native.json()) == len(students)


# --- admin -----------------------------------------------------------------------------------

def test_admin_faults_put_patch_delete_and_validation(sim):
    faults = f"{sim.admin_url}/faults"
    assert requests.put(faults, json={"latency_ms": 5}).json()["latency_ms"] == 5
    merged = requests.patch(faults, json={"clamp_limit": 9}).json()
    assert (merged["latency_ms"], merged["clamp_limit"]) == (5, 9)
    replaced = requests.put(faults, json={"plain_errors": True}).json()
    assert (replaced["latency_ms"], replaced["clamp_limit"], replaced["plain_errors"]) == (0, None, True)
    invalid = requests.patch(faults, json={"rate_limit_share": 2})
    assert invalid.status_code == 422 and "rate_limit_share" in invalid.json()["error"]
    assert requests.put(faults, json={"nope": 1}).status_code == 422
    assert requests.get(faults).json()["plain_errors"] is True
    assert requests.delete(faults).json()["plain_errors"] is False


def test_admin_refuses_clients_that_are_not_loopback():
    state = next(route for route in admin.routes() if route.path == "/admin/state")
    scope = {"type": "http", "method": "GET", "path": "/admin/state", "headers": [], "query_string": b"",
             "client": ("10.1.2.3", 50000)}
    assert asyncio.run(state.endpoint(Request(scope))).status_code == 403


def test_admin_state_reports_the_simulated_clock_and_counts(sim):
    state = sim.state()
    assert state["today"] and state["day"] is not None and state["faults"]["latency_ms"] == 0
    total = session(sim).get(f"{sim.oneroster_url()}/students").headers["X-Total-Count"]
    assert state["counts"]["users:student"] == int(total)


def test_next_day_changes_what_is_served(district_copy):
    with running_simulator(district_copy) as sim:
        before = sim.state()
        s = session(sim)
        since = before["now"]
        summary = sim.next_day()
        after = sim.state()
        assert after["day"] == before["day"] + 1 and after["today"] > before["today"]
        changed = s.get(f"{sim.oneroster_url()}/users",
                        params={"filter": f"dateLastModified>'{since}'", "limit": 1}).headers["X-Total-Count"]
        assert summary and int(changed) > 0
        invalid = requests.post(f"{sim.admin_url}/next-day", json={"no_such_knob": 1})
        assert invalid.status_code == 422 and "no_such_knob" in invalid.json()["error"]
        impossible = requests.post(f"{sim.admin_url}/next-day",
                                   json={"events": [{"kind": "school_closing", "school_id": "no-such-school"}]})
        assert impossible.status_code == 422 and "no-such-school" in impossible.json()["error"]
        assert sim.state()["day"] == after["day"]


# --- throughput -----------------------------------------------------------------------------

@pytest.mark.slow
def test_enrollment_paging_throughput(tmp_path):
    """>= 50,000 enrollment records/s at limit=1000 over one loopback connection (steady state)."""
    from passport_pipeline.simulator.district import generate_district

    path = tmp_path / "district.duckdb"
    generate_district(path, seed=11, students=5000)
    with running_simulator(path) as sim:
        s = session(sim)
        rates = []
        for _ in range(2):  # the first pass also warms DuckDB's buffers
            url, records = f"{sim.oneroster_url()}/enrollments?limit=1000", 0
            started = time.perf_counter()
            while url:
                response = s.get(url)
                records += len(response.json()["enrollments"])
                url = response.links.get("next", {}).get("url")
            rates.append(records / (time.perf_counter() - started))
    print(f"{records} enrollments at " + " then ".join(f"{rate:,.0f}" for rate in rates) + " records/s")
    assert max(rates) >= 50_000
