"""The SMS 2.0 native API engine, on a hand-built district whose every row is known."""

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from passport_pipeline.simulator import sms, store
from passport_pipeline.simulator.server import running_simulator


def build_tiny_store(path: Path) -> Path:
    """Two schools, three students (one leaving), two teachers (one in both schools), two contacts."""
    con = store.connect(path)
    store.set_meta(con, seed=1, students=3, today="2026-09-01", now="2026-09-01T06:00:00", school_year=2027, day=0)
    ts = "TIMESTAMP '2026-08-20 10:00:00'"
    con.execute(f"""
    INSERT INTO orgs (sourced_id, status, date_last_modified, name, type, identifier, parent_id,
                      school_level, grade_low, grade_high, native_id) VALUES
      ('D', 'active', {ts}, 'Lakeview District', 'district', '0001', NULL, NULL, NULL, NULL, 1),
      ('S1', 'active', {ts}, 'Lakeview Elementary', 'school', '0101', 'D', 'elementary', 'KG', '05', 101),
      ('S2', 'active', {ts}, 'Lakeview Middle', 'school', '0102', 'D', 'middle', '06', '08', 102);
    INSERT INTO academic_sessions (sourced_id, status, date_last_modified, title, type, start_date,
                      end_date, parent_id, school_year, org_id, native_id) VALUES
      ('Y', 'active', {ts}, '2026-2027', 'schoolYear', '2026-08-15', '2027-06-10', NULL, 2027, 'D', 1001),
      ('T1', 'active', {ts}, 'Fall 2026', 'semester', '2026-08-15', '2026-12-20', 'Y', 2027, 'D', 1002);
    INSERT INTO courses (sourced_id, status, date_last_modified, title, course_code, grades, org_id,
                      school_year_id, native_id) VALUES
      ('C1', 'active', {ts}, 'Reading 3', 'RD3', ['03'], 'S1', 'Y', 2001),
      ('C2', 'active', {ts}, 'Math 7', 'MA7', ['07'], 'S2', 'Y', 2002);
    INSERT INTO classes (sourced_id, status, date_last_modified, title, class_code, class_type,
                      location, course_id, school_id, term_ids, periods, native_id) VALUES
      ('K1', 'active', {ts}, 'Reading 3 - 1', 'RD3-1', 'scheduled', '101', 'C1', 'S1', ['T1'], ['1'], 3001),
      ('K2', 'active', {ts}, 'Math 7 - 2', 'MA7-2', 'scheduled', '202', 'C2', 'S2', ['T1'], ['2'], 3002);
    INSERT INTO users (sourced_id, status, date_last_modified, deleted_on, native_id, role, username,
                      given_name, family_name, middle_name, identifier, state_id, email, sms, phone,
                      grades, org_ids, primary_org_id, grad_year, birth_date) VALUES
      ('st1', 'active', {ts}, NULL, 501, 'student', 'ava.s', 'Ava', 'Stone', 'M', '1001', 'WI1001',
       'ava.s@lakeview.org', NULL, NULL, ['03'], ['S1'], 'S1', 2036, '2017-04-02'),
      ('st2', 'active', {ts}, NULL, 502, 'student', 'ben.s', 'Ben', 'Stone', NULL, '1002', 'WI1002',
       'ben.s@lakeview.org', NULL, NULL, ['07'], ['S2'], 'S2', 2032, '2013-01-20'),
      ('st3', 'tobedeleted', {ts}, '2026-08-30', 503, 'student', 'cy.r', 'Cy', 'Reed', NULL, '1003',
       'WI1003', NULL, NULL, NULL, ['04'], ['S1'], 'S1', 2035, '2016-06-06'),
      ('t1', 'active', {ts}, NULL, 601, 'teacher', 'dee.k', 'Dee', 'Kay', NULL, 'E601', NULL,
       'dee.k@lakeview.org', NULL, '555-0101', NULL, ['S1', 'S2'], 'S1', NULL, NULL),
      ('t2', 'active', {ts}, NULL, 602, 'teacher', 'eli.m', 'Eli', 'Moss', NULL, NULL, NULL,
       'eli.m@lakeview.org', NULL, NULL, NULL, ['S2'], 'S2', NULL, NULL),
      ('g1', 'active', {ts}, NULL, 701, 'parent', NULL, 'Fay', 'Stone', NULL, NULL, NULL,
       'fay@example.com', '555-0199', '555-0100', NULL, ['S1', 'S2'], NULL, NULL, NULL),
      ('n1', 'active', {ts}, NULL, 702, 'relative', NULL, 'Gus', 'Hill', NULL, NULL, NULL,
       NULL, NULL, '555-0123', NULL, ['S1'], NULL, NULL, NULL);
    INSERT INTO student_contacts VALUES
      ('st1', 'g1', 'mother', TRUE, TRUE, TRUE, TRUE, 1, {ts}),
      ('st2', 'g1', 'mother', TRUE, FALSE, TRUE, TRUE, 1, {ts}),
      ('st1', 'n1', 'neighbor', FALSE, TRUE, FALSE, TRUE, 2, {ts});
    INSERT INTO enrollments (sourced_id, status, date_last_modified, user_id, class_id, school_id,
                      role, "primary", begin_date, end_date) VALUES
      ('E1', 'active', {ts}, 'st1', 'K1', 'S1', 'student', FALSE, '2026-08-20', '2026-12-20'),
      ('E2', 'active', {ts}, 'st2', 'K2', 'S2', 'student', FALSE, '2026-08-15', '2026-12-20'),
      ('E3', 'active', {ts}, 't1', 'K1', 'S1', 'teacher', TRUE, '2026-08-15', '2026-12-20'),
      ('E4', 'active', {ts}, 't1', 'K2', 'S2', 'teacher', TRUE, '2026-08-15', '2026-12-20'),
      ('E5', 'active', {ts}, 't2', 'K2', 'S2', 'teacher', FALSE, '2026-08-15', '2026-12-20');
    INSERT INTO demographics (sourced_id, status, date_last_modified, birth_date, sex) VALUES
      ('st1', 'active', {ts}, '2017-04-02', 'female'),
      ('st2', 'active', {ts}, '2013-01-20', 'male');
    """)
    store.finalize(con)
    con.close()
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_store(tmp_path_factory.mktemp("sms") / "tiny.duckdb")


