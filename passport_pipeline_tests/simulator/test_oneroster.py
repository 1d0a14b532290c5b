"""The OneRoster request engine, against a tiny hand-built district and a larger synthetic one."""

from __future__ import annotations

import json
import re
import statistics
import time
from pathlib import Path

import duckdb
import pytest

from passport_pipeline.simulator import store
from passport_pipeline.simulator.oneroster import SCOPES, OneRosterRequest, Reply, error_reply, handle, required_scope

CORE, ROSTER, DEMOGRAPHICS = SCOPES["v1p1"]

TINY_DISTRICT = """
INSERT INTO orgs (sourced_id, status, date_last_modified, name, type, identifier, parent_id,
                  school_level, grade_low, grade_high, native_id) VALUES
  ('d1', 'active', '2026-07-01 08:00:00', 'Maple District', 'district', 'D01', NULL, NULL, NULL, NULL, 1),
  ('s1', 'active', '2026-07-01 08:00:00', 'Elm Elementary', 'school', '0101', 'd1', 'elementary', 'KG', '05', 101),
  ('s2', 'active', '2026-08-02 09:30:00', 'Oak High', 'school', '0102', 'd1', 'high', '09', '12', 102);
INSERT INTO academic_sessions (sourced_id, status, date_last_modified, title, type, start_date, end_date,
                               parent_id, school_year, org_id, native_id) VALUES
  ('y2027', 'active', '2026-07-01 08:00:00', '2026-2027', 'schoolYear', '2026-08-20', '2027-06-10', NULL, 2027,
   'd1', 1),
  ('sem1', 'active', '2026-07-01 08:00:00', 'Fall', 'semester', '2026-08-20', '2027-01-15', 'y2027', 2027, 'd1', 2),
  ('sem2', 'active', '2026-07-01 08:00:00', 'Spring', 'semester', '2027-01-18', '2027-06-10', 'y2027', 2027, 'd1', 3),
  ('gp1', 'active', '2026-07-01 08:00:00', 'Q1', 'gradingPeriod', '2026-08-20', '2026-10-30', 'sem1', 2027, 'd1', 4),
  ('gp2', 'active', '2026-07-01 08:00:00', 'Q2', 'gradingPeriod', '2026-11-02', '2027-01-15', 'sem1', 2027, 'd1', 5);
INSERT INTO courses (sourced_id, status, date_last_modified, title, course_code, grades, subjects, subject_codes,
                     org_id, school_year_id, native_id) VALUES
  ('c-math', 'active', '2026-07-01 08:00:00', 'Math 3', 'M3', ['03'], ['Math'], ['02052'], 's1', 'y2027', 11),
  ('c-eng', 'active', '2026-07-01 08:00:00', 'English 10', 'E10', ['10'], ['English'], NULL, 's2', 'y2027', 12),
  (' c pad ', 'active', '2026-07-01 08:00:00', 'Padded', NULL, NULL, NULL, NULL, 's2', NULL, 13);
INSERT INTO classes (sourced_id, status, date_last_modified, title, class_code, class_type, location, grades,
                     subjects, course_id, school_id, term_ids, periods, native_id) VALUES
  ('cl1', 'active', '2026-07-01 08:00:00', 'Math 3 - A', 'M3-A', 'scheduled', 'R12', ['03'], ['Math'],
   'c-math', 's1', ['sem1'], ['1'], 21),
  ('cl2', 'active', '2026-08-03 10:00:00', 'English 10 - 1', 'E10-1', 'scheduled', 'B201', ['10'], ['English'],
   'c-eng', 's2', ['sem1', 'sem2'], ['2', '3'], 22),
  ('cl3', 'tobedeleted', '2026-08-03 10:00:00', 'English 10 - 2', 'E10-2', 'homeroom', NULL, ['10', '11'], ['English'],
   ' c pad ', 's2', ['y2027'], NULL, 23);
INSERT INTO users (sourced_id, status, date_last_modified, native_id, role, username, enabled_user, given_name,
                   family_name, middle_name, preferred_first_name, identifier, state_id, email, sms, phone, grades,
                   org_ids, primary_org_id, grad_year, birth_date) VALUES
  ('st1', 'active', '2026-07-01 08:00:00', 1001, 'student', 'ada', true, 'Ada', 'Lovelace', NULL, 'Addie', '5001',
   'ST-1', 'ada@maple.org', NULL, NULL, ['03'], ['s1'], 's1', 2036, '2018-03-01'),
  ('st2', 'active', '2026-08-02 12:00:00.250', 1002, 'student', 'zoe', true, 'Zoë', 'Ñúñez', 'María', NULL, '5002',
   NULL, 'zoe@maple.org', NULL, NULL, ['10'], ['s2'], 's2', 2029, '2011-05-09'),
  ('st3', 'tobedeleted', '2026-08-02 12:00:00', 1003, 'student', 'obrien', false, 'Sean', 'O''Brien', NULL, NULL,
   '5003', 'ST-3', NULL, NULL, NULL, ['10'], ['s2'], 's2', 2029, '2011-01-01'),
  ('t1', 'active', '2026-07-01 08:00:00', 2001, 'teacher', 'grace', true, 'Grace', 'Hopper', NULL, NULL, 'T1', NULL,
   'grace@maple.org', NULL, '555-0101', NULL, ['s1', 's2'], 's2', NULL, NULL),
  ('t2', 'active', '2026-07-01 08:00:00', 2002, 'teacher', 'alan', true, 'Alan', 'Turing', NULL, NULL, NULL, NULL,
   'alan@maple.org', NULL, NULL, NULL, ['s2'], 's2', NULL, NULL),
  ('co1', 'active', '2026-07-01 08:00:00', 2003, 'counselor', 'carl', true, 'Carl', 'Rogers', NULL, NULL, 'C1', NULL,
   NULL, NULL, NULL, NULL, ['s2'], 's2', NULL, NULL),
  ('a1', 'active', '2026-07-01 08:00:00', 2004, 'aide', 'ann', true, 'Ann', 'Sullivan', NULL, NULL, 'A1', NULL,
   NULL, NULL, NULL, NULL, ['s1'], 's1', NULL, NULL),
  ('g1', 'active', '2026-07-01 08:00:00', 3001, 'guardian', NULL, true, 'Anne', 'Lovelace', NULL, NULL, NULL, NULL,
   'anne@example.com', '555-0199', NULL, NULL, ['s1'], 's1', NULL, NULL),
  ('r1', 'active', '2026-07-01 08:00:00', 3002, 'relative', NULL, true, 'Rosa', 'Ñúñez', NULL, NULL, NULL, NULL,
   NULL, NULL, '555-0177', NULL, ['s2'], 's2', NULL, NULL);
INSERT INTO student_contacts VALUES
  ('st1', 'g1', 'mother', true, false, true, true, 1, '2026-07-01 08:00:00'),
  ('st2', 'r1', 'grandparent', false, true, false, true, 2, '2026-07-01 08:00:00');
INSERT INTO enrollments (sourced_id, status, date_last_modified, user_id, class_id, school_id, role, "primary",
                         begin_date, end_date) VALUES
  ('e1', 'active', '2026-07-01 08:00:00', 'st1', 'cl1', 's1', 'student', false, '2026-08-20', '2027-01-15'),
  ('e2', 'active', '2026-07-01 08:00:00', 't1', 'cl1', 's1', 'teacher', true, '2026-08-20', '2027-01-15'),
  ('e3', 'active', '2026-08-02 12:00:00', 'st2', 'cl2', 's2', 'student', false, '2026-08-21', '2027-06-10'),
  ('e4', 'tobedeleted', '2026-08-02 12:00:00', 'st3', 'cl2', 's2', 'student', false, '2026-08-20', NULL),
  ('e5', 'active', '2026-07-01 08:00:00', 't2', 'cl2', 's2', 'teacher', true, '2026-08-20', '2027-06-10'),
  ('e6', 'active', '2026-07-01 08:00:00', 'st2', 'cl3', 's2', 'student', false, '2026-08-20', '2027-06-10');
INSERT INTO demographics (sourced_id, status, date_last_modified, birth_date, sex, american_indian_or_alaska_native,
                          asian, black_or_african_american, native_hawaiian_or_other_pacific_islander, white,
                          demographic_race_two_or_more_races, hispanic_or_latino_ethnicity, country_of_birth_code,
                          state_of_birth_abbreviation, city_of_birth, public_school_residence_status) VALUES
  ('st1', 'active', '2026-07-01 08:00:00', '2018-03-01', 'female', false, false, false, false, true, false, false,
   'US', 'WA', 'Spokane', '01652'),
  ('st2', 'active', '2026-07-01 08:00:00', '2011-05-09', 'female', false, false, false, false, false, false, true,
   'MX', NULL, 'Puebla', '01652');
"""


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    """The tiny district: 2 schools, 5 sessions, 3 classes, 9 users, 6 enrollments."""
    connection = store.connect(tmp_path_factory.mktemp("tiny") / "tiny.duckdb")
    connection.execute(TINY_DISTRICT)
    store.finalize(connection)
    return connection


