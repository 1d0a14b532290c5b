"""A read that ends short of the server's own count is never complete (issue 8, failure 4).

A school's students endpoint answering an empty page, or 10 of its 502 students, was taken as
the whole school while ``X-Total-Count`` said 502.
"""

from __future__ import annotations

import pytest
from stub_server import SCOPE_CORE, SCOPE_ROSTER, Sleeps, paged, people

from passport_pipeline.sources.errors import ShortRead
from passport_pipeline.sources.oneroster import OneRosterClient


def counted(records: list[dict], total: int, **quirks):
    """Pages of ``records`` from a server whose ``X-Total-Count`` says ``total``."""
    serve = paged(records, **quirks)

    def handler(request):
        status, headers, body = serve(request)
        return status, {**headers, "X-Total-Count": str(total)}, body

    return handler


def client(stub, **settings) -> OneRosterClient:
    return OneRosterClient(stub.settings(**settings), sleep=Sleeps())


def read(pull) -> list:
    return [record for page in pull for record in page]


def test_an_empty_page_short_of_the_total_is_a_short_read(stub):
    stub.routes["/or/schools/s1/students"] = counted(people(10), 502, link=False)
    pull = client(stub, page_size=10).collection("schools/s1/students")
    with pytest.raises(ShortRead) as caught:
        read(pull)
    assert str(caught.value) == (
        "schools/s1/students: the read ended at an empty page at offset 10 with 10 distinct rows, but the server "
        "counts 502. The read is incomplete, so this scope keeps its previous data; if this repeats, the server "
        "does not serve every row it counts.")
    assert (caught.value.rows, caught.value.total, caught.value.endpoint) == (10, 502, "schools/s1/students")
    assert not pull.stats.complete


def test_an_empty_first_page_short_of_the_total_is_a_short_read_even_for_a_probe(stub):
    stub.routes["/or/users"] = counted([], 502)
    with pytest.raises(ShortRead, match="empty page at offset 0 with 0 distinct rows, but the server counts 502"):
        client(stub).probe("users")


def test_a_link_without_next_short_of_the_total_is_a_short_read(stub):
    stub.routes["/or/users"] = counted(people(7), 10)
    with pytest.raises(ShortRead, match="ended at a Link header without next with 7 distinct rows, but the server "
                                        "counts 10"):
        read(client(stub).collection("users"))
    assert [r.query["offset"] for r in stub.data("/or/users")] == ["0", "3", "6"]


def test_a_page_of_only_repeats_short_of_the_total_is_a_short_read(stub):
    stub.routes["/or/users"] = lambda r: (200, {"X-Total-Count": "9"}, {"users": people(3)})  # offset ignored
    with pytest.raises(ShortRead, match="a page at offset 3 that only repeated rows already received with 3 "
                                        "distinct rows, but the server counts 9"):
        read(client(stub).collection("users"))


def test_without_a_count_a_pull_ends_as_before(stub):
    stub.routes["/or/users"] = lambda r: (200, {}, {"users": people(3)})  # offset ignored, no count
    pull = client(stub).collection("users")
    assert len(read(pull)) == 3 and pull.stats.complete
    assert any("only repeated rows" in w for w in pull.stats.warnings)


def test_rows_pushed_past_the_end_are_still_read_and_complete_the_pull(stub):
    stub.routes["/or/users"] = paged(people(8), overlap=1)
    pull = client(stub, page_size=4).collection("users")
    assert len(read(pull)) == 8 and pull.stats.complete and pull.stats.duplicates == 1


def test_a_local_filter_is_checked_against_the_count_of_every_user(stub):
    users = people(4) + [{"sourcedId": "t1", "role": "teacher"}, {"sourcedId": "t2", "role": "aide"}]
    stub.routes["/or/users"] = counted(users, 6)
    staff = client(stub).pull("staff")
    assert [r["sourcedId"] for r in read(staff)] == ["t1", "t2"] and staff.stats.complete
    stub.routes["/or/users"] = counted(users, 9)
    staff = client(stub).pull("staff")
    with pytest.raises(ShortRead, match="with 6 distinct rows, but the server counts 9"):
        read(staff)


def test_a_short_read_ends_its_school_not_the_others(stub):
    stub.token_scope = f"{SCOPE_CORE} {SCOPE_ROSTER}"
    stub.routes["/or/schools/s1/students"] = counted(people(2, "a"), 502, wrapper="students")
    stub.routes["/or/schools/s2/students"] = paged(people(2, "b"), wrapper="students")
    events = list(client(stub).by_school("students", ["s1", "s2"]))
    finals = {e.key: e for e in events if e.final}
    assert isinstance(finals["s1"].error, ShortRead) and not finals["s1"].stats.complete
    assert finals["s2"].error is None and finals["s2"].stats.complete


def test_a_short_collection_split_locally_ends_every_school(stub):
    stub.routes["/or/students"] = counted([{**p, "orgs": [{"sourcedId": "s1"}]} for p in people(3)], 30,
                                          wrapper="students")
    events = list(client(stub).by_school("students", ["s1", "s2"]))
    finals = [e for e in events if e.final]
    assert [e.key for e in finals] == ["s1", "s2", None] and all(isinstance(e.error, ShortRead) for e in finals)
