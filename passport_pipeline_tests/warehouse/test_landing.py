"""Pages landed as JSON text by SQL equal the Python oracle's records, row for row.

Every entity of the small district is read through the simulator (OneRoster 1.1, 1.2 and
SMS) and landed both ways: the Python reference (``normalize_*`` then ``write_page``) and
:class:`PageLanding`, from the response text as sent and from the records encoded again.
The raw tables — every column, payload compared as parsed JSON — and the quarantine issues
must be identical; so must they for hostile records.
"""

from __future__ import annotations

import json

import pytest

from passport_pipeline.config import OneRosterSource, SmsSource
from passport_pipeline.entities import ENTITIES
from passport_pipeline.simulator.server import running_simulator
from passport_pipeline_tests.oracle.oneroster import normalize_oneroster
from passport_pipeline_tests.oracle.sms import normalize_sms
from passport_pipeline.sources.connect import open_client
from passport_pipeline.sources.paging import SentPage
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.landing import PageLanding
from passport_pipeline.warehouse.normalize_sql_oneroster import ONEROSTER_SQL
from passport_pipeline.warehouse.normalize_sql_sms import SMS_SQL
from passport_pipeline.warehouse.raw import WHOLE_SOURCE, Extraction, raw_table

ENV = {"SIM_ID": "passport-demo", "SIM_SECRET": "passport-demo-secret"}
CREDENTIALS = {"client_id_env": "SIM_ID", "client_secret_env": "SIM_SECRET"}


@pytest.fixture
def warehouse(tmp_path):
    with Warehouse(tmp_path / "warehouse.duckdb") as wh:
        yield wh


def land_python(warehouse, source: str, reads: dict[str, list[list]], normalize) -> dict[str, int]:
    """The reference: each page normalized in Python, landed by ``write_page``."""
    extractions: dict[str, Extraction] = {}

    def extraction(entity: str) -> Extraction:
        if entity not in extractions:
            extractions[entity] = Extraction(warehouse, run_id="r", source=source, entity=entity)
        return extractions[entity]

    for kind, pages in reads.items():
        entities = list(_mapping(normalize, kind).rows)
        for page in pages:
            batch = normalize(kind, page)
            for entity in entities:
                extraction(entity).write_page(batch.rows.get(entity, []))
            for item in batch.quarantined:
                extraction(entities[0]).quarantine(item.reason, item.raw)
    return _complete(extractions)


def land_sql(warehouse, source: str, reads: dict[str, list[list]], normalize, *, as_sent: bool) -> dict[str, int]:
    """The same pages landed as JSON text: as the server sent them (when it did), or encoded again."""
    extractions: dict[tuple[str, str], Extraction] = {}
    for kind, pages in reads.items():
        mapping = _mapping(normalize, kind)
        for entity in mapping.rows:
            if (entity, WHOLE_SOURCE) not in extractions:
                extractions[(entity, WHOLE_SOURCE)] = Extraction(warehouse, run_id="r", source=source, entity=entity)
        landing = PageLanding(warehouse, mapping, list(mapping.rows), next(iter(mapping.rows)), extractions)
        for page in pages:
            landing.add(page if as_sent else list(page), WHOLE_SOURCE)
        landing.commit()
    return _complete({entity: extraction for (entity, _), extraction in extractions.items()})


def _mapping(normalize, kind: str):
    return SMS_SQL[kind] if normalize is normalize_sms else ONEROSTER_SQL[kind]


def _complete(extractions: dict[str, Extraction]) -> dict[str, int]:
    for extraction in extractions.values():
        extraction.complete()
    return {entity: extraction.rows for entity, extraction in extractions.items()}


def table(warehouse, source: str, entity: str) -> list[tuple]:
    """Every canonical column and the parsed payload of a raw table, in a stable order."""
    columns = ", ".join(f'"{c}"' for c in ENTITIES[entity].all_columns)
    rows = warehouse.reading().execute(f"SELECT {columns}, payload::VARCHAR FROM {raw_table(source, entity)}").fetchall()
    return sorted(((*row[:-1], json.loads(row[-1])) for row in rows), key=lambda row: json.dumps(row, sort_keys=True))


def issues(warehouse, source: str) -> list[tuple]:
    return warehouse.reading().execute(
        "SELECT entity, record_id, rule, severity, message FROM sync.issues WHERE source = ? ORDER BY ALL", [source]
    ).fetchall()