@pytest.fixture(scope="module")
def bulk(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    """A synthetic district of 700 users and 2,500 enrollments, built in SQL, for paging."""
    connection = store.connect(tmp_path_factory.mktemp("bulk") / "bulk.duckdb")
    connection.execute(
        """
        INSERT INTO orgs (sourced_id, date_last_modified, name, type, native_id)
        SELECT printf('s%d', i), TIMESTAMP '2026-07-01', 'School ' || i, 'school', i FROM range(3) t(i);
        INSERT INTO users (sourced_id, status, date_last_modified, native_id, role, given_name, family_name, org_ids)
        SELECT printf('u%04d', i), 'active', TIMESTAMP '2026-07-01' + to_minutes(i % 50), i,
               CASE WHEN i % 7 = 0 THEN 'teacher' WHEN i % 11 = 0 THEN 'guardian' ELSE 'student' END,
               'G' || i, 'F' || (i % 13), [printf('s%d', i % 3)]
        FROM range(700) t(i);
        INSERT INTO enrollments (sourced_id, status, date_last_modified, user_id, class_id, school_id, role, "primary")
        SELECT printf('e%05d', i), CASE WHEN i % 9 = 0 THEN 'tobedeleted' ELSE 'active' END,
               TIMESTAMP '2026-07-01' + to_minutes(i % 90), printf('u%04d', i % 700), printf('c%03d', i % 120),
               printf('s%d', i % 3), 'student', false
        FROM range(2500) t(i);
        """
    )
    store.finalize(connection)
    return connection


def get(con, path: str, version: str = "v1p1", scopes=None, **options) -> tuple[Reply, dict]:
    query = options.pop("query", {})
    base = f"http://sim.test/ims/oneroster/{version}"
    request = OneRosterRequest(
        version, path, query, base, frozenset(SCOPES[version] if scopes is None else scopes), **options
    )
    reply = handle(con.cursor(), request)
    return reply, json.loads(reply.body)


def ids(con, path: str, version: str = "v1p1", **options) -> list[str]:
    reply, body = get(con, path, version, **options)
    assert reply.status == 200, body
    (rows,) = body.values()
    return [row["sourcedId"] for row in rows]


def code_minor(body: dict) -> str:
    return body["imsx_CodeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"]


def links(reply: Reply) -> dict[str, str]:
    return {rel: url for url, rel in re.findall(r'<([^>]*)>; rel="(\w+)"', reply.headers["Link"])}


# --- routing and wrappers ---------------------------------------------------------------------

@pytest.mark.parametrize(
    ("path", "spec_key", "expected"),
    [
        ("academicSessions", "academicSessions", ["gp1", "gp2", "sem1", "sem2", "y2027"]),
        ("classes", "classes", ["cl1", "cl2", "cl3"]),
        ("courses", "courses", [" c pad ", "c-eng", "c-math"]),
        ("demographics", "demographics", ["st1", "st2"]),
        ("enrollments", "enrollments", ["e1", "e2", "e3", "e4", "e5", "e6"]),
        ("gradingPeriods", "academicSessions", ["gp1", "gp2"]),
        ("orgs", "orgs", ["d1", "s1", "s2"]),
        ("schools", "orgs", ["s1", "s2"]),
        ("students", "users", ["st1", "st2", "st3"]),
        ("teachers", "users", ["t1", "t2"]),
        ("terms", "academicSessions", ["sem1", "sem2", "y2027"]),
        ("users", "users", ["a1", "co1", "g1", "r1", "st1", "st2", "st3", "t1", "t2"]),
    ],
)
def test_collections_wrap_rows_in_spec_or_own_keys(con, path, spec_key, expected):
    reply, body = get(con, path)
    assert reply.status == 200 and list(body) == [spec_key]
    assert [row["sourcedId"] for row in body[spec_key]] == expected
    assert reply.headers["X-Total-Count"] == str(len(expected))
    _, quirky = get(con, path, non_spec_wrappers=True)
    assert list(quirky) == [path] and quirky[path] == body[spec_key]


@pytest.mark.parametrize(
    ("path", "spec_key", "own_key"),
    [
        ("orgs/d1", "org", "org"),
        ("schools/s1", "org", "school"),
        ("academicSessions/y2027", "academicSession", "academicSession"),
        ("terms/sem1", "academicSession", "term"),
        ("gradingPeriods/gp1", "academicSession", "gradingPeriod"),
        ("courses/c-math", "course", "course"),
        ("classes/cl1", "class", "class"),
        ("users/t1", "user", "user"),
        ("students/st1", "user", "student"),
        ("teachers/t1", "user", "teacher"),
        ("enrollments/e1", "enrollment", "enrollment"),
        ("demographics/st1", "demographics", "demographics"),
    ],
)
def test_singles_wrap_one_object(con, path, spec_key, own_key):
    reply, body = get(con, path)
    assert reply.status == 200 and list(body) == [spec_key]
    assert body[spec_key]["sourcedId"] == path.split("/")[1]
    _, quirky = get(con, path, non_spec_wrappers=True)
    assert quirky == {own_key: body[spec_key]}


@pytest.mark.parametrize(
    "path", ["users/nobody", "students/t1", "teachers/a1", "schools/d1", "terms/gp1", "gradingPeriods/y2027",
             "users/st1' OR '1'='1", "courses/c pad"],
)
def test_absent_or_other_kind_of_object_is_404(con, path):
    reply, body = get(con, path)
    assert reply.status == 404 and code_minor(body) == "unknownobject"


def test_sourced_id_with_spaces_is_served_and_escaped_in_hrefs(con):
    reply, body = get(con, "courses/ c pad ")
    assert reply.status == 200 and body["course"]["sourcedId"] == " c pad "
    assert ids(con, "courses/ c pad /classes") == ["cl3"]
    _, cls = get(con, "classes/cl3")
    assert cls["class"]["course"]["href"] == "http://sim.test/ims/oneroster/v1p1/courses/%20c%20pad%20"


@pytest.mark.parametrize(
    "path",
    ["", "nothing", "users/t1/orgs", "classes/cl1/enrollments", "schools/s1/classes/cl1",
     "schools/s1/students/st1/classes", "users/t1/classes/x", "orgs/d1/schools"],
)
def test_unknown_paths_are_404(con, path):
    reply, body = get(con, path)
    assert reply.status == 404 and code_minor(body) == "unknownobject"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("schools/s2/classes", ["cl2", "cl3"]),
        ("schools/s1/courses", ["c-math"]),
        ("schools/s2/enrollments", ["e3", "e4", "e5", "e6"]),
        ("schools/s2/students", ["st2", "st3"]),
        ("schools/s1/teachers", ["t1"]),
        ("schools/s1/terms", ["sem1"]),
        ("schools/s2/terms", ["sem1", "sem2", "y2027"]),
        ("terms/y2027/classes", ["cl3"]),
        ("schools/s2/classes/cl2/enrollments", ["e3", "e4", "e5"]),
        ("schools/s2/classes/cl2/students", ["st2", "st3"]),
        ("schools/s1/classes/cl1/teachers", ["t1"]),
        ("classes/cl2/students", ["st2", "st3"]),
        ("classes/cl2/teachers", ["t2"]),
        ("courses/c-eng/classes", ["cl2"]),
        ("students/st2/classes", ["cl2", "cl3"]),
        ("teachers/t1/classes", ["cl1"]),
        ("terms/sem1/classes", ["cl1", "cl2"]),
        ("terms/sem1/gradingPeriods", ["gp1", "gp2"]),
        ("users/t2/classes", ["cl2"]),
    ],
)
def test_nested_endpoints(con, path, expected):
    assert ids(con, path) == expected


