"""The fault matrix: every simulator fault, through a whole ``passport-pipeline sync``.

Each case starts from a copy of the API's reference warehouse (a clean sync: the previous
picture), switches one fault on and syncs again: extraction and the rule stages. The sync must
either **survive** — exit 0, every pull complete, every raw row re-read by this run, and every
raw and staging table exactly the reference — or **fail cleanly** — exit 3, exactly the scopes
the fault concerns ``failed`` with a reason a person reads, every other pull complete, none
left running, and every table still exactly the reference (the failed scopes kept their
previous rows). Which of the two is written in the case.

An emptied endpoint is neither: a server that answers no rows and counts none is taken at its
word (the collection may really be empty), with a warning (the last test here).

Faults the simulator cannot make — dropped connections, stalls, broken transfers — are in
``test_proxy_faults.py``. The matrix runs under ``make test-reliability``; a few cases (marked
``fast``) in ``make test`` too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from reference_sync import (
    ALL, APIS, ONEROSTER, assert_same_picture, assert_survived_or_failed_cleanly, picture, pulls, sync, write_config,
)

from passport_pipeline_tests.test_hostile_records import QUARANTINED


@dataclass(frozen=True)
class Case:
    """One fault, on the APIs it applies to, and what the sync must give."""

    name: str
    faults: dict
    fails: tuple[str, ...] = ()
    """The entities every scope of which must end failed (nothing: the sync must survive)."""
    why: str = ""
    """Words the failed pulls' reason must hold."""
    apis: tuple[str, ...] = APIS
    http: dict = field(default_factory=dict)
    """Overrides of the source's HTTP settings for this case."""
    shows: str = ""
    """Words the sync's report must show: evidence that the fault bit (where the sync tells)."""
    fast: tuple[str, ...] = ()
    """The APIs on which the case runs in ``make test`` too."""


SLOW = {"page_size": 1000}
"""Fewer, larger pages where every answer is slow."""
TOKEN_EXPIRY = {"token_ttl_seconds": 1, "latency_ms": 300}
"""Tokens that live one second, and answers that take 0.3 s: with the token renewed only when it
runs out (``token_refresh_margin_s: 0``), a request sent in its last 0.3 s reaches the server
expired; its retry, with a new token, does not."""
RENEW_AT_EXPIRY = {**SLOW, "token_refresh_margin_s": 0}

CASES = [
    Case("latency", {"latency_ms": 100}, http=SLOW),
    Case("rate limits with Retry-After", {"seed": 1, "rate_limit_share": 0.1, "retry_after_seconds": 1}),
    *[Case(f"bursts of {status}", {"burst_every": 10, "burst_length": 2, "burst_status": [status]})
      for status in (500, 502, 503, 504)],
    *[Case(f"token expiry answered {status}", {**TOKEN_EXPIRY, "expired_token_status": status},
           http=RENEW_AT_EXPIRY) for status in (401, 403, 500)],
    Case("page size clamp", {"clamp_limit": 37}, shows="it caps the page size silently"),
    Case("non-spec wrappers", {"non_spec_wrappers": True}, apis=ONEROSTER),
    Case("overlapping rows", {"overlap_rows": 3}),
    Case("cut-off JSON bodies", {"seed": 2, "bad_json_share": 0.1}),
    Case("plain error bodies", {**TOKEN_EXPIRY, "expired_token_status": 500, "plain_errors": True,
                                "burst_every": 10, "burst_length": 2, "burst_status": [503]},
         http=RENEW_AT_EXPIRY),
    Case("nested endpoints missing", {"nested_not_found": True}, apis=ONEROSTER,
         shows="was not found (404 unknownobject"),
    Case("nested endpoints as schools", {"nested_as_schools": True}, apis=ONEROSTER,
         shows="answered a list of 'schools' where courses were expected"),
    Case("nested students from enrollments", {"nested_students_from_enrollments": True}, apis=ONEROSTER,
         shows="but /students counts"),
    Case("hostile records", {"hostile_records": {"students": [text for text, _ in QUARANTINED.values()]}},
         fast=("sms",)),
    Case("echoed credentials", {"echo_credentials": True, "burst_every": 10, "burst_length": 2,
                                "burst_status": [503, 502]}),
    Case("short endpoint", {"short_endpoints": ["students"], "short_rows": 10}, fails=("students",),
         why="distinct rows, but the server", apis=ONEROSTER, fast=("oneroster-1.1",)),
    Case("an outage longer than every retry", {"rate_limit_share": 1.0, "retry_after_seconds": 0},
         fails=ALL, why="429"),
    Case("an outage, echoing credentials", {"rate_limit_share": 1.0, "retry_after_seconds": 0,
                                            "echo_credentials": True}, fails=ALL, why="429"),
]


def _params():
    for case in CASES:
        for api in case.apis:
            marks = () if api in case.fast else (pytest.mark.reliability,)
            yield pytest.param(case, api, id=f"{case.name}-{api}", marks=marks)


@pytest.mark.parametrize("case, api", list(_params()))
def test_a_fault_gives_the_reference_or_fails_cleanly_keeping_it(case: Case, api, sim, reference, tmp_path):
    before = reference(api)
    config = write_config(tmp_path, api, sim.base_url, **case.http)
    warehouse = before.copy_to(tmp_path)
    sim.set_faults(**case.faults)

    done = sync(config)

    assert_survived_or_failed_cleanly(done, warehouse, before, case.fails, case.why)
    assert case.shows in done.out


EMPTIED = {"oneroster-1.1": ("demographics", ("demographics",)), "oneroster-1.2": ("demographics", ("demographics",)),
           "sms": ("guardians", ("contacts", "student_contacts"))}
"""API -> the endpoint emptied, and the entities it lands (none of which another entity refers to,
so the rest of the picture must not move)."""


@pytest.mark.reliability
@pytest.mark.parametrize("api", APIS)
def test_an_emptied_endpoint_is_taken_at_its_word_with_a_warning(api, sim, reference, tmp_path):
    before = reference(api)
    endpoint, emptied = EMPTIED[api]
    config = write_config(tmp_path, api, sim.base_url)
    warehouse = before.copy_to(tmp_path)
    sim.set_faults(empty_endpoints=[endpoint])

    done = sync(config)

    assert done.code == 0, done.err
    assert {status for _, _, status, _ in pulls(warehouse, done.run_id)} == {"complete"}
    assert "the source answered no rows where the last full extraction found" in done.out
    found = picture(warehouse)
    for entity in emptied:
        for table in (f"raw.sky__{entity}", f"staging.sky__{entity}"):
            assert before.picture[table] and not found[table], f"{table} must hold what the source answered"
    unmoved = {table for table in before.picture if not any(table.startswith(f"{schema}.sky__{entity}")
                                                            for schema in ("raw", "staging") for entity in emptied)}
    assert_same_picture({t: found[t] for t in unmoved}, {t: before.picture[t] for t in unmoved})