def assert_same(warehouse, reference: str, landed: str, rows: dict[str, int], expected: dict[str, int]) -> None:
    assert rows == expected
    for entity in expected:
        assert table(warehouse, landed, entity) == table(warehouse, reference, entity), entity
    assert issues(warehouse, landed) == issues(warehouse, reference)


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_oneroster_district_lands_the_same_both_ways(small_district, warehouse, version):
    with running_simulator(small_district, read_only=True) as sim:
        source = OneRosterSource(name="sky", base_url=sim.base_url, token_url=sim.token_url,
                                 oneroster_version=version, credentials=CREDENTIALS)
        with open_client(source, ENV) as client:
            reads = {kind: list(client.collection(kind)) for kind in ONEROSTER_SQL}
    assert all(isinstance(page, SentPage) for pages in reads.values() for page in pages)
    expected = land_python(warehouse, "py", reads, normalize_oneroster)
    assert expected["enrollments"] and expected["student_contacts"] and expected["staff"]
    assert_same(warehouse, "py", "sent", land_sql(warehouse, "sent", reads, normalize_oneroster, as_sent=True), expected)
    assert_same(warehouse, "py", "encoded", land_sql(warehouse, "encoded", reads, normalize_oneroster, as_sent=False),
                expected)


def test_sms_district_lands_the_same_both_ways(small_district, warehouse):
    with running_simulator(small_district, read_only=True) as sim:
        source = SmsSource(name="sky", base_url=sim.sms_url, token_url=sim.sms_token_url, credentials=CREDENTIALS)
        with open_client(source, ENV) as client:
            reads = {kind: list(client.pull(kind)) for kind in SMS_SQL}
    assert isinstance(reads["students"][0], SentPage) and not isinstance(reads["staff"][0], SentPage)  # merged
    expected = land_python(warehouse, "py", reads, normalize_sms)
    assert expected["demographics"] and expected["student_contacts"] and expected["enrollments"]
    assert_same(warehouse, "py", "sent", land_sql(warehouse, "sent", reads, normalize_sms, as_sent=True), expected)
    assert_same(warehouse, "py", "encoded", land_sql(warehouse, "encoded", reads, normalize_sms, as_sent=False),
                expected)


def ref_to(sourced_id: object, kind: str = "org") -> dict:
    return {"href": f"https://x/{kind}s/{sourced_id}", "sourcedId": sourced_id, "type": kind}


