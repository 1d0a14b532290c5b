"""Hostile OneRoster CSV files: broken rows become issues naming file, line and reason, the read goes
on, and credential-like columns are never stored anywhere in the warehouse."""

import json
from pathlib import Path

import pytest

from passport_pipeline.config import CsvBundleSource
from passport_pipeline.extract import extract_source
from passport_pipeline.sources.csv_bundle import CsvBundle
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.raw import Extraction, raw_table

MANIFEST = ("propertyName,value\nmanifest.version,1.0\noneroster.version,{version}\n"
            "file.users,bulk\nfile.orgs,bulk\nfile.enrollments,bulk\n")
ORGS = "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\nsch1,,,North,school,N1,\n"
USERS_HEADER = ("sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,"
                "familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password\n")
ENROLLMENTS = ("sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,"
               "beginDate,endDate\n")
PASSWORD = "Hunter2-Secret"


def user(sourced_id: str, role: str, given: str = "Ann", extra: str = "", password: str = "") -> str:
    return f"{sourced_id},active,,true,sch1,{role},,,{given},Lee,,,,,,,,{password}{extra}\n"


def bundle(tmp_path: Path, users: bytes, *, enrollments: str = ENROLLMENTS, version: str = "1.1",
           names: dict[str, str] | None = None, extra: dict[str, str] | None = None) -> Path:
    names = names or {}
    files = {"manifest": MANIFEST.format(version=version), "orgs": ORGS, "enrollments": enrollments, **(extra or {})}
    folder = tmp_path / "bundle"
    folder.mkdir()
    for name, text in files.items():
        (folder / names.get(name, f"{name}.csv")).write_text(text)
    (folder / names.get("users", "users.csv")).write_bytes(users)
    return folder


@pytest.fixture
def warehouse(tmp_path):
    with Warehouse(tmp_path / "warehouse.duckdb") as wh:
        yield wh


def land(warehouse: Warehouse, path: Path, read: str):
    """Land one read straight through the bundle's entry point; its extractions and issues."""
    bundle = CsvBundle(path)
    lands = next(r.lands for r in bundle.reads() if r.name == read)
    extractions = {entity: Extraction(warehouse, run_id="r1", source="csv", entity=entity) for entity in lands}
    transaction = warehouse.transaction()
    with transaction.writing() as con:
        issues = bundle.land(read, con, extractions)
    transaction.commit()
    return extractions, issues


def ids(warehouse: Warehouse, entity: str) -> set[str]:
    return {sis_id for (sis_id,) in warehouse.reading().execute(
        f"SELECT sis_id FROM {raw_table('csv', entity)}").fetchall()}


def test_broken_rows_become_issues_with_file_line_and_reason_and_the_rest_lands(warehouse, tmp_path):
    users = (
        "\ufeff" + USERS_HEADER                              # line 1, with a byte order mark
        + user("s1", "student", '"Multi\nline"')             # line 2 (a quoted field spans two lines)
        + user("s2", "student", extra=",surplus")            # line 3: one field too many
        + user("", "student")                                # line 4: no sourcedId
        + user("t1", "teacher", extra=",surplus")            # line 5
        + user("s3", "student")                              # line 6
    ).encode() + user("s4", "student", "B\xe9a").encode("latin-1") + (   # line 7: not UTF-8
        user("s5", "", "Noel") + "s6,active\n"                          # line 8: no role; line 9: short
        + user("s7", "student")).encode()                                # line 10
    extractions, issues = land(warehouse, bundle(tmp_path, users), "users")

    assert ids(warehouse, "students") == {"s1", "s3", "s7"} and ids(warehouse, "staff") == set()
    assert warehouse.reading().execute(
        f"SELECT given_name FROM {raw_table('csv', 'students')} WHERE sis_id = 's1'").fetchone() == ("Multi\nline",)
    assert [str(issue) for issue in issues] == [
        "users.csv line 3: 19 fields where the header has 18",
        "users.csv line 4: no sourcedId",
        "users.csv line 5: 19 fields where the header has 18",
        "users.csv line 7: not valid UTF-8 text",
        "users.csv line 8: no role",
        "users.csv line 9: 2 fields where the header has 18",
    ]
    assert extractions["students"].quarantined == 6 and extractions["students"].rows == 3
    messages = [m for (m,) in warehouse.reading().execute(
        "SELECT message FROM sync.issues WHERE rule = 'quarantine' ORDER BY message").fetchall()]
    assert messages[0].startswith("users.csv line 3: 19 fields where the header has 18: (text withheld")
    no_id = json.loads(messages[1].split(": ", 2)[2])
    assert no_id["role"] == "student" and "password" not in no_id


