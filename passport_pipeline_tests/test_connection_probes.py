"""Test Connection through the probes a client declares: any client, checked the same way.

A made-up client (no OneRoster, SMS or bundle behind it) implements the protocol of
:mod:`passport_pipeline.sources.reads`; Test Connection must check it by its probes alone.
"""

from __future__ import annotations

import pytest

from passport_pipeline import connection_check
from passport_pipeline.config import OneRosterSource
from passport_pipeline.connection_check import check_source
from passport_pipeline.redaction import remember
from passport_pipeline.sources import AuthenticationError, ForbiddenError, NotFoundError, RateLimited
from passport_pipeline.sources.errors import ErrorDescription
from passport_pipeline.sources.reads import Access, Probe, Sample
from passport_pipeline.sources.settings import ClientSettings

SECRET = "fake-Secret-77"


class FakeClient:
    """A source of districts and pupils, with one nested endpoint that is missing."""

    max_concurrency = 2
    credential = "licence"

    def __init__(self, refuse: str | None = None) -> None:
        remember(SECRET)  # what a client does with a secret it holds
        self.refuse = refuse
        self.asked: list[tuple[str, dict]] = []
        self.closed = False

    def authenticate(self) -> Access:
        if self.refuse:
            raise AuthenticationError("refused", status=400, said=ErrorDescription("invalid_client", self.refuse))
        return Access("key accepted", ("2 districts licensed",), requested=("read", "write"),
                      granted=frozenset({"read"}), sees="the fake sees")

    def probes(self) -> tuple[Probe, ...]:
        return (
            Probe("districts", ("schools",), whole=True, page_size=None, schools=("id", "code"),
                  keeps=(("district", "id"),)),
            Probe("pupils", ("students",), scope="read"),
            Probe("district/{id}/pupils", needs=("district",), shown="district/{district}/pupils",
                  setting="endpoints.pupils", instead="The sync reads pupils whole instead."),
            Probe("guardians", ("contacts",), scope="guardians.read"),
            Probe("rooms", ("classes",), absent=True),
            Probe("notes", skip="the sync does not read it"),
            Probe("teacher/{id}", ("staff",), needs=("teacher",), shown="teacher/{teacher}"),
        )

    def sample(self, probe: Probe, ids) -> Sample:
        self.asked.append((probe.name, dict(ids)))
        if probe.name == "districts":
            return Sample(3, total=3, records=[{"id": " d1 "}, {"id": "d2", "code": "D-2"}, {"code": "none"}])
        if probe.name == "pupils":
            return Sample(5, total=40, clamp=5, records=[{"id": "p1"}])
        if probe.name == "guardians":
            raise ForbiddenError("403 forbidden", status=403)
        raise NotFoundError(f"GET district/{ids['district']}/pupils was not found (key {SECRET})", status=404)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def opened(monkeypatch):
    """The fake client, opened for any source; the settings Test Connection tunes are kept."""
    found = {"client": FakeClient()}

    def open_client(source, env, *, tuned=None):
        found["tuned"] = tuned(ClientSettings(base_url="https://x", client_id="i", client_secret="s"))
        return found["client"]

    monkeypatch.setattr(connection_check, "open_client", open_client)
    return found


def source(**settings) -> OneRosterSource:
    return OneRosterSource.model_validate({"name": "fake", "base_url": "https://fake.example/api",
                                           "token_url": "https://fake.example/token",
                                           "credentials": {"client_id_env": "ID", "client_secret_env": "KEY"},
                                           **settings})


