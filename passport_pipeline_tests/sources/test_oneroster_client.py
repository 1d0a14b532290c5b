"""OneRoster paging against every quirk of SOURCE_APIS.md §4, on a scripted stub server."""

from __future__ import annotations

import datetime as dt

import pytest
from stub_server import SCOPE_CORE, SCOPE_ROSTER, Sleeps, paged, people, scripted

from passport_pipeline.sources.errors import WrongKind
from passport_pipeline.sources.oneroster import OneRosterClient


def client(stub, **settings) -> OneRosterClient:
    return OneRosterClient(stub.settings(**settings), sleep=Sleeps())


def read(pull):
    return [r["sourcedId"] for page in pull for r in page]


def offsets(stub, path="/or/users"):
    return [int(r.query["offset"]) for r in stub.data(path)]


def test_a_silent_clamp_is_detected_and_paging_goes_by_rows_received(stub):
    stub.routes["/or/users"] = paged(people(10), clamp=4, link=False)
    pull = client(stub, page_size=10).collection("users")
    assert read(pull) == [f"u{i:03d}" for i in range(10)]
    assert pull.stats.clamped_limit == 4 and pull.stats.complete
    assert offsets(stub) == [0, 4, 8]
    assert any("caps the page size" in w for w in pull.stats.warnings)


def test_short_pages_alone_never_end_a_pull(stub):
    stub.routes["/or/users"] = paged(people(10), clamp=4, total=None, link=False)
    assert len(read(client(stub, page_size=10).collection("users"))) == 10
    assert offsets(stub) == [0, 4, 8, 10]  # only the empty page ends it


def test_link_without_next_ends_the_pull(stub):
    stub.routes["/or/users"] = paged(people(7), total=None)
    assert len(read(client(stub).collection("users"))) == 7
    assert offsets(stub) == [0, 3, 6]


@pytest.mark.parametrize("header", ["X-Total-Count", "X-Count"])
def test_reaching_the_total_ends_the_pull(stub, header):
    stub.routes["/or/users"] = paged(people(6), total=header, link=False)
    assert len(read(client(stub).collection("users"))) == 6
    assert offsets(stub) == [0, 3]


def test_an_empty_page_ends_the_pull(stub):
    stub.routes["/or/users"] = paged(people(6), total=None, link=False)
    assert len(read(client(stub).collection("users"))) == 6
    assert offsets(stub) == [0, 3, 6]


def test_overlapping_pages_are_deduplicated_and_the_tail_is_not_lost(stub):
    stub.routes["/or/users"] = paged(people(8), overlap=1, clamp=None)
    pull = client(stub, page_size=4).collection("users")
    assert read(pull) == [f"u{i:03d}" for i in range(8)]
    assert pull.stats.duplicates == 1 and pull.stats.unique_rows == 8
    assert offsets(stub) == [0, 4, 8]  # the last offset reads past the end, for the row pushed out


@pytest.mark.parametrize("wrapper", ["users", "students"])
def test_the_spec_wrapper_and_the_endpoints_own_name_are_accepted(stub, wrapper):
    stub.routes["/or/students"] = paged(people(4), wrapper=wrapper)
    assert len(read(client(stub).collection("students"))) == 4


def test_more_than_one_list_is_a_wrong_kind(stub):
    stub.routes["/or/users"] = lambda r: (200, {}, {"users": [], "warnings": []})
    with pytest.raises(WrongKind, match="several lists"):
        read(client(stub).collection("users"))


def test_a_refused_sort_is_dropped_and_reported(stub):
    data = paged(people(5))

    def handler(request):
        if "sort" in request.query:
            return 400, {}, {"imsx_codeMajor": "failure", "imsx_description": "sort not supported"}
        return data(request)

    stub.routes["/or/users"] = handler
    pull = client(stub).collection("users")
    assert len(read(pull)) == 5
    assert pull.stats.sort_dropped and offsets(stub) == [0, 0, 3]


def test_a_changing_total_is_noted(stub):
    records = people(6)
    data = paged(records)

    def handler(request):
        if request.query["offset"] == "3":
            records.append({"sourcedId": "u999", "role": "student"})
        return data(request)

    stub.routes["/or/users"] = handler
    pull = client(stub).collection("users")
    assert len(read(pull)) == 7
    assert pull.stats.total_changes == [(6, 7)] and pull.stats.total == 7


def test_sort_limit_offset_and_delta_filter_are_sent(stub):
    stub.routes["/or/users"] = paged(people(1))
    read(client(stub).collection("users", since="2026-08-01T00:00:00Z"))
    query = stub.data("/or/users")[0].query
    assert query == {"sort": "sourcedId", "limit": "3", "offset": "0",
                     "filter": "dateLastModified>'2026-08-01T00:00:00Z'"}