QUOTED = "Zoë \"Z\" O'Brien; DROP TABLE x; -- \\ 😀 \u2028 \t"
ONEROSTER_HOSTILE = {
    "orgs": [
        {"sourcedId": "o1", "status": "active", "name": QUOTED, "type": "school", "parent": ref_to("d1"),
         "identifier": False},
        {"sourcedId": 7, "name": "Seven", "parent": "d1"},
        {"sourcedId": "o3", "parent": {"sourcedId": 5}, "identifier": 10**30},
        {"sourcedId": " \u00a0", "name": "blank id"}, {"name": "no id"}, "a string", 42, None, [1, 2],
    ],
    "academicSessions": [{"sourcedId": "t1", "schoolYear": 2026, "parent": None, "title": 1.5}],
    "courses": [{"sourcedId": "c1", "grades": ["09", None, 10, True], "subjects": "Math", "org": "o1",
                 "schoolYear": ref_to("t1", "academicSession"), "title": -0.0}],
    "classes": [{"sourcedId": "k1", "terms": ref_to("t1"), "periods": [], "grades": None,
                 "location": {"room": [1, "é"]}, "course": {"href": "x"}},
                {"sourcedId": "k2", "terms": [ref_to("t1"), "t2", None, {"no": 1}], "title": 1e-07}],
    "enrollments": [{"sourcedId": "e1", "user": ref_to(None, "user"), "class": "k1", "primary": False,
                     "beginDate": None, "role": "student"}],
    "demographics": [{"sourcedId": "s1", "sex": "F", "white": True, "asian": "false", "birthDate": "2010-01-01"}],
    "users": [
        {"sourcedId": "s1", "role": "Student", "givenName": QUOTED, "familyName": "李", "middleName": "",
         "identifier": 12345, "enabledUser": True, "email": None, "phone": 5.5, "sms": -0.0, "grades": "07",
         "orgs": [ref_to("o1"), "o2", None, {"no": 1}], "primaryOrg": "", "birthDate": "",
         "metadata": {"skyward.gradYear": 2031, "skyward.birthDate": "2010-01-01",
                      "skyward.stateId": {"nested": [1, "x"]}},
         "userIds": [{"type": "State_ID", "identifier": 77}]},
        {"sourcedId": "s2", "role": "student", "birthDate": 0, "metadata": "not an object", "userIds": "abc"},
        {"sourcedId": "s3", "role": "student", "birthDate": False, "userIds": {"type": "stateid"},
         "metadata": {"skyward.stateId": "ST3"}, "orgs": ref_to("o1")},
        {"sourcedId": "t1", "userMasterIdentifier": "", "userIds": [{"type": "stateid", "identifier": None}],
         "metadata": {"skyward.stateId": "unused"}, "primaryOrg": {"sourcedId": ""},
         "roles": [{"roleType": "secondary", "role": "teacher", "org": ref_to("o1")}, "junk",
                   {"roleType": "primary", "role": " Administrator ", "org": "o2"}, {"role": "aide", "org": ref_to("o1")}]},
        {"sourcedId": "t2", "roles": [], "role": "aide", "orgs": None, "userMasterIdentifier": "UM2"},
        {"sourcedId": "t3", "roles": [{"role": "counselor", "org": ref_to("o3")}], "primaryOrg": ref_to("o9")},
        {"sourcedId": "c1", "role": "parent", "metadata": {"skyward.relationships":
            '[{"studentSourcedId": "s1", "relationship": "aunt", "custodial": false, "contactOrder": 2}]'}},
        {"sourcedId": "c2", "role": "guardian", "agents": [ref_to("s1", "user"), "s2", None, {"no": 1}]},
        {"sourcedId": "c3", "role": "Relative", "metadata": {"skyward.relationships": "null"}},
        {"sourcedId": "c4", "role": "parent", "metadata": {"skyward.relationships": []}, "agents": [ref_to("s9")]},
        {"sourcedId": "c5", "role": "parent", "metadata": {"skyward.relationships": [
            {"studentSourcedId": 3, "relationship": "father", "emergencyContact": True, "pickupAllowed": None},
            {"studentSourcedId": "s1", "relationship": QUOTED}]}},
        {"sourcedId": "c6", "role": "parent", "metadata": {"skyward.relationships": {"a": 1}}},
        {"sourcedId": "c7", "role": "parent", "metadata": {"skyward.relationships": [{"relationship": "x"}]}},
        {"sourcedId": "c8", "role": "parent", "metadata": {"skyward.relationships": ["s1"]}},
        {"sourcedId": "x1", "roles": ["x", 1]}, {"sourcedId": "x2"}, {"sourcedId": "x3", "role": "   "},
        {"sourcedId": "x4", "role": "\u3000"}, {"role": "student"}, {"sourcedId": "\u2003", "role": "student"},
        {"sourcedId": 0, "role": "teacher"},
        {"sourcedId": "x5", "role": "student", "userIds": 5}, {"sourcedId": "x6", "role": "student", "userIds": True},
        {"sourcedId": "x7", "role": "student", "userIds": 2.5}, {"sourcedId": "x8", "role": "teacher", "userIds": 0},
        {"sourcedId": "x9", "role": "student", "userMasterIdentifier": "UM", "userIds": 5},
        "not a user", None, 3.5, [],
    ],
}