@pytest.mark.parametrize(
    "path", ["schools/nope/students", "schools/s1/classes/cl2/students", "students/t1/classes", "terms/gp1/classes",
             "classes/zz/students"],
)
def test_nested_endpoint_of_absent_parent_is_404(con, path):
    reply, body = get(con, path)
    assert reply.status == 404 and code_minor(body) == "unknownobject"


# --- entities ---------------------------------------------------------------------------------

def test_v1p1_user_json(con):
    _, body = get(con, "users/st1")
    user = body["user"]
    assert user["role"] == "student" and user["enabledUser"] == "true"
    assert user["userIds"] == [{"type": "stateId", "identifier": "ST-1"}]
    base = "http://sim.test/ims/oneroster/v1p1"
    assert user["agents"] == [{"href": f"{base}/users/g1", "sourcedId": "g1", "type": "user"}]
    assert user["orgs"] == [{"href": f"{base}/orgs/s1", "sourcedId": "s1", "type": "org"}]
    assert user["grades"] == ["03"]
    assert user["metadata"] == {"skyward.nativeId": "1001", "skyward.stateId": "ST-1", "skyward.gradYear": "2036"}
    assert user["dateLastModified"] == "2026-07-01T08:00:00.000Z"
    assert "roles" not in user
    assert get(con, "users/co1")[1]["user"]["role"] == "administrator"
    assert get(con, "users/st3")[1]["user"]["enabledUser"] == "false"


