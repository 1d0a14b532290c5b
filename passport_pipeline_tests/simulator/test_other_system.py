"""The other system's bundle overlaps the district exactly as other_system's docstring says."""

from __future__ import annotations

import csv
import filecmp
import re
from pathlib import Path

import duckdb
import pytest

from passport_pipeline.config import PassportConfig
from passport_pipeline.simulator.district import district_file_name
from passport_pipeline.simulator.embedded import reachable
from passport_pipeline.simulator.other_system import ensure_other_system, export_other_system
from passport_pipeline.sources.csv_bundle import CsvBundle


@pytest.fixture(scope="module")
def bundle(small_district: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_other_system(small_district, tmp_path_factory.mktemp("other") / "bundle")


@pytest.fixture(scope="module")
def con(bundle: Path, small_district: Path):
    con = duckdb.connect()
    con.execute("ATTACH $path AS district (READ_ONLY)", {"path": str(small_district)})
    for name in ("users", "orgs", "demographics", "skyward_relationships"):
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv($path, header = true, all_varchar = true)",
                    {"path": str(bundle / f"{name}.csv")})
    con.execute("""
        CREATE TABLE students AS
        SELECT u.*, ltrim(u."metadata.skyward.stateId", '0') AS sid, d.sourced_id IS NOT NULL AS shared,
               d.email AS district_email
        FROM users u LEFT JOIN district.users d
            ON d.role = 'student' AND ltrim(d.state_id, '0') = ltrim(u."metadata.skyward.stateId", '0')
        WHERE u.role = 'student'""")
    yield con
    con.close()


def one(con, sql: str):
    return con.execute(sql).fetchone()[0]


def test_a_fifth_of_the_students_are_shared_keeping_their_state_id_one_in_five_with_another_email(con):
    district = one(con, "SELECT count(*) FROM district.users WHERE role = 'student' AND status = 'active'")
    shared = round(0.2 * district)
    assert one(con, "SELECT count(*) FROM students WHERE shared") == shared
    other_email = "SELECT count(*) FROM students WHERE shared AND {}"
    assert one(con, other_email.format("email IS DISTINCT FROM district_email")) == shared // 5
    assert one(con, other_email.format("email LIKE '%@mail.othersis.example'")) == shared // 5
    zeros = one(con, """SELECT count(*) FROM students WHERE shared AND "metadata.skyward.stateId" LIKE '00%'
                        AND "userIds" = '{stateId:' || "metadata.skyward.stateId" || '}'""")
    assert zeros == len([n for n in range(1, shared + 1) if n % 10 == 3])


def test_own_students_share_no_state_id_email_or_name_and_birth_date_with_the_district_and_have_a_parent(con):
    own = one(con, "SELECT count(*) FROM students WHERE NOT shared")
    assert own == round(0.05 * 300)
    assert one(con, """SELECT count(*) FROM students s JOIN district.users d ON d.role = 'student'
                       AND (ltrim(d.state_id, '0') = s.sid OR lower(d.email) = lower(s.email)
                            OR (lower(trim(d.given_name)), lower(trim(d.family_name)), CAST(d.birth_date AS VARCHAR))
                               = (lower(s."givenName"), lower(s."familyName"), s."metadata.skyward.birthDate"))
                       WHERE NOT s.shared""") == 0
    assert one(con, """SELECT count(DISTINCT s."sourcedId") FROM students s JOIN skyward_relationships r
                       ON r."studentSourcedId" = s."sourcedId" WHERE NOT s.shared""") == own


def test_guardians_of_shared_students_are_shared_one_in_four_with_another_phone(con):
    expected = one(con, """SELECT count(DISTINCT l.contact_id) FROM district.student_contacts l
                           JOIN district.users s ON s.sourced_id = l.student_id
                           WHERE l.is_guardian AND s.state_id IN (SELECT sid FROM students)""")
    phones = con.execute("""SELECT u.phone, d.phone FROM users u JOIN district.users d
                            ON d.email = u.email AND d.given_name = u."givenName" AND d.role = u.role
                            WHERE u.role IN ('guardian', 'parent', 'relative')""").fetchall()
    assert len(phones) == expected
    assert sum(ours != theirs for ours, theirs in phones) == expected // 4


def test_other_ids_for_everything_same_school_identifiers_and_no_schedule(con, bundle):
    district_ids = re.compile(r"\b(org|ses|crs|cls|stu|stf|con|enr)-\d{10}\b")
    assert [file.name for file in bundle.iterdir() if district_ids.search(file.read_text())] == []
    assert (con.execute("SELECT list(identifier ORDER BY identifier) FROM orgs").fetchone()
            == con.execute("SELECT list(identifier ORDER BY identifier) FROM district.orgs").fetchone())
    assert one(con, "SELECT count(*) FROM users WHERE role NOT IN ('student', 'guardian', 'parent')") == 0
    with (bundle / "manifest.csv").open() as file:
        manifest = dict(csv.reader(file))
    assert {manifest[f"file.{name}"] for name in ("academicSessions", "courses", "classes", "enrollments")} == {"absent"}
    assert manifest["file.users"] == "bulk" and manifest["source.systemName"] == "Other SIS"
    assert not (bundle / "enrollments.csv").exists()


def test_the_same_district_gives_the_same_bundle_written_once_beside_it(bundle, small_district, tmp_path):
    district = tmp_path / small_district.name
    district.write_bytes(small_district.read_bytes())
    written = ensure_other_system(district)
    assert written.parent == tmp_path and ensure_other_system(district) == written
    names = sorted(p.name for p in bundle.iterdir())
    assert sorted(p.name for p in written.iterdir()) == names
    assert filecmp.cmpfiles(bundle, written, names, shallow=False)[0] == names


def test_a_bundle_source_with_path_embedded_reads_the_other_system_of_the_configured_district(small_district, tmp_path):
    root = tmp_path / "simulator"
    root.mkdir()
    (root / district_file_name(7, 300)).write_bytes(small_district.read_bytes())
    config = PassportConfig.model_validate({
        "simulator": {"seed": 7, "students": 300, "dirty": "none"},
        "sources": [{"name": "other_sis", "app": "oneroster_csv", "path": "embedded", "sis_id_prefix": "OTH-"}]})
    with reachable(config, root) as resolved:
        [source] = resolved.sources
        assert source.bundle_path == root / f"other-system-{Path(district_file_name(7, 300)).stem}"
        assert CsvBundle(source.bundle_path).version == "1.1"
    assert config.sources[0].embedded
