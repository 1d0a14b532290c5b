"""A OneRoster page is taken only when it is the collection asked for (issue 8, failure 1).

A server that lacks the nested ``schools/{id}/...`` endpoints was seen answering them with its
school list (200, wrapper ``schools``); those rows were landed as courses, classes and students.
"""

from __future__ import annotations

import pytest
from stub_server import SCOPE_CORE, SCOPE_ROSTER, Sleeps, paged, people

from passport_pipeline.simulator.oneroster import SCOPES
from passport_pipeline.simulator.server import running_simulator
from passport_pipeline.sources.errors import BadResponse, WrongKind
from passport_pipeline.sources.oneroster import SCHOOL_COLLECTIONS, OneRosterClient
from passport_pipeline.sources.settings import ClientSettings

SCHOOLS = [{"sourcedId": f"s{i}", "status": "active", "name": f"School {i}", "type": "school"} for i in range(3)]
COURSES = [{"sourcedId": "k1", "title": "Algebra", "courseCode": "ALG", "org": {"sourcedId": "s1"}}]
CLASSES = [{"sourcedId": "c1", "title": "Algebra 1", "course": {"sourcedId": "k1"}, "school": {"sourcedId": "s1"}}]
TERMS = [{"sourcedId": "t1", "title": "Fall", "type": "term", "startDate": "2026-08-01", "endDate": "2026-12-20"}]
ENROLLMENTS = [{"sourcedId": "e1", "role": "student", "user": {"sourcedId": "u1"}, "class": {"sourcedId": "c1"}}]


def client(stub, **settings) -> OneRosterClient:
    return OneRosterClient(stub.settings(**settings), sleep=Sleeps())


def read(pull) -> list:
    return [record for page in pull for record in page]


@pytest.mark.parametrize("path, expected", [("schools/s1/courses", "courses"), ("schools/s1/classes", "classes"),
                                            ("schools/s1/students", "students (users)"),
                                            ("schools/s1/enrollments", "enrollments")])
def test_another_collections_wrapper_on_a_nested_path_is_a_wrong_kind(stub, path, expected):
    stub.routes[f"/or/{path}"] = paged(SCHOOLS, wrapper="schools")
    pull = client(stub).collection(path)
    with pytest.raises(WrongKind) as caught:
        read(pull)
    error = caught.value
    assert str(error).startswith(f"{path} answered a list of 'schools' where {expected} were expected: the server "
                                 "does not serve this endpoint as OneRoster describes it")
    assert (error.endpoint, error.received) == (path, "schools") and isinstance(error, BadResponse)
    assert not pull.stats.complete and pull.stats.rows == 0


def test_a_bare_list_is_a_wrong_kind(stub):
    stub.routes["/or/users"] = lambda r: (200, {"X-Total-Count": "3"}, people(3))
    with pytest.raises(WrongKind, match=r"users answered a bare JSON list where OneRoster wraps its records in "
                                        r"\{\"users\": \[\.\.\.\]\}") as caught:
        read(client(stub).collection("users"))
    assert caught.value.received == "a bare list"


@pytest.mark.parametrize("body, said", [({"user": {"sourcedId": "u1", "role": "student"}}, "no list"),
                                        ({"users": people(2), "students": people(2)}, "several lists")])
def test_a_body_without_exactly_one_list_is_a_wrong_kind(stub, body, said):
    stub.routes["/or/users"] = lambda r: (200, {}, body)
    with pytest.raises(WrongKind, match=said):
        read(client(stub).collection("users"))


def test_a_wrapper_named_neither_by_the_spec_nor_after_the_endpoint_is_a_wrong_kind(stub):
    stub.routes["/or/students"] = paged(people(4), wrapper="data")
    with pytest.raises(WrongKind, match="a list of 'data' where students"):
        read(client(stub).collection("students"))


@pytest.mark.parametrize("path, wrapper, records, looks_like", [
    ("schools/s1/courses", "courses", SCHOOLS, "orgs"),
    ("classes", "classes", COURSES, "courses"),
    ("courses", "courses", CLASSES, "classes"),
    ("terms", "terms", SCHOOLS, "orgs"),
    ("students", "users", ENROLLMENTS, "enrollments"),  # an enrollment has a role too
    ("enrollments", "enrollments", people(3), "users"),
    ("orgs", "orgs", TERMS, "academicSessions"),
])
def test_records_of_another_kind_under_the_right_wrapper_are_a_wrong_kind(stub, path, wrapper, records, looks_like):
    stub.routes[f"/or/{path}"] = paged(records, wrapper=wrapper)
    with pytest.raises(WrongKind, match=f"records? under '{wrapper}' that looks? like {looks_like}, where") as caught:
        read(client(stub).collection(path))
    assert caught.value.received == looks_like


def test_a_page_of_nothing_recognizable_is_a_wrong_kind(stub):
    stub.routes["/or/users"] = paged([{"sourcedId": "x"}, "broken", 7])
    with pytest.raises(WrongKind, match="3 records under 'users' of no OneRoster type, where users were expected "
                                         r"\(in OneRoster, a user has a role"):
        read(client(stub).collection("users"))


def test_a_page_where_only_some_records_are_broken_is_still_data(stub):
    users = [{"sourcedId": "x"}, "broken", {"sourcedId": "u1", "role": "student"}]
    stub.routes["/or/users"] = paged(users, wrapper="users")
    assert len(read(client(stub).collection("users"))) == 3


