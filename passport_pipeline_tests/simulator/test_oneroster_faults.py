"""Servers that answer reads wrong or short (issue 8), as simulator faults over real HTTP.

Nested ``schools/{id}/...`` paths not implemented (404) or answered with the school list,
a school's students built from enrollments, collections that stop early under a true count,
and the ``Date`` header a client takes as the server's clock.
"""

import datetime as dt
from email.utils import format_datetime, parsedate_to_datetime

import pytest
import requests

from passport_pipeline.simulator import store
from passport_pipeline.simulator.district import working_copy
from passport_pipeline.simulator.server import running_simulator

DEMO = ("passport-demo", "passport-demo-secret")


@pytest.fixture(scope="module")
def sim(small_district, tmp_path_factory):
    """One simulator for the read-only tests of this module, on a private copy."""
    path = working_copy(small_district, tmp_path_factory.mktemp("oneroster_faults") / "district.duckdb")
    with running_simulator(path) as running:
        yield running


@pytest.fixture(autouse=True)
def _faults_off(request):
    yield
    if "sim" in request.fixturenames:
        request.getfixturevalue("sim").clear_faults()


def session(sim) -> requests.Session:
    form = {"grant_type": "client_credentials"}
    access_token = requests.post(sim.token_url, auth=DEMO, data=form).json()["access_token"]
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {access_token}"
    return s


def nested_paths(sim, s) -> list[str]:
    """Every nested ``schools/{id}/...`` path of the spec, for one school and one of its classes."""
    school = s.get(f"{sim.oneroster_url()}/schools").json()["orgs"][0]["sourcedId"]
    klass = s.get(f"{sim.oneroster_url()}/schools/{school}/classes", params={"limit": 1}).json()["classes"][0]
    under_school = [f"schools/{school}/{name}" for name in
                    ("students", "teachers", "classes", "courses", "enrollments", "terms")]
    under_class = [f"schools/{school}/classes/{klass['sourcedId']}/{name}"
                   for name in ("students", "teachers", "enrollments")]
    return under_school + under_class


def code_minor(body: dict) -> str:
    return body["imsx_CodeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"]


def pull(s, url: str) -> tuple[list[str], set[int]]:
    """Follow ``next`` links from ``url``: the ids served and every ``X-Total-Count`` seen."""
    ids, totals = [], set()
    while url:
        response = s.get(url)
        assert response.status_code == 200, response.text
        (rows,) = response.json().values()
        ids += [row["sourcedId"] for row in rows]
        totals.add(int(response.headers["X-Total-Count"]))
        url = response.links.get("next", {}).get("url")
    return ids, totals


# --- nested endpoints not implemented ------------------------------------------------------

def test_nested_not_found_answers_every_nested_school_path_404(sim):
    s = session(sim)
    paths = nested_paths(sim, s)
    assert all(s.get(f"{sim.oneroster_url()}/{path}").status_code == 200 for path in paths)
    sim.set_faults(nested_not_found=True)
    for version in ("v1p1", "v1p2"):
        for path in paths:
            response = s.get(f"{sim.oneroster_url(version)}/{path}")
            assert response.status_code == 404 and code_minor(response.json()) == "unknownobject", path
    school = paths[0].split("/")[1]
    for path in ("students", "schools", f"schools/{school}", "classes", "terms"):
        assert s.get(f"{sim.oneroster_url()}/{path}").status_code == 200, path
    sim.set_faults(nested_not_found=True, plain_errors=True)
    plain = s.get(f"{sim.oneroster_url()}/{paths[0]}")
    assert plain.status_code == 404 and set(plain.json()) == {"error"}


# --- nested endpoints answered with the school list ----------------------------------------

def test_nested_as_schools_answers_the_schools_page_under_the_key_schools(sim):
    s = session(sim)
    page = {"limit": 2, "offset": 1}
    schools = s.get(f"{sim.oneroster_url()}/schools", params=page)
    paths = [*nested_paths(sim, s), "schools/no-such-school/courses"]
    sim.set_faults(nested_as_schools=True)
    for path in paths:
        response = s.get(f"{sim.oneroster_url()}/{path}", params=page)
        assert response.status_code == 200, path
        assert response.json() == {"schools": schools.json()["orgs"]}, path
        assert response.headers["X-Total-Count"] == schools.headers["X-Total-Count"]
        assert response.headers["Link"] == schools.headers["Link"]
    assert list(s.get(f"{sim.oneroster_url()}/courses").json()) == ["courses"]


def test_nested_faults_exclude_each_other(sim):
    refused = requests.put(f"{sim.admin_url}/faults", json={"nested_not_found": True, "nested_as_schools": True})
    assert refused.status_code == 422 and "exclude each other" in refused.json()["error"]


# --- a school's students from enrollments --------------------------------------------------