def test_any_client_is_checked_by_the_probes_it_declares(opened):
    mapping = {"mode": "explicit", "schools": {"d1": "One", "D-2": "Two", "d9": "Nine"}}
    report = check_source(source(advanced={"schools_mapping": mapping}), {})
    client = opened["client"]

    found = {check.endpoint: check for check in report.endpoints}
    assert [(c.endpoint, c.outcome) for c in report.endpoints] == [
        ("districts", "reachable"), ("pupils", "reachable"), ("district/d1/pupils", "failing"),
        ("guardians", "forbidden"), ("rooms", "failing"), ("notes", "skipped"), ("teacher/{id}", "skipped")]
    assert client.asked[0] == ("districts", {}), "a probe that keeps ids is taken before the others"
    assert ("district/{id}/pupils", {"district": "d1"}) in client.asked
    assert {name for name, _ in client.asked} == {"districts", "pupils", "district/{id}/pupils", "guardians"}

    assert found["districts"].detail.startswith("3 rows read, ")
    assert found["pupils"].detail.startswith("5 of 40 rows on the first page, ") and report.page_size_clamp == 5
    nested = found["district/d1/pupils"].detail
    assert nested.endswith("(setting: endpoints.pupils) The sync reads pupils whole instead.")
    assert SECRET not in nested and "(key ***)" in nested, "a secret the process holds is scrubbed"
    assert (found["guardians"].missing_scope, found["guardians"].core) == ("guardians.read", False)
    assert "lacks the scope guardians.read" in found["guardians"].detail
    assert found["rooms"].detail.startswith("not provided") and "needs it for classes" in found["rooms"].detail
    assert found["teacher/{id}"].detail == "skipped: no teacher was readable to ask about"
    assert report.blockers == ["rooms is failing", "teacher/{id} is skipped"], "only probes feeding core entities"

    assert report.access.detail.startswith("key accepted in ")
    assert report.access.detail.endswith("; 2 districts licensed; scopes granted: read; requested but not granted: write")
    assert report.schools_sentence() == "the fake sees 2 of the 3 schools the mapping expects: missing d9; " + (
        "a Qmlativ Integration Access record may restrict schools (its OneRoster configuration): ask your Skyward "
        "administrator to include them, or take them out of schools_mapping.")
    assert client.closed
    tuned = opened["tuned"]
    assert (tuned.max_retries, tuned.backoff_max_s, tuned.rate_limit_patience_s) == (5, 1.0, 5.0), \
        "the source's own 5 retries (as the sync), with short waits"


def test_a_refusal_names_the_record_the_client_says_a_credential_is(opened):
    opened["client"] = FakeClient(refuse="the licence is inactive")
    report = check_source(source(), {})

    assert report.access.problem == "inactive" and report.endpoints == ()
    assert report.access.detail.startswith("The credential is known, but its licence is inactive.")
    assert opened["client"].closed


class RateLimitedDistricts(FakeClient):
    """Its districts, which the class probe is asked with, answer 429 asking a long wait."""

    def probes(self) -> tuple[Probe, ...]:
        return (Probe("districts", ("schools",), whole=True, page_size=None, schools=("id", "code"),
                      keeps=(("district", "id"),)),
                Probe("district/{id}/classes", ("classes",), needs=("district",), shown="district/{district}/classes"),
                Probe("pupils", ("students",)))

    def sample(self, probe: Probe, ids) -> Sample:
        if probe.name == "districts":
            raise RateLimited("GET /districts is rate limited (429 slow down): the server asks to wait 30 s.",
                              wait_s=30.0, endpoint="/districts")
        return Sample(1, records=[{"id": "p1"}])


def test_a_rate_limit_is_a_warning_for_its_probe_and_for_those_asked_with_its_ids(opened):
    opened["client"] = RateLimitedDistricts()
    report = check_source(source(), {})

    assert [(c.endpoint, c.outcome) for c in report.endpoints] == [
        ("districts", "rate_limited"), ("district/{id}/classes", "rate_limited"), ("pupils", "reachable")]
    assert report.usable and len(report.warnings) == 2, "the sync waits the limit out"
    assert report.warnings[0] == (
        "districts: GET /districts is rate limited (429 slow down): the server asks to wait 30 s. The sync waits it "
        "out, retrying up to 6 times (http.max_retries); Test Connection waits at most 5 s.")
    assert report.warnings[1] == ("district/{id}/classes: not asked: the read that finds a district to ask about "
                                  "was rate limited")
    assert report.schools is None, "no schools were seen to compare"
