"""Hostile records are quarantined, never fatal (issue 9, failures 2 and 6).

A record the landing cannot store — text that is not valid Unicode, nesting too deep for
Python, an object where a name or id belongs — becomes a ``sync.issues`` row naming why, and
the rest of its page and its pull land. The corpus goes through a real extraction against the
simulator (fault ``hostile_records``, so the records travel as raw text); the property test
feeds generated records through the landing and the rule chain.
"""

from __future__ import annotations

import json

import pytest

from passport_pipeline.extract import extract_source
from passport_pipeline.simulator.server import running_simulator
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.raw import raw_table
from passport_pipeline_tests.test_extract import ENV, expected, landed, oneroster

DEEP = 3000


def student(sourced_id: str, **fields: object) -> str:
    """A student record's raw text with ``fields`` as given (values already JSON text)."""
    body = {"sourcedId": json.dumps(sourced_id), "status": '"active"', "role": '"student"',
            "givenName": '"Ana"', "familyName": '"Hostile"', **fields}
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in body.items()) + "}"


QUARANTINED = {
    "lone high surrogate in a name": (student("h-sur-name", givenName='"Ana\\ud800"'), "not valid Unicode"),
    "lone low surrogate in an id": ('{"sourcedId":"h-\\udc00","role":"student"}', "not valid Unicode"),
    "object nested 3000 deep": (student("h-deep-obj", metadata='{"a":' * DEEP + "1" + "}" * DEEP), "nested"),
    "array nested 3000 deep": (student("h-deep-list", grades="[" * DEEP + "]" * DEEP), "nested"),
    "object as a given name": (student("h-obj-name", givenName='{"first":"Ana"}'), "givenName is an object"),
    "array as a family name": (student("h-list-name", familyName='["A","B"]'), "familyName is an array"),
    "object as a middle name": (student("h-obj-mid", middleName="{}"), "middleName is an object"),
    "number as the sourcedId": ('{"sourcedId":12345,"role":"student"}', "sourcedId is a number, not text"),
    "object as the sourcedId": ('{"sourcedId":{"id":"x"},"role":"student"}', "sourcedId is an object, not text"),
    "array as the sourcedId": ('{"sourcedId":["x"],"role":"student"}', "sourcedId is an array, not text"),
    "boolean as the sourcedId": ('{"sourcedId":true,"role":"student"}', "sourcedId is a boolean, not text"),
    "number as a GUIDRef sourcedId": (student("h-ref-num", primaryOrg='{"sourcedId":5,"type":"org"}'),
                                      "primaryOrg.sourcedId is a number, not text"),
    "empty object": ("{}", "no role"),
    "null record": ("null", "not a JSON object"),
    "string record": ('"a string"', "not a JSON object"),
    "number record": ("42", "not a JSON object"),
    "list record": ("[1,2]", "not a JSON object"),
}
"""Corpus name -> (raw record text, what its issue message says)."""

HUGE = "x" * 1_000_000
LANDED = {
    "a 1 MB given name": (student("h-huge", givenName=json.dumps(HUGE)), "h-huge", HUGE),
    "a NUL character in a name": (student("h-nul", givenName='"A\\u0000B"'), "h-nul", "A\x00B"),
    "RTL and zero-width characters": (student("h-rtl", givenName='"\\u202eAna\\u200b\\u200d"'),
                                      "h-rtl", "\u202eAna\u200b\u200d"),
    "an id of 10k characters": (student("h-" + "i" * 10_000), "h-" + "i" * 10_000, "Ana"),
    "a repeated key (either value is read)": ('{"sourcedId":"h-dup","role":"student","givenName":"First",'
                                              '"givenName":"Second","familyName":"Dup"}', "h-dup", {"First", "Second"}),
    "valid surrogate pair (emoji)": (student("h-emoji", givenName='"\\ud83d\\ude00"'), "h-emoji", "\U0001F600"),
}
"""Corpus name -> (raw record text, the sis_id it lands under, its given_name): valid data, kept as sent.
Of a repeated key DuckDB reads the first, Python the last: which one depends on whether the page
was landed as sent or (holding an unreadable record) from its records."""

CORPUS_SIZE = len(QUARANTINED) + len(LANDED)


@pytest.fixture
def warehouse(tmp_path):
    with Warehouse(tmp_path / "warehouse.duckdb") as wh:
        yield wh


def quarantine_messages(warehouse) -> list[str]:
    return [m for (m,) in warehouse.reading().execute(
        "SELECT message FROM sync.issues WHERE rule = 'quarantine' AND source = 'sky'").fetchall()]


def pull_statuses(warehouse, entity: str) -> set[str]:
    return {s for (s,) in warehouse.reading().execute(
        "SELECT DISTINCT status FROM sync.extractions WHERE entity = ?", [entity]).fetchall()}


def test_every_hostile_record_is_quarantined_or_landed_and_the_pull_completes(small_district, warehouse):
    served = [text for text, _ in QUARANTINED.values()] + [text for text, _, _ in LANDED.values()]
    with running_simulator(small_district, read_only=True) as sim:
        sim.set_faults(hostile_records={"students": served})
        result = extract_source(warehouse, oneroster(sim), run_id="r1", env=ENV)
    assert not result.failed
    assert pull_statuses(warehouse, "students") == {"complete"}
    messages = quarantine_messages(warehouse)
    for name, (_, reason) in QUARANTINED.items():
        assert any(reason in message for message in messages), f"{name}: no issue says {reason!r}"
    assert all(len(message) < 700 for message in messages)
    names = dict(warehouse.reading().execute(
        f"SELECT sis_id, given_name FROM {raw_table('sky', 'students')} WHERE sis_id LIKE 'h-%'").fetchall())
    assert names.keys() == {sis_id for _, sis_id, _ in LANDED.values()}
    for name, (_, sis_id, given) in LANDED.items():
        assert names[sis_id] in given if isinstance(given, set) else names[sis_id] == given, name
    want = expected(small_district)
    got = landed(warehouse)
    assert got == {**want, "students": want["students"] + len(LANDED)}