SMS_HOSTILE = {
    "schools": [{"SchoolId": 1, "SchoolName": QUOTED, "SchoolCode": None, "Status": " Active "}, {"SchoolName": "x"}],
    "students": [
        {"NameId": 123, "Status": " Withdrawn ", "FirstName": QUOTED, "LastName": "李",
         "Enrollments": [{"GradeLevel": "07", "Status": "Active"}, {"GradeLevel": "08", "Status": "inactive"}, "junk",
                         {"GradeLevel": "07", "Status": "active"}, {"GradeLevel": 9, "Status": "ACTIVE"}],
         "PhoneNumber": "111", "PhoneNumberType": "Cell", "PhoneNumber2": "", "PhoneNumberType2": "home",
         "PhoneNumber3": "333", "SchoolEmail": "", "Email": "e@x", "schoolIds": [], "SchoolIds": [1, "2"],
         "DateOfBirth": None, "Gender": "F", "GradYr": 2031},
        {"NameId": "n2", "Status": "Pending", "GradeLevel": "05", "PhoneNumber": "", "PhoneNumberType": " MOBILE ",
         "PhoneNumber2": "222", "PhoneNumberType2": "cell", "schoolIds": "s1", "DateOfBirth": "2010-02-03"},
        {"NameId": "n3", "Status": "", "PhoneNumber": "", "PhoneNumber2": "", "Enrollments": []},
        {"FirstName": "no id"}, {"NameId": " "}, "junk",
    ],
    "guardians": [
        {"GuardianNameId": 900, "Students": [{"StudentNameId": 1, "RelationshipDesc": " Mother ", "IsGuardian": True},
                                             {"StudentNameId": "2", "RelationshipDesc": "Aunt", "IsGuardian": False,
                                              "IsEmergencyContact": 1, "ContactOrder": 3}]},
        {"GuardianNameId": "g2", "Students": [{"StudentNameId": "1", "IsGuardian": False}]},
        {"GuardianNameId": "g3", "Students": None, "Email": QUOTED},
        {"GuardianNameId": "g4", "Students": [{"StudentNameId": "1", "IsGuardian": 0, "RelationshipDesc": "Uncle"}]},
        {"GuardianNameId": "g5", "Students": "x"}, {"GuardianNameId": "g6", "Students": [1]},
        {"GuardianNameId": "g7", "Students": [{"RelationshipDesc": "x"}]}, {"Students": []},
    ],
    "staff": [
        {"NameId": 5, "PositionDesc": "Teacher", "Assignments": [{"SchoolId": 1}, {"SchoolId": "2", "IsPrimarySchool": True},
                                                                  {"SchoolId": 1}, "junk"]},
        {"NameId": "s2", "PositionDesc": "", "IsTeacher": True, "SchoolId": "3"},
        {"NameId": "s3", "PositionDesc": None, "IsTeacher": 0, "Assignments": [{"SchoolId": None, "IsPrimarySchool": True},
                                                                               {"SchoolId": "4"}]},
        {"NameId": "s4", "PositionDesc": "Éducateur", "Assignments": []}, {"PositionDesc": "x"},
    ],
    "courses": [{"CourseId": "c1", "Grades": ["09", None], "Subjects": "Math", "SchoolId": 1}],
    "sections": [
        {"SectionId": 10, "Teachers": [{"StaffNameId": 5, "IsPrimary": True}, {"StaffNameId": "6"}], "TermIds": "T1",
         "Periods": [1, "2"], "SchoolId": 1, "Status": "deleted"},
        {"SectionId": "11", "Teachers": None}, {"SectionId": "12", "Teachers": "x"},
        {"SectionId": "13", "Teachers": [{}]}, {"SectionId": "14", "Teachers": ["5"]},
    ],
    "terms": [{"TermId": 1, "ParentTermId": 0, "SchoolYear": 2026, "TermName": QUOTED}],
    "student_schedules": [{"StudentNameId": 1, "SectionId": 10, "EntryDate": "2026-08-20"},
                          {"StudentNameId": " ", "SectionId": 10}, {"StudentNameId": 1}],
}


def as_sent(pages: dict[str, list], wrapper: str | None) -> dict[str, list[list]]:
    """Each read's records as one page with the text a server would send (wrapped, or a bare list)."""
    sent = {}
    for kind, records in pages.items():
        body = {wrapper: records} if wrapper else records
        sent[kind] = [SentPage(records, json.dumps(body, ensure_ascii=False).encode(), wrapper is not None)]
    return sent


@pytest.mark.parametrize(("normalize", "pages", "wrapper"), [
    (normalize_oneroster, ONEROSTER_HOSTILE, "records"),
    (normalize_sms, SMS_HOSTILE, None),
], ids=["oneroster", "sms"])
def test_hostile_records_land_the_same_both_ways(warehouse, normalize, pages, wrapper):
    reads = as_sent(pages, wrapper)
    expected = land_python(warehouse, "py", reads, normalize)
    assert len(issues(warehouse, "py")) > 10
    assert_same(warehouse, "py", "sent", land_sql(warehouse, "sent", reads, normalize, as_sent=True), expected)
    assert_same(warehouse, "py", "encoded", land_sql(warehouse, "encoded", reads, normalize, as_sent=False), expected)