def test_contacts_carry_skyward_relationships(con):
    _, body = get(con, "users/g1")
    assert body["user"]["role"] == "guardian"
    assert body["user"]["metadata"]["skyward.relationships"] == [{
        "studentSourcedId": "st1", "relationship": "mother", "emergencyContact": "false",
        "custodial": "true", "pickupAllowed": "true", "contactOrder": "1",
    }]
    _, relative = get(con, "users/r1")
    assert relative["user"]["metadata"]["skyward.relationships"][0]["emergencyContact"] == "true"


def test_v1p2_users_carry_roles_instead_of_role_and_orgs(con):
    _, body = get(con, "users/t1", "v1p2")
    user = body["user"]
    assert "role" not in user and "orgs" not in user
    base = "http://sim.test/ims/oneroster/v1p2"
    assert user["roles"] == [
        {"roleType": role_type, "role": "teacher",
         "org": {"href": f"{base}/orgs/{org}", "sourcedId": org, "type": "org"}}
        for role_type, org in (("secondary", "s1"), ("primary", "s2"))
    ]
    assert user["primaryOrg"]["sourcedId"] == "s2"
    student = get(con, "users/st1", "v1p2")[1]["user"]
    assert student["userMasterIdentifier"] == "ST-1" and student["preferredFirstName"] == "Addie"
    assert get(con, "users/co1", "v1p2")[1]["user"]["roles"][0]["role"] == "counselor"
    assert ids(con, "users", "v1p2", query={"filter": "roles.role='guardian' OR roles.role='relative'"}) == ["g1", "r1"]
    assert ids(con, "users", "v1p2", query={"filter": "roles.org.sourcedId='s1' AND roles.role='teacher'"}) == ["t1"]
    reply, body = get(con, "users", "v1p2", query={"filter": "role='student'"})
    assert reply.status == 400 and code_minor(body) == "invalid_filter_field"


