"""End to end: every entity pulled over real HTTP from the simulator equals the district store.

One small district (300 students); OneRoster 1.1 and 1.2 and the SMS native API, clean and
with the faults of SOURCE_APIS.md §4 switched on together: 429s, 5xx bursts, cut-off JSON,
tokens living one second whose expiry is answered as 403 or 500, a silent limit clamp,
non-spec wrappers and rows repeated across pages.
"""

from __future__ import annotations

import time
from collections import Counter

import duckdb
import pytest
from stub_server import Sleeps

from passport_pipeline.simulator.oneroster import SCOPES
from passport_pipeline.simulator.server import running_simulator
from passport_pipeline.sources import ClientSettings, ForbiddenError, OneRosterClient, SmsClient
from passport_pipeline.sources.http import HttpClient
from passport_pipeline.sources.oneroster import ENTITY_READS
from passport_pipeline.sources.sms import READS as SMS_READS
from passport_pipeline_tests.oracle.oneroster import normalize_oneroster
from passport_pipeline_tests.oracle.sms import normalize_sms

CONTACT = "('guardian', 'parent', 'relative')"
ONEROSTER_IDS = {
    "schools": "SELECT sourced_id FROM orgs",
    "terms": "SELECT sourced_id FROM academic_sessions",
    "courses": "SELECT sourced_id FROM courses",
    "classes": "SELECT sourced_id FROM classes",
    "students": "SELECT sourced_id FROM users WHERE role = 'student'",
    "staff": f"SELECT sourced_id FROM users WHERE role <> 'student' AND role NOT IN {CONTACT}",
    "contacts": f"SELECT sourced_id FROM users WHERE role IN {CONTACT}",
    "student_contacts": "SELECT student_id || '|' || contact_id FROM student_contacts",
    "enrollments": "SELECT sourced_id FROM enrollments",
    "demographics": "SELECT sourced_id FROM demographics",
}
SMS_IDS = {
    "schools": "SELECT native_id::VARCHAR FROM orgs WHERE type = 'school'",
    "terms": "SELECT native_id::VARCHAR FROM academic_sessions",
    "courses": "SELECT native_id::VARCHAR FROM courses",
    "classes": "SELECT native_id::VARCHAR FROM classes",
    "students": "SELECT native_id::VARCHAR FROM users WHERE role = 'student'",
    "staff": f"SELECT native_id::VARCHAR FROM users WHERE role <> 'student' AND role NOT IN {CONTACT}",
    "contacts": f"SELECT native_id::VARCHAR FROM users WHERE role IN {CONTACT}",
    "student_contacts": """SELECT s.native_id || '|' || c.native_id FROM student_contacts sc
                           JOIN users s ON s.sourced_id = sc.student_id JOIN users c ON c.sourced_id = sc.contact_id""",
    "enrollments": """SELECT u.native_id || '|' || c.native_id FROM enrollments e
                      JOIN users u ON u.sourced_id = e.user_id JOIN classes c ON c.sourced_id = e.class_id""",
    "demographics": "SELECT native_id::VARCHAR FROM users WHERE role = 'student'",
}
STOPPED = lambda: 0.0  # noqa: E731 - a client clock that never sees its tokens age: the server expires them
FAULTS = dict(seed=3, latency_ms=10, rate_limit_share=0.05, retry_after_seconds=1, burst_every=25, burst_length=2,
              burst_status=[503, 502, 504, 500], bad_json_share=0.03, token_ttl_seconds=1, clamp_limit=40,
              non_spec_wrappers=True, overlap_rows=2)


def query(store, sql: str) -> list[tuple]:
    with duckdb.connect(str(store), read_only=True) as con:
        return con.execute(sql).fetchall()


def oneroster(sim, version: str, clock=time.monotonic, **settings) -> OneRosterClient:
    v = {"1.1": "v1p1", "1.2": "v1p2"}[version]
    values = dict(base_url=sim.base_url, token_url=sim.token_url, base_path=sim.oneroster_url(v)[len(sim.base_url):],
                  version=version, client_id="passport-demo", client_secret="passport-demo-secret",
                  scopes=tuple(SCOPES[v]), page_size=100, max_retries=6)
    client_settings = ClientSettings(**{**values, **settings})
    return OneRosterClient(client_settings, http=HttpClient(client_settings, sleep=Sleeps(), clock=clock))


def sms(sim, clock=time.monotonic, **settings) -> SmsClient:
    values = dict(base_url=sim.sms_url, client_id="passport-demo", client_secret="passport-demo-secret",
                  page_size=100, max_retries=6)
    client_settings = ClientSettings(**{**values, **settings})
    return SmsClient(client_settings, http=HttpClient(client_settings, grant="password", sleep=Sleeps(), clock=clock))


def extract_oneroster(client: OneRosterClient) -> tuple[dict[str, list[dict]], list]:
    rows: dict[str, list[dict]] = {}
    stats = []
    for entity in ENTITY_READS:
        pull = client.pull(entity)
        for page in pull:
            batch = normalize_oneroster(pull.stats.endpoint, page)
            assert batch.quarantined == []
            for name, found in batch.rows.items():
                rows.setdefault(name, []).extend(found)
        assert pull.stats.complete
        stats.append(pull.stats)
    return rows, stats


def extract_sms(client: SmsClient, with_enrollments: bool = False) -> tuple[dict[str, list[dict]], list]:
    rows: dict[str, list[dict]] = {}
    stats = []
    for endpoint in (read.name for read in SMS_READS):
        pull = client.pull(endpoint, with_enrollments=with_enrollments)
        for page in pull:
            batch = normalize_sms(endpoint, page)
            assert batch.quarantined == []
            for name, found in batch.rows.items():
                rows.setdefault(name, []).extend(found)
        assert pull.stats.complete
        stats.append(pull.stats)
    return rows, stats