def test_relationships_sent_as_text_that_is_not_json_quarantine_the_contact(warehouse):
    contact = {"sourcedId": "c1", "role": "parent", "metadata": {"skyward.relationships": "[{oops"}}
    (reference,) = normalize_oneroster("users", [contact]).quarantined
    rows = land_sql(warehouse, "sky", {"users": [[contact]]}, normalize_oneroster, as_sent=False)
    assert rows["contacts"] == rows["student_contacts"] == 0
    (message,) = [issue[-1] for issue in issues(warehouse, "sky")]
    assert reference.reason.startswith("unreadable record (JSONDecodeError")
    assert message.startswith("unreadable record (JSONDecodeError") and '"c1"' in message


def test_pages_of_several_scopes_share_a_batch_and_land_each_in_its_scope(warehouse, monkeypatch):
    monkeypatch.setattr("passport_pipeline.warehouse.landing.BATCH_ROWS", 5)
    extractions = {("schools", scope): Extraction(warehouse, run_id="r", source="sky", entity="schools", scope=scope)
                   for scope in "ABC"}
    landing = PageLanding(warehouse, ONEROSTER_SQL["orgs"], ["schools"], "schools", extractions)
    landing.add([{"sourcedId": "1"}, {"sourcedId": "2"}, "broken"], "A")
    landing.add([{"sourcedId": "9"}], "C")
    landing.discard("C")  # C's pull failed before the batch was full
    landing.add([{"sourcedId": "3"}, {"sourcedId": "4"}], "B")  # 5 rows buffered: the batch lands
    assert {scope: (e.rows, e.quarantined) for (_, scope), e in extractions.items()} == \
           {"A": (2, 1), "B": (2, 0), "C": (0, 0)}
    assert table(warehouse, "sky", "schools") == [] and issues(warehouse, "sky") == []  # not committed yet
    landing.add([{"sourcedId": "5"}], "C")
    landing.commit()
    landed = warehouse.reading().execute(
        f"SELECT scope, list(sis_id ORDER BY sis_id) FROM {raw_table('sky', 'schools')} GROUP BY scope ORDER BY scope"
    ).fetchall()
    assert landed == [("A", ["1", "2"]), ("B", ["3", "4"]), ("C", ["5"])]
    assert len(issues(warehouse, "sky")) == 1


def test_a_rolled_back_read_leaves_no_rows_or_issues_and_the_next_one_lands(warehouse, monkeypatch):
    monkeypatch.setattr("passport_pipeline.warehouse.landing.BATCH_ROWS", 2)
    extractions = {("schools", "*"): Extraction(warehouse, run_id="r", source="sky", entity="schools")}
    landing = PageLanding(warehouse, ONEROSTER_SQL["orgs"], ["schools"], "schools", extractions)
    landing.add([{"sourcedId": "1"}, "broken"], "*")  # lands
    landing.add([{"sourcedId": "2"}], "*")  # buffered
    landing.rollback()
    landing.commit()
    assert table(warehouse, "sky", "schools") == [] and issues(warehouse, "sky") == []
    landing.add([{"sourcedId": "3"}], "*")
    landing.commit()
    assert [row[0] for row in table(warehouse, "sky", "schools")] == ["3"]


def test_a_long_read_commits_every_transaction_rows(warehouse, monkeypatch):
    monkeypatch.setattr("passport_pipeline.warehouse.landing.BATCH_ROWS", 2)
    monkeypatch.setattr("passport_pipeline.warehouse.landing.TRANSACTION_ROWS", 4)
    extractions = {("schools", "*"): Extraction(warehouse, run_id="r", source="sky", entity="schools")}
    landing = PageLanding(warehouse, ONEROSTER_SQL["orgs"], ["schools"], "schools", extractions)
    visible = []
    for n in range(5):
        landing.add([{"sourcedId": f"{n}a"}, {"sourcedId": f"{n}b"}], "*")  # a batch of 2 lands
        visible.append(len(table(warehouse, "sky", "schools")))
    landing.commit()
    assert visible == [0, 4, 4, 8, 8] and len(table(warehouse, "sky", "schools")) == 10


def test_a_page_whose_text_is_not_utf8_lands_from_its_records(warehouse):
    records = [{"sourcedId": "o1", "name": "Café"}]
    page = SentPage(records, json.dumps({"orgs": records}, ensure_ascii=False).encode("latin-1"), True)
    rows = land_sql(warehouse, "sky", {"orgs": [page]}, normalize_oneroster, as_sent=True)
    assert rows["schools"] == 1
    assert warehouse.reading().execute(f"SELECT name FROM {raw_table('sky', 'schools')}").fetchall() == [("Café",)]