def test_other_entities_json(con):
    base = "http://sim.test/ims/oneroster/v1p1"
    cls = get(con, "classes/cl2")[1]["class"]
    assert cls["terms"] == [
        {"href": f"{base}/academicSessions/{term}", "sourcedId": term, "type": "academicSession"}
        for term in ("sem1", "sem2")
    ]
    assert cls["course"]["sourcedId"] == "c-eng" and cls["school"]["type"] == "org"
    assert cls["periods"] == ["2", "3"] and cls["location"] == "B201" and cls["grades"] == ["10"]
    enrollment = get(con, "enrollments/e2")[1]["enrollment"]
    assert enrollment["primary"] == "true" and enrollment["role"] == "teacher"
    assert enrollment["beginDate"] == "2026-08-20" and enrollment["user"]["href"] == f"{base}/users/t1"
    district = get(con, "orgs/d1")[1]["org"]
    assert [child["sourcedId"] for child in district["children"]] == ["s1", "s2"] and district["parent"] is None
    assert get(con, "schools/s1")[1]["org"]["parent"]["sourcedId"] == "d1"
    term = get(con, "terms/sem1")[1]["academicSession"]
    assert term["schoolYear"] == "2027" and term["parent"]["sourcedId"] == "y2027"
    assert [c["sourcedId"] for c in term["children"]] == ["gp1", "gp2"]
    demographics = get(con, "demographics/st2")[1]["demographics"]
    assert demographics["hispanicOrLatinoEthnicity"] == "true" and demographics["birthDate"] == "2011-05-09"
    assert demographics["countryOfBirthCode"] == "MX"


# --- query parameters -------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("path", "filter_", "expected"),
    [
        ("users", "familyName='Lovelace'", ["g1", "st1"]),
        ("users", "familyName!='Lovelace'", ["a1", "co1", "r1", "st2", "st3", "t1", "t2"]),
        ("users", "email!='ada@maple.org'", ["a1", "co1", "g1", "r1", "st2", "st3", "t1", "t2"]),
        ("users", "givenName>'Carl'", ["r1", "st2", "st3", "t1"]),
        ("users", "givenName>='Carl'", ["co1", "r1", "st2", "st3", "t1"]),
        ("users", "givenName<'Alan'", ["st1"]),
        ("users", "givenName<='Alan'", ["st1", "t2"]),
        ("users", "familyName~'LOVE'", ["g1", "st1"]),
        ("users", "role='administrator'", ["co1"]),
        ("users", "enabledUser='false'", ["st3"]),
        ("users", "grades='03'", ["st1"]),
        ("users", "orgs='s1'", ["a1", "g1", "st1", "t1"]),
        ("users", "orgs.sourcedId!='s2'", ["a1", "g1", "st1"]),
        ("users", "agents.sourcedId='st2'", ["r1"]),
        ("classes", "grades~'1'", ["cl2", "cl3"]),
        ("classes", "terms.sourcedId='sem2'", ["cl2"]),
        ("classes", "school.sourcedId='s1'", ["cl1"]),
        ("classes", "course='c-eng'", ["cl2"]),
        ("enrollments", "beginDate>'2026-08-20'", ["e3"]),
        ("enrollments", "endDate<='2027-01-15'", ["e1", "e2"]),
        ("enrollments", "primary='true'", ["e2", "e5"]),
        ("enrollments", "status='tobedeleted'", ["e4"]),
        ("demographics", "birthDate<'2015-01-01'", ["st2"]),
        ("academicSessions", "schoolYear='2027' AND type='gradingPeriod'", ["gp1", "gp2"]),
        ("academicSessions", "type='schoolYear' OR title~'spr'", ["sem2", "y2027"]),
        ("orgs", "children.sourcedId='s2'", ["d1"]),
    ],
)
def test_filters(con, path, filter_, expected):
    assert ids(con, path, query={"filter": filter_}) == expected


@pytest.mark.parametrize(
    "since", ["2026-08-02T12:00:00Z", "2026-08-02T12:00:00.000Z", "2026-08-02T14:00:00+02:00", "2026-08-02T12:00:00"]
)
def test_date_last_modified_delta_filter(con, since):
    assert ids(con, "users", query={"filter": f"dateLastModified>'{since}'"}) == ["st2"]
    assert ids(con, "orgs", query={"filter": f"dateLastModified<'{since}'"}) == ["d1", "s1", "s2"]
    assert ids(con, "users", query={"filter": "dateLastModified>='2026-08-02'"}) == ["st2", "st3"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("O'Brien", ["st3"]),
        ("Ñúñez", ["r1", "st2"]),
        ("x' OR '1'='1", []),
        ("x'; DROP TABLE users; --", []),
        ("Lovelace AND Hopper", []),
        ("%", []),
        ("", []),
    ],
)
def test_hostile_filter_values_are_values(con, value, expected):
    assert ids(con, "users", query={"filter": f"familyName='{value}'"}) == expected
    assert con.execute("SELECT count(*) FROM users").fetchone()[0] == 9


def test_contains_is_case_insensitive_on_unicode(con):
    assert ids(con, "users", query={"filter": "familyName~'ÑÚ'"}) == ["r1", "st2"]
    assert ids(con, "users", query={"filter": "familyName~'%'"}) == []


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"filter": "familyName=Lovelace"}, "invalid_filter_field"),
        ({"filter": "familyName='a' XOR givenName='b'"}, "invalid_filter_field"),
        ({"filter": "familyName='a' AND givenName='b' AND role='student'"}, "invalid_filter_field"),
        ({"filter": "shoeSize='9'"}, "invalid_filter_field"),
        ({"filter": "metadata='x'"}, "invalid_filter_field"),
        ({"filter": "dateLastModified~'2026'"}, "invalid_filter_field"),
        ({"filter": "dateLastModified>'yesterday'"}, "invalid_filter_field"),
        ({"filter": "enabledUser='yes'"}, "invalid_filter_field"),
        ({"filter": "enabledUser>'false'"}, "invalid_filter_field"),
        ({"fields": "sourcedId,shoeSize"}, "invalid_selection_field"),
        ({"sort": "shoeSize"}, "invalid_sort_field"),
        ({"sort": "userIds"}, "invalid_sort_field"),
        ({"sort": "familyName", "orderBy": "sideways"}, "invalid_sort_field"),
        ({"limit": "-1"}, "invaliddata"),
        ({"limit": "0"}, "invaliddata"),
        ({"limit": "ten"}, "invaliddata"),
        ({"offset": "-5"}, "invaliddata"),
        ({"offset": "1.5"}, "invaliddata"),
    ],
)
def test_bad_parameters_are_400(con, query, code):
    reply, body = get(con, "users", query=query)
    assert reply.status == 400 and code_minor(body) == code
    assert body["imsx_codeMajor"] == "failure" and body["imsx_severity"] == "error"