def test_a_blank_id_in_a_streamed_file_is_counted_and_quarantined(warehouse, tmp_path):
    rows = "".join(f"e{n},active,,k1,sch1,s1,student,true,,\n" for n in range(5000))
    enrollments = ENROLLMENTS + rows + " ,active,,k1,sch1,s1,student,true,,\n" + "e-last,,,k1,sch1,s1,student,,,\n"
    extractions, issues = land(warehouse, bundle(tmp_path, USERS_HEADER.encode(), enrollments=enrollments),
                               "enrollments")
    assert extractions["enrollments"].rows == 5001 and extractions["enrollments"].quarantined == 1
    assert [str(issue) for issue in issues] == ["enrollments.csv line 5002: no sourcedId"]


def test_a_quote_that_never_ends_is_reported_and_what_came_before_lands(warehouse, tmp_path):
    enrollments = ENROLLMENTS + "e1,active,,k1,sch1,s1,student,true,,\n" + '"e2,active,,k1,sch1,s1,student,true,,\n'
    extractions, issues = land(warehouse, bundle(tmp_path, USERS_HEADER.encode(), enrollments=enrollments),
                               "enrollments")
    assert ids(warehouse, "enrollments") == {"e1"}
    assert [(issue.line, issue.reason.split(" (")[0]) for issue in issues] == [(3, "unparsable quoting")]
    assert issues[0].raw.startswith('"e2,active')


def test_file_names_and_headers_match_whatever_their_case_and_the_payload_keeps_what_no_column_carries(
        warehouse, tmp_path):
    header = USERS_HEADER.replace("sourcedId", "SOURCEDID").replace("givenName", "GivenName").rstrip("\n")
    users = (header + ",nickname,metadata.skyward.custom\n" + user("s1", "student").rstrip("\n") + ",Annie,x1\n")
    path = bundle(tmp_path, users.encode(), names={"users": "USERS.CSV", "manifest": "Manifest.csv",
                                                   "orgs": "Orgs.csv"})
    result = extract_source(warehouse, CsvBundleSource(name="csv", path=path), run_id="r1")
    assert not result.failed
    sis_id, given, payload = warehouse.reading().execute(
        f"SELECT sis_id, given_name, payload FROM {raw_table('csv', 'students')}").fetchone()
    assert sis_id == "s1" and given == "Ann"
    assert json.loads(payload) == {"orgSourcedIds": "sch1", "role": "student", "userIds": None,
                                   "agentSourcedIds": None, "grades": None, "nickname": "Annie",
                                   "metadata": {"skyward.custom": "x1"}}


def test_no_password_is_stored_anywhere_in_the_warehouse(warehouse, tmp_path):
    """Failure 7: users.csv passwords (and userProfiles.csv credentials) never reach the warehouse —
    not in payloads, not in issues, not even for a row that cannot be read."""
    users = (USERS_HEADER + user("s1", "student", password=PASSWORD + "1")
             + user("", "student", password=PASSWORD + "2")
             + user("s3", "student", password=PASSWORD + "3", extra=",surplus"))
    profiles = ("sourcedId,status,dateLastModified,userSourcedId,profileType,vendorId,applicationId,description,"
                f"credentialType,username,password\np1,,,s1,lms,v1,,,password,ann,{PASSWORD}4\n")
    manifest = MANIFEST.format(version="1.2") + "file.userProfiles,bulk\n"
    path = bundle(tmp_path, users.encode(), version="1.2", extra={"userProfiles": profiles, "manifest": manifest})
    lines = {file.name: str(file) for file in CsvBundle(path).files()}
    assert lines["userProfiles.csv"] == ("userProfiles.csv (bulk): the sync does not read it "
                                         "(holds credentials, which the sync never stores)")
    result = extract_source(warehouse, CsvBundleSource(name="csv", path=path), run_id="r1")
    assert not result.failed and result.entities["students"].rows == 1
    assert result.entities["students"].quarantined == 2
    read = warehouse.reading()
    columns = read.execute("SELECT schema_name, table_name, column_name FROM duckdb_columns()"
                           " WHERE NOT internal AND database_name = current_database()").fetchall()
    assert len(columns) > 50
    for schema, table, column in columns:
        found = read.execute(f'SELECT count(*) FROM "{schema}"."{table}" WHERE contains("{column}"::VARCHAR, ?)',
                             [PASSWORD]).fetchone()[0]
        assert found == 0, f"{schema}.{table}.{column} holds a password"