@pytest.fixture(scope="module")
def cur(tiny):
    con = store.connect(tiny, read_only=True)
    yield con.cursor()
    con.close()


def get(cur, path, *, visible=None, **options):
    query = options.pop("query", {})
    reply = sms.handle(cur, sms.NativeRequest(path, query, "http://sim/api", visible_schools=visible, **options))
    return reply, json.loads(reply.body) if reply.body[:1] in (b"[", b"{") else reply.body


def test_students_are_a_bare_array_in_pascal_case(cur):
    reply, students = get(cur, "v1/students")
    assert reply.status == 200 and "Link" not in reply.headers
    assert [s["NameId"] for s in students] == [501, 502, 503]
    ava = students[0]
    assert ava | {"LastModified": None} == {
        "NameId": 501, "DisplayId": "1001", "StateId": "WI1001", "FirstName": "Ava", "MiddleName": "M",
        "LastName": "Stone", "GradYr": 2036, "Gender": "F", "DateOfBirth": "2017-04-02T00:00:00",
        "SchoolEmail": "ava.s@lakeview.org", "Email": None, "PhoneNumber": None, "DefaultSchoolId": 101,
        "schoolIds": [101], "Status": "Active", "LastModified": None,
    }
    assert students[2]["Status"] == "ToBeDeleted"


def test_schools_and_single_objects(cur):
    _, schools = get(cur, "v1/schools")
    assert [(s["SchoolId"], s["SchoolName"], s["GradeLow"], s["GradeHigh"]) for s in schools] == [
        (101, "Lakeview Elementary", "KG", "05"), (102, "Lakeview Middle", "06", "08")]
    assert get(cur, "v1/schools/102")[1]["SchoolName"] == "Lakeview Middle"
    assert get(cur, "v1/students/502")[1]["FirstName"] == "Ben"
    assert get(cur, "v1/names/701")[1]["LastName"] == "Stone"
    assert get(cur, "v1/sections/3002")[1]["Teachers"] == [
        {"StaffNameId": 601, "IsPrimary": True}, {"StaffNameId": 602, "IsPrimary": False}]


@pytest.mark.parametrize("path", ["v1/students/999", "v1/students/abc", "v1/names/1", "v1/nothing",
                                  "v1/students/999/enrollments"])
def test_unknown_ids_and_paths_are_404_with_a_message(cur, path):
    reply, body = get(cur, path)
    assert reply.status == 404 and set(body) == {"Message"}


def test_plain_errors_fault_changes_the_error_shape(cur):
    reply, body = get(cur, "v1/students/999", plain_errors=True)
    assert reply.status == 404 and set(body) == {"error"}


def test_staff_appear_once_per_assignment(cur):
    _, staff = get(cur, "v1/staff")
    assert [(s["NameId"], s["SchoolId"]) for s in staff] == [(601, 101), (601, 102), (602, 102)]
    assert staff[2]["DisplayId"] is None


def test_guardians_list_every_contact_with_emergency_and_custody_flags(cur):
    _, contacts = get(cur, "v1/guardians")
    mother, neighbor = contacts
    assert mother["GuardianNameId"] == 701 and mother["PhoneNumber2"] == "555-0199"
    assert [(s["StudentNameId"], s["IsEmergencyContact"]) for s in mother["Students"]] == [(501, True), (502, False)]
    assert neighbor["Students"] == [{
        "StudentNameId": 501, "RelationshipDesc": "neighbor", "IsGuardian": False, "IsEmergencyContact": True,
        "IsCustodial": False, "AllowPickup": True, "ContactOrder": 2}]