def test_empty_pages_and_any_demographics_object_are_accepted(stub):
    stub.routes["/or/courses"] = paged([], wrapper="courses")
    stub.routes["/or/demographics"] = paged([{"sourcedId": "u1"}, {"sourcedId": "u2", "sex": "female"}],
                                            wrapper="demographics")
    c = client(stub)
    assert read(c.collection("courses")) == []
    assert len(read(c.collection("demographics"))) == 2


def test_a_wrong_page_mid_pull_stops_it_incomplete(stub):
    right = paged(people(6))
    stub.routes["/or/users"] = lambda r: right(r) if r.query["offset"] == "0" else (200, {}, {"orgs": SCHOOLS})
    pull = client(stub).collection("users")
    with pytest.raises(WrongKind, match="'orgs'"):
        read(pull)
    assert pull.stats.pages == 1 and not pull.stats.complete


def test_an_overridden_path_is_verified_as_the_endpoint_it_replaces(stub):
    stub.routes["/or/v1/kids"] = paged(people(2), wrapper="kids")
    c = client(stub, endpoint_paths={"students": "v1/kids"})
    assert len(read(c.collection("students"))) == 2
    assert len(read(c.collection("v1/kids"))) == 2  # as Test Connection asks, the override applied
    stub.routes["/or/v1/kids"] = paged(SCHOOLS, wrapper="schools")
    with pytest.raises(WrongKind, match="v1/kids answered a list of 'schools' where kids \\(users\\)"):
        read(c.collection("students"))


def test_a_path_of_no_known_collection_is_refused_before_any_request(stub):
    with pytest.raises(ValueError, match="not a OneRoster collection"):
        client(stub).collection("widgets")
    assert stub.requests == []


def test_a_wrong_kind_ends_one_nested_school_read_not_the_others(stub):
    stub.token_scope = f"{SCOPE_CORE} {SCOPE_ROSTER}"
    stub.routes["/or/schools/s1/courses"] = paged(SCHOOLS, wrapper="schools")
    stub.routes["/or/schools/s2/courses"] = paged(COURSES, wrapper="courses")
    events = list(client(stub).by_school("courses", ["s1", "s2"]))
    finals = {e.key: e for e in events if e.final}
    assert [(e.key, len(e.records)) for e in events if not e.final] == [("s2", 1)]
    assert isinstance(finals["s1"].error, WrongKind) and not finals["s1"].stats.complete
    assert finals["s2"].error is None and finals["s2"].stats.complete


def test_a_wrong_kind_ends_every_school_of_a_collection_split_locally(stub):
    stub.routes["/or/classes"] = paged(SCHOOLS, wrapper="schools")
    events = list(client(stub).by_school("classes", ["s1", "s2"]))
    assert [e.key for e in events] == ["s1", "s2", None]
    assert all(isinstance(e.error, WrongKind) for e in events)


def test_total_is_the_collections_own_count_from_one_verified_row(stub):
    stub.routes["/or/users"] = paged(people(5))
    stub.routes["/or/courses"] = paged(COURSES, wrapper="courses", total="X-Count")
    stub.routes["/or/classes"] = paged(CLASSES, wrapper="classes", total=None)
    stub.routes["/or/schools/s1/students"] = paged(SCHOOLS, wrapper="schools")
    c = client(stub)
    assert (c.total("users"), c.total("courses"), c.total("classes")) == (5, 1, None)
    assert stub.data("/or/users")[0].query == {"sort": "sourcedId", "limit": "1", "offset": "0"}
    assert len(stub.data("/or/users")) == 1
    with pytest.raises(WrongKind):
        c.total("schools/s1/students")


def test_total_drops_a_refused_sort_like_a_pull(stub):
    data = paged(people(4))
    stub.routes["/or/users"] = lambda r: (400, {}, {"imsx_description": "no sort"}) if "sort" in r.query else data(r)
    assert client(stub).total("users") == 4


@pytest.mark.parametrize("version", ["v1p1", "v1p2"])
def test_wrappers_named_after_the_endpoint_are_read_everywhere(small_district, version):
    """The simulator's non-spec wrappers: ``students``, ``schools``, ``terms``... on every read."""
    with running_simulator(small_district, faults={"non_spec_wrappers": True}) as sim:
        settings = dict(base_url=sim.base_url, token_url=sim.token_url, client_id="passport-demo",
                        client_secret="passport-demo-secret", scopes=tuple(SCOPES[version]), page_size=50,
                        base_path=sim.oneroster_url(version)[len(sim.base_url):],
                        version={"v1p1": "1.1", "v1p2": "1.2"}[version])
        with OneRosterClient(ClientSettings(**settings), sleep=Sleeps()) as c:
            schools = [r["sourcedId"] for r in c.collection("schools").records()]
            for path in ("orgs", "schools", "terms", "gradingPeriods", "academicSessions", "teachers", "students",
                         "users", "courses", "classes", "enrollments", "demographics"):
                pull = c.collection(path)
                assert read(pull) and pull.stats.complete, path
            for collection in SCHOOL_COLLECTIONS:
                finals = [e for e in c.by_school(collection, schools) if e.final]
                assert all(e.error is None and e.stats.complete for e in finals), collection