def test_fields_projection(con):
    _, body = get(con, "users", query={"fields": "givenName, sourcedId", "filter": "role='teacher'"})
    assert body["users"] == [{"givenName": "Grace", "sourcedId": "t1"}, {"givenName": "Alan", "sourcedId": "t2"}]
    assert get(con, "classes/cl1", query={"fields": "title"})[1] == {"class": {"title": "Math 3 - A"}}
    assert list(get(con, "users/t1", "v1p2", query={"fields": "roles"})[1]["user"]) == ["roles"]


def test_sort(con):
    assert ids(con, "users", query={"sort": "familyName", "orderBy": "desc", "filter": "role='student'"}) == [
        "st2", "st3", "st1"]
    assert ids(con, "users", query={"sort": "dateLastModified"})[-2:] == ["st3", "st2"]
    assert ids(con, "enrollments", query={"sort": "user.sourcedId", "orderBy": "desc", "limit": "2"}) == ["e5", "e2"]
    assert ids(con, "users", query={"sort": "sourcedId", "orderBy": "desc", "limit": "2"}) == ["t2", "t1"]


# --- paging -----------------------------------------------------------------------------------

def test_paging_headers(bulk):
    reply, body = get(bulk, "enrollments", query={"limit": "1000", "offset": "1000", "filter": "status='active'"})
    assert reply.headers["X-Total-Count"] == "2222" and len(body["enrollments"]) == 1000
    base = "http://sim.test/ims/oneroster/v1p1/enrollments?filter=status%3D%27active%27"
    assert links(reply) == {
        "first": f"{base}&limit=1000&offset=0",
        "prev": f"{base}&limit=1000&offset=0",
        "next": f"{base}&limit=1000&offset=2000",
        "last": f"{base}&limit=1000&offset=2000",
    }
    last, body = get(bulk, "enrollments", query={"limit": "1000", "offset": "2000", "filter": "status='active'"})
    assert len(body["enrollments"]) == 222 and set(links(last)) == {"first", "prev", "last"}
    first, _ = get(bulk, "enrollments")
    assert set(links(first)) == {"first", "next", "last"} and links(first)["last"].endswith("limit=100&offset=2400")


@pytest.mark.parametrize("version", ["v1p1", "v1p2"])
@pytest.mark.parametrize(
    ("path", "query", "sql"),
    [
        ("enrollments", {}, "SELECT sourced_id FROM enrollments"),
        ("users", {"sort": "familyName", "orderBy": "desc"}, "SELECT sourced_id FROM users"),
        ("students", {}, "SELECT sourced_id FROM users WHERE role = 'student'"),
        ("enrollments", {"filter": "dateLastModified>='2026-07-01T01:00:00Z' OR status='tobedeleted'"},
         "SELECT sourced_id FROM enrollments WHERE date_last_modified >= '2026-07-01 01:00' OR status = 'tobedeleted'"),
        ("schools/s1/enrollments", {"sort": "dateLastModified"},
         "SELECT sourced_id FROM enrollments WHERE school_id = 's1'"),
    ],
)
def test_paging_to_the_end_yields_every_row_once(bulk, version, path, query, sql):
    expected = sorted(row[0] for row in bulk.execute(sql).fetchall())
    seen, offset = [], 0
    while True:
        reply, body = get(bulk, path, version, query={**query, "limit": "333", "offset": str(offset)})
        (rows,) = body.values()
        assert reply.headers["X-Total-Count"] == str(len(expected))
        seen += [row["sourcedId"] for row in rows]
        if "next" not in links(reply):
            break
        offset += 333
    assert len(seen) == len(expected) and sorted(seen) == expected


GENERATED_COLLECTIONS = {
    "academicSessions": "SELECT sourced_id FROM academic_sessions",
    "classes": "SELECT sourced_id FROM classes",
    "courses": "SELECT sourced_id FROM courses",
    "demographics": "SELECT sourced_id FROM demographics",
    "enrollments": "SELECT sourced_id FROM enrollments",
    "gradingPeriods": "SELECT sourced_id FROM academic_sessions WHERE type = 'gradingPeriod'",
    "orgs": "SELECT sourced_id FROM orgs",
    "schools": "SELECT sourced_id FROM orgs WHERE type = 'school'",
    "students": "SELECT sourced_id FROM users WHERE role = 'student'",
    "teachers": "SELECT sourced_id FROM users WHERE role = 'teacher'",
    "terms": "SELECT sourced_id FROM academic_sessions WHERE type <> 'gradingPeriod'",
    "users": "SELECT sourced_id FROM users",
}


