"""The one HTTP policy and the token providers, against a scripted stub server."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time

import pytest
from stub_server import SCOPE_CORE, SECRET, Sleeps, paged, people, scripted

from passport_pipeline.sources.errors import (
    AuthenticationError,
    BadResponse,
    ConnectionFailed,
    ForbiddenError,
    RateLimited,
    RequestRejected,
    ServerError,
    describe_error,
)
from passport_pipeline.sources.http import HttpClient, retry_after_seconds
from passport_pipeline.sources.oneroster import OneRosterClient

IMSX_403 = {"imsx_codeMajor": "failure", "imsx_severity": "error",
            "imsx_description": "the access token lacks the scope https://purl.imsglobal.org/spec/or/v1p1/scope/roster-demographics.readonly",
            "imsx_CodeMinor": {"imsx_codeMinorField": [{"imsx_codeMinorFieldName": "x", "imsx_codeMinorFieldValue": "forbidden"}]}}


def offsets(stub, path="/or/users"):
    return [int(r.query["offset"]) for r in stub.data(path)]


def read_all(client, path="users"):
    pull = client.collection(path)
    return [r["sourcedId"] for page in pull for r in page], pull.stats


def test_429_waits_as_long_as_retry_after_says(stub):
    stub.routes["/or/users"] = scripted(paged(people(5)), {1: (429, {"Retry-After": "7"}, {"error": "slow down"})})
    sleeps = Sleeps()
    ids, _ = read_all(OneRosterClient(stub.settings(), sleep=sleeps))
    assert ids == [f"u{i:03d}" for i in range(5)]
    assert sleeps == [7.0]
    assert offsets(stub) == [0, 3, 3]


def test_a_client_with_patience_is_told_of_a_longer_rate_limit_instead_of_waiting(stub):
    stub.routes["/or/users"] = scripted(paged(people(5)), {1: (429, {"Retry-After": "7"}, {"error": "slow down"}),
                                                           3: (429, {"Retry-After": "2"}, {"error": "slow down"})})
    sleeps = Sleeps()
    client = OneRosterClient(stub.settings(rate_limit_patience_s=5.0), sleep=sleeps)
    with pytest.raises(RateLimited, match=r"GET /or/users is rate limited \(429 slow down\): the server asks "
                                          r"to wait 7 s\.") as raised:
        read_all(client)
    assert (raised.value.wait_s, raised.value.status, sleeps) == (7.0, 429, [])

    ids, _ = read_all(client)
    assert len(ids) == 5 and sleeps == [2.0], "a Retry-After within its patience is waited out"


def test_retry_after_as_http_date_and_capped():
    now = dt.datetime(2026, 8, 1, 12, 0, 0, tzinfo=dt.UTC)
    assert retry_after_seconds("Sat, 01 Aug 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("  ", now) is None
    assert retry_after_seconds("soon", now) is None


def test_503_burst_retries_the_same_page_not_page_one(stub):
    burst = {i: (503, {}, "<html><h1>503 Service Unavailable</h1></html>") for i in (2, 3, 4)}
    stub.routes["/or/users"] = scripted(paged(people(10)), burst)
    sleeps = Sleeps()
    ids, stats = read_all(OneRosterClient(stub.settings(), sleep=sleeps, rng=random.Random(1)))
    assert len(ids) == 10 and stats.complete
    assert offsets(stub) == [0, 3, 6, 6, 6, 6, 9]
    assert len(sleeps) == 3
    assert sleeps[0] < sleeps[1] < sleeps[2]  # exponential backoff (base 0.5 s, jitter within half)


def test_backoff_stays_within_its_bounds(stub):
    stub.routes["/or/users"] = lambda r: (502, {}, "bad gateway")
    sleeps = Sleeps()
    settings = stub.settings(max_retries=6, backoff_base_s=1.0, backoff_max_s=4.0)
    with pytest.raises(ServerError) as caught:
        read_all(OneRosterClient(settings, sleep=sleeps))
    assert len(sleeps) == 6
    for attempt, delay in enumerate(sleeps):
        ceiling = min(4.0, 2 ** attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert "502" in str(caught.value) and "/or/users" in str(caught.value) and "7 attempts" in str(caught.value)


@pytest.mark.parametrize("expired", [
    (401, {"imsx_codeMajor": "failure", "imsx_description": "Token has expired",
           "imsx_codeMinor": {"imsx_codeMinorField": [{"imsx_codeMinorFieldValue": "unauthorisedrequest"}]}}),
    (403, {"error": "Token has expired"}),
    (500, {"Message": "Token has expired"}),
], ids=["401", "403", "500"])
def test_expired_token_is_refreshed_once_and_the_same_page_retried(stub, expired):
    data = paged(people(7))

    def handler(request):
        if request.token == "token-1" and request.query["offset"] == "3":
            return expired[0], {}, expired[1]
        return data(request)

    stub.routes["/or/users"] = handler
    sleeps = Sleeps()
    ids, _ = read_all(OneRosterClient(stub.settings(), sleep=sleeps))
    assert len(ids) == 7
    assert stub.tokens_issued == 2
    assert offsets(stub) == [0, 3, 3, 6]
    assert [r.token for r in stub.data("/or/users")] == ["token-1", "token-1", "token-2", "token-2"]
    assert sleeps == []


def test_a_second_auth_failure_names_what_to_check_without_secrets(stub):
    stub.routes["/or/users"] = lambda r: (401, {}, {"error": "invalid_token", "error_description": f"bad {r.token}"})
    with pytest.raises(AuthenticationError) as caught:
        read_all(OneRosterClient(stub.settings(), sleep=Sleeps()))
    message = str(caught.value)
    assert stub.tokens_issued == 2
    assert "SKYWARD_CLIENT_ID and SKYWARD_SECRET" in message and "/or/users" in message and "401" in message
    assert SECRET not in message and "token-2" not in message


def test_missing_scope_is_forbidden_not_an_auth_failure(stub):
    stub.routes["/or/demographics"] = lambda r: (403, {}, IMSX_403)
    with pytest.raises(ForbiddenError) as caught:
        read_all(OneRosterClient(stub.settings(), sleep=Sleeps()), "demographics")
    assert caught.value.scope == "https://purl.imsglobal.org/spec/or/v1p1/scope/roster-demographics.readonly"
    assert "GET /or/demographics is forbidden" in str(caught.value)
    assert "roster-demographics.readonly" in str(caught.value)
    assert stub.tokens_issued == 1


def test_invalid_json_is_retried_then_reported_with_the_url(stub):
    good = paged(people(4))
    stub.routes["/or/users"] = scripted(good, {1: (200, {}, b'{"users": [{"sourcedId": "u0')})
    ids, _ = read_all(OneRosterClient(stub.settings(), sleep=Sleeps()))
    assert len(ids) == 4 and offsets(stub) == [0, 3, 3]

    stub.routes["/or/classes"] = lambda r: (200, {}, b'{"classes": [')
    with pytest.raises(BadResponse) as caught:
        read_all(OneRosterClient(stub.settings(max_retries=2), sleep=Sleeps()), "classes")
    assert f"{stub.url}/or/classes" in str(caught.value) and "not valid JSON" in str(caught.value)
    assert len(stub.data("/or/classes")) == 3


@pytest.mark.parametrize("body, expected", [
    ({"imsx_codeMajor": "failure", "imsx_description": "cannot filter by unknown field 'x'",
      "imsx_CodeMinor": {"imsx_codeMinorField": [{"imsx_codeMinorFieldValue": "invalid_filter_field"}]}},
     "invalid_filter_field: cannot filter by unknown field 'x'"),
    ({"IMSX_DESCRIPTION": "bad sort", "imsx_codeminor": {"IMSX_CODEMINORFIELD": [{"Imsx_CodeMinorFieldValue": "invalid_sort_field"}]}},
     "invalid_sort_field: bad sort"),
    ({"error": "filter not supported"}, "filter not supported"),
    ({"error": "invalid_request", "error_description": "limit too big"}, "invalid_request: limit too big"),
    ({"Message": "The request is invalid."}, "The request is invalid."),
], ids=["imsx", "imsx-any-case", "plain", "oauth", "aspnet"])
def test_error_bodies_of_every_shape_reach_the_message(stub, body, expected):
    stub.routes["/or/users"] = lambda r: (400, {}, body)
    with pytest.raises(RequestRejected) as caught:
        read_all(OneRosterClient(stub.settings(), sleep=Sleeps()))
    assert expected in str(caught.value) and "400" in str(caught.value)


def test_describe_error_squeezes_gateway_pages():
    said = describe_error(b"<html><head><title>504 Gateway Time-out</title></head><body></body></html>")
    assert str(said) == "504 Gateway Time-out"


def test_no_secret_or_token_in_any_error(stub):
    echo = lambda status: lambda r: (status, {}, {"error": f"token {r.token} secret {SECRET} refused"})  # noqa: E731
    paths = ("orgs", "courses", "classes", "enrollments", "terms")
    for status, path in zip((400, 404, 503, 401, 403), paths):
        stub.routes[f"/or/{path}"] = echo(status)
    client = OneRosterClient(stub.settings(max_retries=1), sleep=Sleeps())
    messages = []
    for path in paths:
        with pytest.raises(Exception) as caught:
            read_all(client, path)
        messages.append(str(caught.value))
    assert len(messages) == 5
    for message in messages:
        assert SECRET not in message and "token-" not in message and "***" in message


def test_connection_refused_names_the_url():
    from passport_pipeline.sources.settings import ClientSettings

    settings = ClientSettings(base_url="http://127.0.0.1:9", token_url="http://127.0.0.1:9/oauth/token",
                              client_id="c", client_secret=SECRET, max_retries=1)
    with pytest.raises(ConnectionFailed) as caught:
        read_all(OneRosterClient(settings, sleep=Sleeps()))
    assert "http://127.0.0.1:9/oauth/token" in str(caught.value)
    assert "refused" in str(caught.value).lower()


@pytest.mark.parametrize("status, body, expected", [
    (401, {"error": "invalid_client", "error_description": "The integration access record for this client is inactive"},
     "rejected the client id/secret (401 invalid_client: The integration access record for this client is inactive): "
     "check SKYWARD_CLIENT_ID and SKYWARD_SECRET"),
    (400, {"error": "invalid_grant", "error_description": "The integration access record expired on 2026-01-01"},
     "expired on 2026-01-01): check SKYWARD_CLIENT_ID and SKYWARD_SECRET"),
    (400, {"error": "invalid_scope", "error_description": "Scope not allowed for this client: https://x/scope/roster.readonly"},
     "refused the requested scopes (400 invalid_scope: Scope not allowed for this client: https://x/scope/roster.readonly)"),
], ids=["inactive", "expired", "scope"])
def test_token_url_refusals_read_as_instructions(stub, status, body, expected):
    stub.answer = lambda request: (status, {}, body)
    with pytest.raises(AuthenticationError) as caught:
        read_all(OneRosterClient(stub.settings(), sleep=Sleeps()))
    assert expected in str(caught.value)
    assert f"{stub.url}/token" in str(caught.value) and SECRET not in str(caught.value)


def test_token_request_sends_basic_auth_and_scope_and_refreshes_before_expiry(stub):
    stub.token_expires_in = 60
    stub.routes["/or/users"] = paged(people(2))
    now = [0.0]
    http = HttpClient(stub.settings(), sleep=Sleeps(), clock=lambda: now[0])
    client = OneRosterClient(stub.settings(), http=http)
    read_all(client)
    now[0] = 49.0
    read_all(client)
    assert stub.tokens_issued == 1
    now[0] = 51.0  # within the 10 s margin before expiry
    read_all(client)
    assert stub.tokens_issued == 2
    token_request = stub.data("/token")[0]
    assert token_request.form == {"grant_type": "client_credentials", "scope": SCOPE_CORE}
    assert token_request.headers["Authorization"].startswith("Basic ")


def test_password_grant_for_sms(stub):
    stub.token_path = "/api/token"
    stub.routes["/api/v1/schools"] = lambda r: (200, {}, [{"SchoolId": 1}])
    http = HttpClient(stub.settings(base_url=f"{stub.url}/api", token_url=None), grant="password", sleep=Sleeps())
    assert http.get_json(f"{stub.url}/api/v1/schools").body == [{"SchoolId": 1}]
    token_request = stub.data("/api/token")[0]
    assert token_request.form == {"grant_type": "password", "username": "client-x", "password": SECRET}
    assert stub.data("/api/v1/schools")[0].token == "token-1"


def test_at_most_max_concurrency_requests_in_flight(stub):
    def slow(request):
        time.sleep(0.05)
        return 200, {}, {"orgs": []}

    stub.routes["/or/orgs"] = slow
    http = HttpClient(stub.settings(max_concurrency=2), sleep=Sleeps())
    threads = [threading.Thread(target=http.get_json, args=(f"{stub.url}/or/orgs",)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(stub.data("/or/orgs")) == 6
    assert stub.max_in_flight == 2
    http.close()