def assert_ids_equal_store(rows: dict[str, list[dict]], store, expected_sql: dict[str, str]) -> None:
    for entity, sql in expected_sql.items():
        expected = Counter(row[0] for row in query(store, sql))
        got = Counter(row["sis_id"] for row in rows.get(entity, []))
        assert got == expected, entity


def assert_oneroster_content(rows: dict[str, list[dict]], store) -> None:
    students = {(r["sis_id"], r["given_name"], r["family_name"], r["state_id"], r["identifier"], tuple(r["grades"]))
                for r in rows["students"]}
    assert students == {(a, b, c, d, e, tuple(f)) for a, b, c, d, e, f in query(
        store, "SELECT sourced_id, given_name, family_name, state_id, identifier, grades FROM users WHERE role = 'student'")}
    links = {(r["sis_id"], r["relationship"], r["emergency_contact"], r["contact_order"]) for r in rows["student_contacts"]}
    assert links == set(query(store, """SELECT student_id || '|' || contact_id, relationship,
                                        CAST(emergency_contact AS VARCHAR), CAST(contact_order AS VARCHAR)
                                        FROM student_contacts"""))
    enrollments = {(r["sis_id"], r["user_sis_id"], r["class_sis_id"], r["role"]) for r in rows["enrollments"]}
    assert enrollments == set(query(store, "SELECT sourced_id, user_id, class_id, role FROM enrollments"))
    staff = {(r["sis_id"], tuple(r["school_sis_ids"])) for r in rows["staff"]}
    assert staff == {(a, tuple(b)) for a, b in query(
        store, f"SELECT sourced_id, org_ids FROM users WHERE role <> 'student' AND role NOT IN {CONTACT}")}


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_oneroster_pull_equals_the_store(small_district, version):
    with running_simulator(small_district) as sim, oneroster(sim, version) as client:
        rows, _ = extract_oneroster(client)
    assert_ids_equal_store(rows, small_district, ONEROSTER_IDS)
    assert_oneroster_content(rows, small_district)
    if version == "1.2":
        primaries = {r["sis_id"]: r["primary_school_sis_id"] for r in rows["students"]}
        assert primaries == dict(query(small_district, "SELECT sourced_id, primary_org_id FROM users WHERE role = 'student'"))


def test_sms_pull_equals_the_store(small_district):
    with running_simulator(small_district) as sim, sms(sim, max_concurrency=4) as client:
        rows, _ = extract_sms(client, with_enrollments=True)
    assert_ids_equal_store(rows, small_district, SMS_IDS)
    students = {(r["sis_id"], r["given_name"], r["family_name"], r["state_id"], r["identifier"], tuple(r["grades"]))
                for r in rows["students"]}
    assert students == {(str(a), b, c, d, e, tuple(f)) for a, b, c, d, e, f in query(
        small_district,
        "SELECT native_id, given_name, family_name, state_id, identifier, grades FROM users WHERE role = 'student'")}
    staff_schools = {r["sis_id"]: len(r["school_sis_ids"]) for r in rows["staff"]}
    assert staff_schools == {str(a): b for a, b in query(
        small_district, f"SELECT native_id, len(org_ids) FROM users WHERE role <> 'student' AND role NOT IN {CONTACT}")}


@pytest.mark.parametrize("version, expired_status", [("1.1", 403), ("1.2", 500)])
def test_oneroster_pull_survives_every_quirk(small_district, version, expired_status):
    faults = {**FAULTS, "expired_token_status": expired_status}
    with running_simulator(small_district, faults=faults) as sim, oneroster(sim, version, clock=STOPPED) as client:
        rows, stats = extract_oneroster(client)
        issued, retries = client.http.tokens.issued, client.http.retries
    assert_ids_equal_store(rows, small_district, ONEROSTER_IDS)
    assert_oneroster_content(rows, small_district)
    assert issued >= 2 and retries > 0
    assert any(s.clamped_limit == 40 for s in stats) and sum(s.duplicates for s in stats) > 0


def test_sms_pull_survives_every_quirk(small_district):
    faults = {**FAULTS, "expired_token_status": 403}
    with running_simulator(small_district, faults=faults) as sim, sms(sim, clock=STOPPED) as client:
        rows, stats = extract_sms(client)
        issued, retries = client.http.tokens.issued, client.http.retries
    assert_ids_equal_store(rows, small_district, SMS_IDS)
    assert issued >= 2 and retries > 0
    assert any(s.clamped_limit == 40 for s in stats) and sum(s.duplicates for s in stats) > 0


def test_per_school_reads_nested_and_split_locally_agree(small_district):
    schools = [row[0] for row in query(small_district, "SELECT sourced_id FROM orgs WHERE type = 'school'")]
    core = (SCOPES["v1p1"][0],)
    with running_simulator(small_district) as sim:
        results = []
        for scopes in (tuple(SCOPES["v1p1"]), core):
            with oneroster(sim, "1.1", scopes=scopes) as client:
                assert client.can_read_nested() == (scopes != core)
                per_school = Counter()
                for event in client.by_school("students", schools):
                    if event.final:
                        assert event.error is None and event.stats.complete
                    else:
                        per_school.update((event.key, r["sourcedId"]) for r in event.records)
                results.append(per_school)
        with oneroster(sim, "1.1", scopes=core) as client, pytest.raises(ForbiddenError) as caught:
            list(client.pull("demographics"))
    expected = Counter(query(small_district,
                             "SELECT unnest(org_ids), sourced_id FROM users WHERE role = 'student'"))
    assert results[0] == results[1] == expected
    assert caught.value.scope == "https://purl.imsglobal.org/spec/or/v1p1/scope/roster-demographics.readonly"
