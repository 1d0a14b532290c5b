"""Fault settings and the per-request decisions behind them (pure, no server)."""

import pytest
from pydantic import ValidationError

from passport_pipeline.simulator.faults import Decision, FaultPlan, Faults, corrupt


def decisions(n: int, **faults) -> list[Decision]:
    plan = FaultPlan(Faults(**faults))
    return [plan.decide() for _ in range(n)]


def test_default_faults_leave_every_request_alone():
    assert set(decisions(50)) == {Decision()}


def test_latency_applies_to_every_request():
    assert {d.latency_seconds for d in decisions(5, latency_ms=250)} == {0.25}


def test_rate_limit_answers_a_share_with_retry_after():
    got = decisions(2000, rate_limit_share=0.25, retry_after_seconds=3)
    limited = [d for d in got if d.status == 429]
    assert 400 < len(limited) < 600
    assert {d.retry_after_seconds for d in limited} == {3}


def test_decisions_repeat_for_the_same_seed_and_differ_for_another():
    first = decisions(200, rate_limit_share=0.3, bad_json_share=0.3, seed=5)
    assert first == decisions(200, rate_limit_share=0.3, bad_json_share=0.3, seed=5)
    assert first != decisions(200, rate_limit_share=0.3, bad_json_share=0.3, seed=6)


def test_error_burst_follows_every_n_good_requests_with_statuses_in_turn():
    got = decisions(14, burst_every=3, burst_length=2, burst_status=[503, 502, 504])
    assert [d.status for d in got] == [None, None, None, 503, 502,
                                       None, None, None, 504, 503,
                                       None, None, None, 502]


def test_bad_json_marks_a_share_of_responses():
    got = decisions(1000, bad_json_share=0.1)
    assert 60 < sum(d.bad_json for d in got) < 140
    assert all(d.status is None for d in got)


def test_replacing_faults_restarts_counters_and_the_random_sequence():
    plan = FaultPlan(Faults(burst_every=1, burst_length=1))
    assert [plan.decide().status for _ in range(3)] == [None, 503, None]
    plan.replace(Faults(burst_every=1, burst_length=1))
    assert plan.decide().status is None
    plan.replace(Faults())
    assert plan.decide() == Decision()


def test_corrupt_body_is_no_longer_json():
    import json

    body = json.dumps({"users": [{"sourcedId": str(i)} for i in range(50)]}).encode()
    with pytest.raises(json.JSONDecodeError):
        json.loads(corrupt(body))
    assert body.startswith(corrupt(body))


@pytest.mark.parametrize(
    "bad",
    [
        {"rate_limit_share": 1.5},
        {"latency_ms": -1},
        {"expired_token_status": 404},
        {"burst_status": [200]},
        {"burst_status": []},
        {"clamp_limit": 0},
        {"short_rows": -1},
        {"nested_not_found": True, "nested_as_schools": True},
        {"no_such_fault": True},
    ],
)
def test_invalid_fault_settings_are_refused(bad):
    with pytest.raises(ValidationError):
        Faults(**bad)


def test_records_join_a_page_as_sent_whether_it_is_empty_or_not():
    from passport_pipeline.simulator.faults import with_records
    assert with_records(b'{"users":[{"a":1}]}', ['{"b":"\\ud800"}', "7"]) == b'{"users":[{"a":1},{"b":"\\ud800"},7]}'
    assert with_records(b"[ ]", ["null"]) == b"[null]"