def test_staff_and_contacts_are_users_filtered_locally_by_role(stub):
    users = [{"sourcedId": "s1", "role": "student"}, {"sourcedId": "t1", "role": "teacher"},
             {"sourcedId": "g1", "role": "guardian"}, {"sourcedId": "a1", "role": "administrator"},
             {"sourcedId": "p1", "roles": [{"roleType": "primary", "role": "parent"}]}, "broken"]
    stub.routes["/or/users"] = paged(users)
    c = client(stub, page_size=10)
    staff, contacts = c.pull("staff"), c.pull("contacts")
    assert [r if isinstance(r, str) else r["sourcedId"] for r in staff.records()] == ["t1", "a1", "broken"]
    assert [r if isinstance(r, str) else r["sourcedId"] for r in contacts.records()] == ["g1", "p1", "broken"]
    assert staff.stats.rows == 6 and staff.stats.kept == 3


def test_by_school_uses_nested_endpoints_when_roster_scope_is_granted(stub):
    stub.token_scope = f"{SCOPE_CORE} {SCOPE_ROSTER}"
    classes = [{"sourcedId": c, "title": c, "school": {"sourcedId": "s1"}} for c in ("c1", "c2")]
    stub.routes["/or/schools/s1/classes"] = paged(classes, wrapper="classes")
    stub.routes["/or/schools/s2/classes"] = lambda r: (503, {}, "down")
    events = list(client(stub, max_retries=1).by_school("classes", ["s1", "s2"]))
    pages = [(e.key, [r["sourcedId"] for r in e.records]) for e in events if not e.final]
    finals = {e.key: e for e in events if e.final}
    assert pages == [("s1", ["c1", "c2"])]
    assert finals["s1"].stats.complete and finals["s1"].error is None
    assert finals["s2"].error is not None and "503" in str(finals["s2"].error)


def test_by_school_splits_one_collection_locally_without_roster_scope(stub):
    classes = [{"sourcedId": "c1", "title": "A", "school": {"sourcedId": "s1"}},
               {"sourcedId": "c2", "title": "B", "school": {"sourcedId": "s2"}},
               {"sourcedId": "c3", "title": "C", "school": {"sourcedId": "s9"}}, {"sourcedId": "c4", "title": "D"}]
    stub.routes["/or/classes"] = paged(classes, wrapper="classes")
    events = list(client(stub, page_size=10).by_school("classes", ["s1", "s2"]))
    pages = sorted((e.key or "-", [r["sourcedId"] for r in e.records]) for e in events if not e.final)
    assert pages == [("-", ["c4"]), ("s1", ["c1"]), ("s2", ["c2"])]
    assert sorted(e.key or "-" for e in events if e.final) == ["-", "s1", "s2"]
    assert stub.data("/or/schools/s1/classes") == []


def test_probe_reads_one_page_only(stub):
    stub.routes["/or/users"] = paged(people(30), clamp=5)
    stats = client(stub, page_size=20).probe("users")
    assert stats.pages == 1 and stats.clamped_limit == 5 and stats.total == 30
    assert len(stub.data("/or/users")) == 1


def test_a_failing_page_does_not_restart_the_collection(stub):
    stub.routes["/or/users"] = scripted(paged(people(9)), {2: (504, {}, "<h1>504 Gateway Time-out</h1>")})
    pull = client(stub).collection("users")
    assert len(read(pull)) == 9
    assert offsets(stub) == [0, 3, 6, 6]


def dated(handler, dates):
    """``handler`` whose n-th response carries ``Date: dates[n]`` (None: no Date header)."""
    count = iter(range(10**9))

    def answer(request):
        status, headers, body = handler(request)
        return status, {**headers, "Date": dates[min(next(count), len(dates) - 1)]}, body

    return answer


def test_server_time_is_the_date_of_the_first_response(stub):
    dates = ["Tue, 01 Sep 2026 08:00:00 GMT", "Tue, 01 Sep 2026 08:05:00 GMT"]
    stub.routes["/or/users"] = dated(paged(people(7)), dates)
    pull = client(stub).collection("users")
    read(pull)
    assert pull.stats.pages == 3 and pull.stats.server_time == dt.datetime(2026, 9, 1, 8, tzinfo=dt.UTC)


@pytest.mark.parametrize("date", [None, "not a date"])
def test_server_time_is_none_without_a_readable_date(stub, date):
    stub.routes["/or/users"] = dated(paged(people(2)), [date])
    pull = client(stub).collection("users")
    read(pull)
    assert pull.stats.complete and pull.stats.server_time is None