@pytest.mark.parametrize("version", ["v1p1", "v1p2"])
def test_generated_district_pages_completely(small_district, version):
    con = store.connect(small_district, read_only=True)
    try:
        for path, sql in GENERATED_COLLECTIONS.items():
            expected = sorted(row[0] for row in con.execute(sql).fetchall())
            seen = [i for offset in range(0, len(expected) + 1, 400)
                    for i in ids(con, path, version, query={"limit": "400", "offset": str(offset)})]
            assert seen == expected, path
    finally:
        con.close()


def test_sorted_pages_keep_the_order_across_pages(bulk):
    query = {"sort": "familyName", "orderBy": "desc", "filter": "role='student'"}
    whole = ids(bulk, "users", query={**query, "limit": "1000"})
    paged = [
        i for offset in range(0, 1000, 70)
        for i in ids(bulk, "users", query={**query, "limit": "70", "offset": str(offset)})
    ]
    assert paged == whole
    rows = sorted(bulk.execute("SELECT family_name, sourced_id FROM users WHERE role = 'student'").fetchall())
    rows.sort(key=lambda row: row[0], reverse=True)  # stable: ties stay in sourcedId order
    assert whole == [sourced_id for _, sourced_id in rows]


def test_limit_capped_at_10000_and_by_the_clamp_fault(bulk):
    reply, body = get(bulk, "enrollments", query={"limit": "50000"})
    assert len(body["enrollments"]) == 2500 and "limit=10000" in links(reply)["first"]
    reply, body = get(bulk, "enrollments", query={"limit": "500", "offset": "100"}, clamp_limit=40)
    assert len(body["enrollments"]) == 40 and links(reply)["next"].endswith("limit=40&offset=140")
    assert reply.headers["X-Total-Count"] == "2500"


def test_overlap_fault_repeats_rows_across_pages(bulk):
    page = {"limit": "100"}
    first = ids(bulk, "enrollments", query={**page, "offset": "0"}, overlap_rows=10)
    second = ids(bulk, "enrollments", query={**page, "offset": "100"}, overlap_rows=10)
    assert second[:10] == first[-10:] and len(second) == 100
    filtered = ids(bulk, "students", query={**page, "offset": "100"}, overlap_rows=5)
    assert filtered[:5] == ids(bulk, "students", query={"limit": "5", "offset": "95"})


@pytest.mark.parametrize("path", ["enrollments", "students", "schools/s1/enrollments"])
def test_short_fault_serves_the_first_rows_under_the_true_total(bulk, path):
    total = get(bulk, path, query={"limit": "1"})[0].headers["X-Total-Count"]
    whole = ids(bulk, path, query={"limit": "1000"})
    pages = [get(bulk, path, query={"limit": "100", "offset": str(offset)}, short_rows=250, overlap_rows=5)
             for offset in (0, 100, 200, 300)]
    served = [[row["sourcedId"] for row in next(iter(body.values()))] for _, body in pages]
    assert [len(rows) for rows in served] == [100, 100, 55, 0]
    assert list(dict.fromkeys(served[0] + served[1] + served[2])) == whole[:250]
    assert ["next" in links(reply) for reply, _ in pages] == [True, True, False, False]
    assert {reply.headers["X-Total-Count"] for reply, _ in pages} == {total} and int(total) > 250


def test_empty_fault_answers_no_rows(con):
    reply, body = get(con, "users", empty=True)
    assert reply.status == 200 and body == {"users": []} and reply.headers["X-Total-Count"] == "0"
    assert "next" not in links(reply)


def test_plain_page_is_a_seq_range_and_filtered_page_renders_only_its_rows(bulk):
    class Recorder:
        def __init__(self, cursor):
            self.cursor, self.sql = cursor, []

        def execute(self, sql, params=None):
            self.sql.append(sql)
            return self.cursor.execute(sql, params)

    plain = Recorder(bulk.cursor())
    handle(plain, OneRosterRequest("v1p1", "enrollments", {"limit": "50", "offset": "2000"}, "http://x",
                                   frozenset([CORE])))
    assert not any("OFFSET" in sql or "ORDER BY" in sql for sql in plain.sql)
    assert any("t.seq BETWEEN $lo AND $hi" in sql and "unnest" not in sql for sql in plain.sql)
    filtered = Recorder(bulk.cursor())
    handle(filtered, OneRosterRequest("v1p1", "students", {"offset": "300"}, "http://x", frozenset([CORE])))
    assert any("OFFSET" in sql and "to_json" not in sql for sql in filtered.sql)


