"""The SMS 2.0 native client: cursor paging with the ``cursor=`` rename, staff merging, paths."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from stub_server import Sleeps

from passport_pipeline.sources.sms import SmsClient


def cursor_paged(rows: list[dict], *, key: str = "NameId", clamp: int | None = None, overlap: int = 0):
    """SMS-style paging: ``paging.limit`` + ``paging.cursor`` in; ``Link`` with ``cursor=`` out.

    Like the real API, it refuses a request that says ``cursor`` instead of ``paging.cursor``.
    """

    def handler(request):
        if "cursor" in request.query:
            return 400, {}, {"Message": "The request is invalid: unknown parameter cursor"}
        limit = min(int(request.query.get("paging.limit", 100)), clamp or 10**9)
        after = request.query.get("paging.cursor")
        start = 0 if after is None else int(base64.b64decode(after)) + 1
        page = rows[start:start + limit]
        headers = {}
        if start + limit < len(rows):
            resume = start + len(page) - 1 - overlap
            cursor = base64.b64encode(str(resume).encode()).decode()
            headers["Link"] = f'<{request.path}?paging.limit={limit}&cursor={cursor}>; rel="next"'
        return 200, headers, page

    return handler


def sms(stub, **settings) -> SmsClient:
    stub.token_path = "/api/token"
    return SmsClient(stub.settings(base_url=f"{stub.url}/api", token_url=None, **settings), sleep=Sleeps())


def test_cursor_from_the_next_link_is_sent_as_paging_cursor(stub):
    stub.routes["/api/v1/students"] = cursor_paged([{"NameId": i} for i in range(7)])
    pull = sms(stub).listing("students")
    assert [r["NameId"] for r in pull.records()] == list(range(7))
    queries = [r.query for r in stub.data("/api/v1/students")]
    assert len(queries) == 3 and "paging.cursor" not in queries[0]
    assert all("paging.cursor" in q and "cursor" not in q and q["paging.limit"] == "3" for q in queries[1:])
    assert pull.stats.complete


def test_clamp_and_overlap_on_cursor_paging(stub):
    stub.routes["/api/v1/students"] = cursor_paged([{"NameId": i} for i in range(10)], clamp=4, overlap=1)
    pull = sms(stub, page_size=100).listing("students")
    assert [r["NameId"] for r in pull.records()] == list(range(10))
    assert pull.stats.clamped_limit == 4 and pull.stats.duplicates > 0


def test_staff_rows_of_one_person_merge_across_pages(stub):
    rows = [{"NameId": 1, "SchoolId": 10, "IsPrimarySchool": False},
            {"NameId": 1, "SchoolId": 11, "IsPrimarySchool": False},
            {"NameId": 1, "SchoolId": 12, "IsPrimarySchool": True},
            {"NameId": 2, "SchoolId": 10, "IsPrimarySchool": True},
            {"NameId": 3, "SchoolId": 11, "IsPrimarySchool": True}]
    stub.routes["/api/v1/staff"] = cursor_paged(rows, clamp=2)
    members = list(sms(stub).pull("staff").records())
    assert [m["NameId"] for m in members] == [1, 2, 3]
    assert [a["SchoolId"] for a in members[0]["Assignments"]] == [10, 11, 12]
    assert members[0]["SchoolId"] == 12  # the primary assignment leads


def test_endpoint_paths_can_be_overridden(stub):
    stub.routes["/api/district/v2/staff-members"] = cursor_paged([{"NameId": 5, "SchoolId": 1}])
    client = sms(stub, endpoint_paths={"staff": "district/v2/staff-members"})
    assert [m["NameId"] for m in client.pull("staff").records()] == [5]
    with pytest.raises(ValueError, match="unknown SMS endpoint name"):
        sms(stub, endpoint_paths={"staf": "x"})


def test_students_with_enrollments_make_per_student_calls(stub):
    stub.routes["/api/v1/students"] = cursor_paged([{"NameId": i} for i in range(4)])
    for i in range(4):
        stub.routes[f"/api/v1/students/{i}/enrollments"] = (
            lambda r, i=i: (200, {}, [{"SchoolId": 1, "GradeLevel": f"0{i}", "Status": "Active"}]))
    students = list(sms(stub, max_concurrency=2).pull("students", with_enrollments=True).records())
    assert [s["Enrollments"][0]["GradeLevel"] for s in students] == ["00", "01", "02", "03"]
    assert stub.max_in_flight <= 2


def test_server_time_is_the_date_of_the_first_response(stub):
    listing = cursor_paged([{"NameId": i} for i in range(5)])
    dates = iter(["Tue, 01 Sep 2026 08:00:00 GMT", "Tue, 01 Sep 2026 09:00:00 GMT", "garbage"])

    def handler(request):
        status, headers, body = listing(request)
        return status, {**headers, "Date": next(dates)}, body

    stub.routes["/api/v1/students"] = handler
    pull = sms(stub).listing("students")
    assert len(list(pull.records())) == 5
    assert pull.stats.server_time == datetime(2026, 9, 1, 8, tzinfo=UTC)
