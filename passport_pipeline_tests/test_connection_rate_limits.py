"""Test Connection and the sync under one HTTP policy: what a rate limit means for each.

A check retries as often as the sync (``http.max_retries``) but waits out a ``Retry-After`` only
up to 5 s: a longer one is a warning, since the sync waits it out; a server that keeps answering
429 past every retry is unusable for both. The simulator's ``Retry-After`` is real seconds, so the
waits here are the smallest that show the behaviour.
"""

from __future__ import annotations

import time

import pytest

from passport_pipeline.config import OneRosterSource
from passport_pipeline.connection_check import CHECK_PATIENCE_S, check_source, format_report
from passport_pipeline.extract import extract_source
from passport_pipeline.simulator.server import running_simulator
from passport_pipeline.sources import ServerError
from passport_pipeline.warehouse.connection import Warehouse

ENV = {"SIM_ID": "passport-demo", "SIM_SECRET": "passport-demo-secret"}
CREDENTIALS = {"client_id_env": "SIM_ID", "client_secret_env": "SIM_SECRET"}
LONGER_THAN_A_CHECK_WAITS = int(CHECK_PATIENCE_S) + 1
SEED_ONE_LIMIT_EACH = 166
"""With 5% of requests limited, the check's 11 requests meet one 429 (the 3rd), the sync's next
~25 one too: a test that shows both and waits once."""


def oneroster(sim, **http) -> OneRosterSource:
    return OneRosterSource(name="sky", base_url=sim.base_url, token_url=sim.token_url, credentials=CREDENTIALS,
                           http=http)


@pytest.fixture
def sim(small_district):
    with running_simulator(small_district, read_only=True) as running:
        yield running


@pytest.fixture
def warehouse(tmp_path):
    with Warehouse(tmp_path / "warehouse.duckdb") as wh:
        yield wh


def test_a_rate_limit_longer_than_a_check_waits_is_a_warning_and_the_sync_waits_it_out(sim, warehouse):
    sim.set_faults(seed=SEED_ONE_LIMIT_EACH, rate_limit_share=0.05, retry_after_seconds=LONGER_THAN_A_CHECK_WAITS)
    source = oneroster(sim)

    started = time.monotonic()
    report = check_source(source, ENV)
    checked_in = time.monotonic() - started

    limited = [check for check in report.endpoints if check.outcome == "rate_limited"]
    assert len(limited) == 1 and limited[0].status == 429
    assert report.usable and report.verdict() == "usable, with 1 warning."
    warning = report.warnings[0]
    assert f"is rate limited (429 server_busy" in warning
    assert f"the server asks to wait {LONGER_THAN_A_CHECK_WAITS} s." in warning
    assert "The sync waits it out, retrying up to 6 times (http.max_retries)" in warning
    assert "Test Connection waits at most 5 s." in warning
    assert "RATE LIMIT" in format_report([report])
    assert checked_in < CHECK_PATIENCE_S, "the check did not wait the limit out"

    started = time.monotonic()
    result = extract_source(warehouse, source, run_id="r1", env=ENV)
    assert not result.failed, "the sync waits the same limit out and completes"
    assert time.monotonic() - started >= LONGER_THAN_A_CHECK_WAITS, "the sync met the limit and waited"


def test_a_server_answering_429_past_every_retry_is_not_usable_in_one_line(sim, warehouse):
    sim.set_faults(rate_limit_share=1.0, retry_after_seconds=0)
    source = oneroster(sim, max_retries=3)

    report = check_source(source, ENV)

    assert not report.usable
    orgs = report.endpoints[0]
    assert (orgs.endpoint, orgs.outcome, orgs.status) == ("orgs", "failing", 429)
    assert "kept failing with 429" in orgs.detail and "after 4 attempts" in orgs.detail, \
        "the check gives up when the sync would: after the source's own max_retries"
    assert orgs.detail.endswith("try again later, or raise http.max_retries.") and "\n" not in orgs.detail
    assert report.verdict().startswith("NOT USABLE: orgs is failing; classes is failing; students is failing")
    with pytest.raises(ServerError, match="kept failing with 429 .* after 4 attempts"):
        extract_source(warehouse, source, run_id="r1", env=ENV)  # the sync gives up too, as late


def test_a_rate_limit_shorter_than_the_sync_retries_is_waited_out_by_the_check_too(sim):
    sim.set_faults(burst_every=2, burst_length=3, burst_status=[429])
    one_at_a_time = oneroster(sim, max_concurrency=1, backoff_base_s=0.01, backoff_max_s=0.02)

    report = check_source(one_at_a_time, ENV)  # each request meets at most 3 429s in a row

    assert report.usable and report.warnings == [], format_report([report])
    assert {check.outcome for check in report.endpoints} == {"reachable"}