def test_per_student_guardians_schedules_and_enrollments(cur):
    assert [g["GuardianNameId"] for g in get(cur, "v1/guardians", query={"studentNameId": "502"})[1]] == [701]
    assert [g["GuardianNameId"] for g in get(cur, "v1/guardians", query={"studentNameId": "501"})[1]] == [701, 702]
    schedule = get(cur, "v1/studentschedules", query={"studentNameId": "501"})[1]
    assert [(s["SectionId"], s["SchoolId"]) for s in schedule] == [(3001, 101)]
    assert get(cur, "v1/guardians", query={"studentNameId": "999"})[0].status == 404
    assert get(cur, "v1/students/501/enrollments")[1] == [{
        "SchoolId": 101, "EntryDate": "2026-08-20T00:00:00", "WithdrawalDate": None, "GradeLevel": "03",
        "Status": "Active"}]
    assert get(cur, "v1/students/503/enrollments")[1][0]["WithdrawalDate"] == "2026-08-30T00:00:00"


def test_restricted_schools_hide_other_schools_rows(cur):
    north = frozenset({"S1"})
    assert [s["NameId"] for s in get(cur, "v1/students", visible=north)[1]] == [501, 503]
    assert [(s["NameId"], s["SchoolId"]) for s in get(cur, "v1/staff", visible=north)[1]] == [(601, 101)]
    mother = get(cur, "v1/guardians", visible=north)[1][0]
    assert [s["StudentNameId"] for s in mother["Students"]] == [501]
    assert get(cur, "v1/students/502", visible=north)[0].status == 404
    assert [s["SchoolId"] for s in get(cur, "v1/schools", visible=north)[1]] == [101]


def test_paging_follows_opaque_cursors_in_link_headers(cur):
    seen, query, links = [], {"paging.limit": "2"}, 0
    while True:
        reply, rows = get(cur, "v1/staff", query=query)
        seen += [(r["NameId"], r["SchoolId"]) for r in rows]
        if "Link" not in reply.headers:
            break
        links += 1
        url, rel = reply.headers["Link"].split(";")
        assert rel.strip() == 'rel="next"'
        query = {k: v[0] for k, v in parse_qs(urlsplit(url.strip("<> ")).query).items()}
        assert "cursor" in query and "paging.cursor" not in query
        query["paging.cursor"] = query.pop("cursor")
    assert seen == [(601, 101), (601, 102), (602, 102)] and links == 1


def test_link_cursor_followed_verbatim_restarts_at_page_one(cur):
    first, rows = get(cur, "v1/students", query={"paging.limit": "1"})
    verbatim = {k: v[0] for k, v in parse_qs(urlsplit(first.headers["Link"].split(";")[0].strip("<>")).query).items()}
    assert get(cur, "v1/students", query=verbatim)[1] == rows


def test_limit_is_clamped_and_bad_paging_values_are_400(cur):
    assert len(get(cur, "v1/students", query={"paging.limit": "3"}, clamp_limit=2)[1]) == 2
    assert get(cur, "v1/students", query={"paging.limit": "zero"})[0].status == 400
    assert get(cur, "v1/students", query={"paging.cursor": "%%%"})[0].status == 400


def test_overlap_and_empty_faults(cur):
    first, _ = get(cur, "v1/students", query={"paging.limit": "2"}, overlap_rows=1)
    cursor = parse_qs(urlsplit(first.headers["Link"].split(";")[0].strip("<>")).query)["cursor"][0]
    _, second = get(cur, "v1/students", query={"paging.limit": "2", "paging.cursor": cursor})
    assert [s["NameId"] for s in second] == [502, 503]
    reply, rows = get(cur, "v1/students", empty=True)
    assert reply.status == 200 and rows == []


def test_native_api_over_http_with_password_token_and_cursor_rename(tmp_path):
    path = build_tiny_store(tmp_path / "tiny.duckdb")
    with running_simulator(path) as sim:
        form = {"grant_type": "password", "username": "passport-demo", "password": "passport-demo-secret"}
        token = requests.post(sim.sms_token_url, auth=("passport-demo", "passport-demo-secret"), data=form).json()
        assert token["token_type"] == "bearer" and token["expires_in"] == 3600
        session = requests.Session()
        assert session.get(f"{sim.sms_url}/v1/students").status_code == 401
        session.headers["Authorization"] = f"Bearer {token['access_token']}"
        params, names = {"paging.limit": 1}, []
        while params:
            response = session.get(f"{sim.sms_url}/v1/students", params=params)
            names += [s["NameId"] for s in response.json()]
            link = response.links.get("next", {}).get("url")
            # the request parameter is paging.cursor, although Link says cursor=
            params = link and {"paging.limit": 1, "paging.cursor": parse_qs(urlsplit(link).query)["cursor"][0]}
        assert names == [501, 502, 503]
        first = session.get(f"{sim.sms_url}/v1/students?paging.limit=1")
        verbatim = session.get(first.links["next"]["url"])
        assert verbatim.json() == first.json()