@pytest.mark.slow
def test_a_page_costs_the_same_at_offset_zero_and_seven_million(tmp_path: Path):
    con = store.connect(tmp_path / "big.duckdb")
    con.execute(
        """INSERT INTO enrollments SELECT printf('e%08d', i), 'active', TIMESTAMP '2026-07-01', NULL, i,
               printf('u%07d', i // 7), printf('c%06d', i % 50000), printf('s%03d', i % 40), 'student', false,
               DATE '2026-08-20', NULL
           FROM range(7000000) t(i)"""
    )
    con.execute("CHECKPOINT")

    def cost(offset: int) -> float:
        """Median seconds per 1000-row page (the median shrugs off a busy neighbour)."""
        request = OneRosterRequest("v1p1", "enrollments", {"limit": "1000", "offset": str(offset)}, "http://x",
                                   frozenset([CORE]))
        handle(con.cursor(), request)
        times = []
        for _ in range(9):
            started = time.perf_counter()
            reply = handle(con.cursor(), request)
            times.append(time.perf_counter() - started)
        assert len(json.loads(reply.body)["enrollments"]) == 1000
        return statistics.median(times)

    at_start, at_end = cost(0), cost(6_999_000)
    print(f"1000-row page: {at_start * 1000:.1f} ms at offset 0, {at_end * 1000:.1f} ms at offset 6,999,000")
    assert at_end < 2 * at_start + 0.002
    assert at_end < 0.05  # well within the 50,000 records/s budget (20 ms a page) even on a loaded machine


# --- scopes, restriction, errors --------------------------------------------------------------

@pytest.mark.parametrize(
    ("scopes", "path", "status"),
    [
        ({CORE}, "users", 200),
        ({CORE}, "users/t1", 200),
        ({CORE}, "schools/s1/students", 403),
        ({CORE}, "demographics", 403),
        ({ROSTER}, "users", 200),
        ({ROSTER}, "schools/s1/classes/cl1/students", 200),
        ({ROSTER}, "demographics/st1", 403),
        ({DEMOGRAPHICS}, "demographics", 200),
        ({DEMOGRAPHICS}, "users", 403),
        ({SCOPES["v1p2"][0]}, "users", 403),
        (set(), "orgs", 403),
    ],
)
def test_scopes(con, scopes, path, status):
    reply, body = get(con, path, scopes=scopes)
    assert reply.status == status
    if status == 403:
        assert code_minor(body) == "forbidden" and required_scope("v1p1", path) in body["imsx_description"]


def test_required_scope_is_version_specific():
    assert required_scope("v1p2", "users") == "https://purl.imsglobal.org/spec/or/v1p2/scope/roster-core.readonly"
    assert required_scope("v1p1", "classes/x/students") == ROSTER
    assert required_scope("v1p1", "demographics/x") == DEMOGRAPHICS


def test_restricted_credential_sees_only_its_schools(con):
    only_s1 = {"visible_schools": frozenset({"s1"})}
    assert ids(con, "orgs", **only_s1) == ["d1", "s1"]
    district = get(con, "orgs/d1", **only_s1)[1]["org"]
    assert [child["sourcedId"] for child in district["children"]] == ["s1"]
    assert ids(con, "schools", **only_s1) == ["s1"]
    assert ids(con, "users", **only_s1) == ["a1", "g1", "st1", "t1"]
    assert ids(con, "enrollments", **only_s1) == ["e1", "e2"]
    assert ids(con, "courses", **only_s1) == ["c-math"]
    assert ids(con, "demographics", **only_s1) == ["st1"]
    assert ids(con, "academicSessions", **only_s1) == ["gp1", "gp2", "sem1", "sem2", "y2027"]
    assert ids(con, "schools/s1/students", **only_s1) == ["st1"]
    assert ids(con, "teachers/t1/classes", **only_s1) == ["cl1"]
    for path in ("classes/cl2", "users/st2", "demographics/st2", "schools/s2/students", "classes/cl2/students"):
        reply, body = get(con, path, **only_s1)
        assert reply.status == 404 and code_minor(body) == "unknownobject", path
    assert ids(con, "users", visible_schools=frozenset()) == []


def test_plain_errors_fault(con):
    reply, body = get(con, "users/nobody", plain_errors=True)
    assert reply.status == 404 and list(body) == ["error"] and "nobody" in body["error"]


def test_error_reply_shape():
    reply = error_reply(429, "server_busy", "slow down")
    assert reply.status == 429 and json.loads(reply.body) == {
        "imsx_codeMajor": "failure", "imsx_severity": "error", "imsx_description": "slow down",
        "imsx_CodeMinor": {"imsx_codeMinorField": [
            {"imsx_codeMinorFieldName": "TargetEndSystemReferenceID", "imsx_codeMinorFieldValue": "server_busy"}]},
    }
    assert json.loads(error_reply(500, "internal_server_error", "boom", plain=True).body) == {"error": "boom"}


@pytest.mark.parametrize(
    ("version", "path", "query"),
    [
        ("v9", "users", {}),
        ("v1p1", "/users", {}),
        ("v1p1", "users//", {}),
        ("v1p1", "users", {"filter": "'"}),
        ("v1p1", "users", {"filter": "givenName='\x00'", "sort": "givenName"}),
        ("v1p1", "users", {"fields": ",,,"}),
        ("v1p1", "users", {"limit": "1e3"}),
        ("v1p1", "users", {"offset": "99999999999999999999999"}),
    ],
)
def test_never_raises(con, version, path, query):
    reply = handle(con.cursor(), OneRosterRequest(version, path, query, "http://x", frozenset(SCOPES["v1p1"])))
    assert reply.status in (200, 400, 404)
    json.loads(reply.body)