def test_students_from_enrollments_miss_a_student_with_no_enrollment(district_copy):
    con = store.connect(district_copy)
    student, school = con.execute(
        "SELECT sourced_id, org_ids[1] FROM users WHERE role = 'student' AND len(org_ids) = 1"
        " ORDER BY sourced_id LIMIT 1").fetchone()
    con.execute("DELETE FROM enrollments WHERE user_id = ?", [student])
    store.finalize(con)
    enrolled = {school_id: set(ids) for school_id, ids in con.execute(
        "SELECT e.school_id, list(DISTINCT e.user_id) FROM enrollments e"
        " JOIN users u ON u.sourced_id = e.user_id AND u.role = 'student' GROUP BY e.school_id").fetchall()}
    con.close()
    with running_simulator(district_copy) as sim:
        s = session(sim)
        url = f"{sim.oneroster_url()}/schools/{school}/students?limit=25"
        assert student in pull(s, url)[0]
        sim.set_faults(nested_students_from_enrollments=True)
        for school_id, expected in enrolled.items():
            ids, totals = pull(s, f"{sim.oneroster_url()}/schools/{school_id}/students?limit=25")
            assert set(ids) == expected and len(ids) == len(expected) and totals == {len(expected)}
        assert student not in set().union(*enrolled.values())
        assert student in pull(s, f"{sim.oneroster_url()}/students?limit=1000")[0]
        assert s.get(f"{sim.oneroster_url()}/students/{student}").status_code == 200


# --- collections that stop early ---------------------------------------------------------

def test_short_endpoints_stop_early_and_keep_the_true_total(sim):
    s = session(sim)
    total = int(s.get(f"{sim.oneroster_url()}/students", params={"limit": 1}).headers["X-Total-Count"])
    assert total > 25
    sim.set_faults(short_endpoints=["students"], short_rows=25)
    ids, totals = pull(s, f"{sim.oneroster_url()}/students?limit=10")
    assert len(ids) == len(set(ids)) == 25 and totals == {total}
    beyond = s.get(f"{sim.oneroster_url()}/students", params={"limit": 10, "offset": 30})
    assert beyond.json() == {"users": []} and "next" not in beyond.links
    assert beyond.headers["X-Total-Count"] == str(total)
    school = s.get(f"{sim.oneroster_url()}/schools").json()["orgs"][0]["sourcedId"]
    ids, totals = pull(s, f"{sim.oneroster_url()}/schools/{school}/students?limit=10")
    assert len(ids) == 25 and min(totals) > 25
    assert len(pull(s, f"{sim.oneroster_url()}/classes?limit=10")[0]) > 25


def test_short_rows_zero_serves_nothing_under_the_true_total(sim):
    s = session(sim)
    total = s.get(f"{sim.oneroster_url()}/enrollments", params={"limit": 1}).headers["X-Total-Count"]
    sim.set_faults(short_endpoints=["enrollments"], short_rows=0)
    first = s.get(f"{sim.oneroster_url()}/enrollments")
    assert first.json() == {"enrollments": []} and "next" not in first.links
    assert first.headers["X-Total-Count"] == total and int(total) > 0
    assert requests.patch(f"{sim.admin_url}/faults", json={"short_rows": -1}).status_code == 422


# --- the simulated clock in Date -----------------------------------------------------------

def http_date(iso: str) -> str:
    return format_datetime(dt.datetime.fromisoformat(iso).replace(tzinfo=dt.UTC), usegmt=True)


def test_data_responses_are_dated_by_the_simulated_clock(district_copy):
    with running_simulator(district_copy) as sim:
        s = session(sim)
        native = requests.Session()
        form = {"grant_type": "password", "username": DEMO[0], "password": DEMO[1]}
        native.headers["Authorization"] = "Bearer " + requests.post(
            sim.sms_token_url, auth=DEMO, data=form).json()["access_token"]
        for day in range(2):
            if day:
                sim.next_day()
            expected = http_date(sim.state()["now"])
            for response in (
                s.get(f"{sim.oneroster_url()}/students"),
                s.get(f"{sim.oneroster_url('v1p2')}/schools/no-such-school"),
                requests.get(f"{sim.oneroster_url()}/students"),
                native.get(f"{sim.sms_url}/v1/students"),
            ):
                assert response.raw.headers.getlist("Date") == [expected], response.url
        assert parsedate_to_datetime(expected) == dt.datetime.fromisoformat(sim.state()["now"]).replace(
            tzinfo=dt.UTC)
        sim.set_faults(burst_every=0, rate_limit_share=1.0)
        limited = s.get(f"{sim.oneroster_url()}/students")
        assert limited.status_code == 429 and limited.raw.headers.getlist("Date") == [expected]
        assert "Date" not in requests.post(sim.token_url, auth=DEMO, data={"grant_type": "client_credentials"}).headers


# --- hostile records ---------------------------------------------------------------------------
def test_hostile_records_are_appended_as_sent_to_the_first_page_only(sim):
    s = session(sim)
    deep = '{"sourcedId":"deep","role":"student","metadata":' + "[" * 3000 + "]" * 3000 + "}"
    surrogate = '{"sourcedId":"\\ud800","role":"student"}'
    sim.set_faults(hostile_records={"students": [surrogate, deep]})
    first = s.get(f"{sim.oneroster_url()}/students", params={"limit": 5, "offset": 0})
    assert first.content.endswith((surrogate + "," + deep + "]}").encode())
    later = s.get(f"{sim.oneroster_url()}/students", params={"limit": 5, "offset": 5})
    assert b"deep" not in later.content and len(later.json()["users"]) == 5
