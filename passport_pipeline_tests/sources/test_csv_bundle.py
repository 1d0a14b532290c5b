"""The ``oneroster_csv`` source: bundles read back to canonical records, broken rows as issues."""

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from passport_pipeline.entities import ENTITIES
from passport_pipeline.simulator import store
from passport_pipeline.simulator.csv_bundle import export_bundle
from passport_pipeline.simulator.dirty import DirtyData
from passport_pipeline.simulator.district import generate_district
from passport_pipeline.sources.csv_bundle import BundleError, CsvBundle, Issue

DLM = "strftime(date_last_modified, '%Y-%m-%dT%H:%M:%S.%gZ')"
COMMON = f"sourced_id, status, {DLM}"
PERSON = ("username, given_name, family_name, middle_name, preferred_first_name, identifier, state_id, "
          "email, phone, sms, CAST(enabled_user AS VARCHAR)")
STAFF_ROLE = "CASE WHEN role IN ('counselor', 'principal') THEN 'administrator' ELSE role END"
FLAGS = ("american_indian_or_alaska_native, asian, black_or_african_american, "
         "native_hawaiian_or_other_pacific_islander, white, demographic_race_two_or_more_races, "
         "hispanic_or_latino_ethnicity")

EXPECTED = {
    "schools": f"SELECT {COMMON}, name, identifier, type, parent_id FROM orgs",
    "terms": f"""SELECT {COMMON}, title, type, CAST(start_date AS VARCHAR), CAST(end_date AS VARCHAR),
                        parent_id, CAST(school_year AS VARCHAR) FROM academic_sessions""",
    "courses": f"""SELECT {COMMON}, title, course_code, coalesce(grades, []), coalesce(subjects, []),
                          org_id, school_year_id FROM courses""",
    "classes": f"""SELECT {COMMON}, title, class_code, class_type, location, coalesce(grades, []),
                          coalesce(subjects, []), coalesce(periods, []), course_id, school_id, term_ids
                   FROM classes""",
    "students": f"""SELECT {COMMON}, {PERSON}, coalesce(grades, []), org_ids, primary_org_id,
                           CAST(grad_year AS VARCHAR), CAST(birth_date AS VARCHAR)
                    FROM users WHERE role = 'student'""",
    "staff": f"""SELECT {COMMON}, {PERSON}, {STAFF_ROLE}, org_ids, primary_org_id FROM users
                 WHERE role NOT IN ('student', 'guardian', 'parent', 'relative')""",
    "contacts": f"SELECT {COMMON}, {PERSON}, role FROM users WHERE role IN ('guardian', 'parent', 'relative')",
    "student_contacts": f"""SELECT student_id || '|' || contact_id, u.status, strftime(l.date_last_modified,
                                   '%Y-%m-%dT%H:%M:%S.%gZ'), student_id, contact_id, relationship,
                                   CAST(emergency_contact AS VARCHAR), CAST(custodial AS VARCHAR),
                                   CAST(pickup_allowed AS VARCHAR), CAST(contact_order AS VARCHAR)
                            FROM student_contacts l JOIN users u ON u.sourced_id = l.contact_id""",
    "enrollments": f"""SELECT {COMMON}, user_id, class_id, school_id, role, CAST("primary" AS VARCHAR),
                              CAST(begin_date AS VARCHAR), CAST(end_date AS VARCHAR) FROM enrollments""",
    "demographics": f"""SELECT {COMMON}, CAST(birth_date AS VARCHAR), sex,
                               {', '.join(f'CAST({c} AS VARCHAR)' for c in FLAGS.split(', '))},
                               country_of_birth_code, state_of_birth_abbreviation, city_of_birth,
                               public_school_residence_status FROM demographics""",
}
"""Per entity, the store's rows as the canonical columns (registry order) should carry them."""


def expected(con, entity: str) -> dict[str, tuple]:
    return {row[0]: row for row in con.execute(EXPECTED[entity]).fetchall()}


def read(bundle: CsvBundle, entity: str, **kwargs) -> tuple[dict[str, tuple], list[Issue]]:
    columns = list(ENTITIES[entity].all_columns)
    records, issues = {}, []
    for page in bundle.pages(entity, **kwargs):
        for record in page.records:
            assert list(record) == [*columns, "payload"]
            records[record["sis_id"]] = tuple(record[c] for c in columns)
        issues += page.issues
    return records, issues


def assert_round_trip(bundle: CsvBundle, con) -> None:
    for entity in ENTITIES:
        records, issues = read(bundle, entity)
        assert issues == [], entity
        assert records == expected(con, entity), entity


@pytest.fixture(scope="module")
def folder(small_district: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_bundle(small_district, tmp_path_factory.mktemp("bundle") / "bundle")


def copy_of(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "copy"))


def set_manifest(bundle: Path, **values: str) -> None:
    path = bundle / "manifest.csv"
    lines = [line for line in path.read_text().splitlines() if line.split(",")[0] not in values]
    path.write_text("\n".join([*lines, *(f"{k},{v}" for k, v in values.items())]) + "\n")


def test_folder_round_trip_equals_the_store(folder, small_district):
    con = store.connect(small_district, read_only=True)
    bundle = CsvBundle(folder)
    assert bundle.entities() == list(ENTITIES)
    assert_round_trip(bundle, con)


def test_zip_round_trip_equals_the_store_also_with_the_bundle_in_a_folder_inside(
    folder, small_district, tmp_path
):
    con = store.connect(small_district, read_only=True)
    assert_round_trip(CsvBundle(export_bundle(small_district, tmp_path / "b.zip", zip=True)), con)
    nested = tmp_path / "nested.zip"
    with zipfile.ZipFile(nested, "w") as archive:
        for path in folder.iterdir():
            archive.write(path, f"district-export/{path.name}")
    records, _ = read(CsvBundle(nested), "enrollments")
    assert records == expected(con, "enrollments")


def test_payload_is_the_raw_row_with_every_column(folder):
    record = next(CsvBundle(folder).pages("students")).records[0]
    payload = json.loads(record["payload"])
    assert payload["sourcedId"] == record["sis_id"] and payload["role"] == "student"
    assert payload["metadata.skyward.gradYear"] == record["grad_year"]
    assert payload["password"] == ""


def test_pages_are_bounded_by_page_size(folder):
    sizes = [len(p.records) for p in CsvBundle(folder, page_size=100).pages("enrollments")]
    assert max(sizes) == 100 and len(sizes) > 10


def test_per_school_reading_keeps_only_that_schools_records(folder, small_district):
    con = store.connect(small_district, read_only=True)
    bundle = CsvBundle(folder)
    schools = bundle.schools()
    assert {s["org_type"] for s in schools} == {"school"} and len(schools) >= 2
    school = schools[0]["sis_id"]
    students, _ = read(bundle, "students", school=school)
    assert set(students) == {r[0] for r in con.execute(
        "SELECT sourced_id FROM users WHERE role = 'student' AND list_contains(org_ids, ?)", [school]).fetchall()}
    classes, _ = read(bundle, "classes", school=school)
    assert set(classes) == {r[0] for r in con.execute(
        "SELECT sourced_id FROM classes WHERE school_id = ?", [school]).fetchall()}
    with pytest.raises(ValueError, match="terms cannot be read per school"):
        next(bundle.pages("terms", school=school))


def test_without_the_relationships_extension_links_come_from_agent_ids(folder, small_district, tmp_path):
    bundle_path = copy_of(folder, tmp_path)
    (bundle_path / "skyward_relationships.csv").unlink()
    set_manifest(bundle_path, **{"file.skyward_relationships": "absent"})
    con = store.connect(small_district, read_only=True)
    links, issues = read(CsvBundle(bundle_path), "student_contacts")
    assert issues == []
    assert set(links) == {r[0] for r in con.execute(
        "SELECT student_id || '|' || contact_id FROM student_contacts").fetchall()}
    assert {record[5:] for record in links.values()} == {("guardian", None, None, None, None)}


def test_unlisted_relationships_file_that_is_present_is_still_used(folder, tmp_path):
    bundle_path = copy_of(folder, tmp_path)
    manifest = bundle_path / "manifest.csv"
    manifest.write_text("".join(l for l in manifest.read_text().splitlines(True)
                                if not l.startswith("file.skyward_relationships")))
    record = next(CsvBundle(bundle_path).pages("student_contacts")).records[0]
    assert record["relationship"] is not None and record["contact_order"] == "1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: (b / "manifest.csv").unlink(), "no manifest.csv"),
        (lambda b: set_manifest(b, **{"oneroster.version": "1.2"}), "oneroster.version '1.2'"),
        (lambda b: (b / "enrollments.csv").unlink(), "lists enrollments.csv as bulk, but the bundle has no such"),
        (lambda b: set_manifest(b, **{"file.users": "full"}), "file.users = 'full'; allowed: bulk, delta, absent"),
    ],
)
def test_manifest_problems_fail_opening_with_a_clear_message(folder, tmp_path, change, message):
    bundle_path = copy_of(folder, tmp_path)
    change(bundle_path)
    with pytest.raises(BundleError, match=message):
        CsvBundle(bundle_path)


def test_a_file_the_manifest_calls_absent_is_an_error_not_an_empty_snapshot(folder, tmp_path):
    bundle_path = copy_of(folder, tmp_path)
    set_manifest(bundle_path, **{"file.demographics": "absent"})
    bundle = CsvBundle(bundle_path)
    assert "demographics" not in bundle.entities()
    with pytest.raises(BundleError, match="does not list demographics.csv"):
        next(bundle.pages("demographics"))


def test_a_missing_required_header_fails_that_file_only(folder, tmp_path):
    bundle_path = copy_of(folder, tmp_path)
    courses = bundle_path / "courses.csv"
    courses.write_text(courses.read_text().replace(",orgSourcedId,", ",org,", 1))
    bundle = CsvBundle(bundle_path)
    with pytest.raises(BundleError, match="courses.csv lacks required columns orgSourcedId"):
        next(bundle.pages("courses"))
    assert sum(len(p.records) for p in bundle.pages("classes")) > 0


MANIFEST = "propertyName,value\nmanifest.version,1.0\noneroster.version,1.1\nfile.users,bulk\nfile.orgs,bulk\n"
USERS_HEADER = ("sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,"
                "familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password\n")


def user(sourced_id: str, role: str, given: str = "Ann", extra: str = "") -> str:
    return f"{sourced_id},active,,true,sch1,{role},,,{given},Lee,,,,,,,,{extra}\n"


def test_broken_rows_become_issues_with_file_line_and_reason_and_the_rest_is_read(tmp_path):
    (tmp_path / "manifest.csv").write_text(MANIFEST)
    (tmp_path / "orgs.csv").write_text("sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\n"
                                       "sch1,,,North,school,,\n")
    users = (
        "\ufeff" + USERS_HEADER                              # line 1 (with a byte order mark)
        + user("s1", "student", '"Multi\nline"')             # lines 2-3
        + user("s2", "student", extra=",surplus")            # line 4: one field too many
        + user("", "student")                                # line 5: no sourcedId
        + user("t1", "teacher", extra=",surplus")            # line 6: a broken teacher row
        + user("s3", "student")                              # line 7
    ).encode() + user("s4", "student", "B\xe9a").encode("latin-1") + user("s5", "", "Noel").encode()
    (tmp_path / "users.csv").write_bytes(users)
    bundle = CsvBundle(tmp_path)

    students, issues = read(bundle, "students")
    assert set(students) == {"s1", "s3"}
    assert students["s1"][4] == "Multi\nline"
    assert [(i.file, i.line, i.record_id) for i in issues] == [
        ("users.csv", 4, "s2"), ("users.csv", 5, None), ("users.csv", 8, "s4"), ("users.csv", 9, "s5")]
    assert issues[0].reason == "19 fields where the header has 18"
    assert issues[0].raw == user("s2", "student", extra=",surplus").rstrip("\n")
    assert issues[1].reason == "no sourcedId"
    assert issues[2].reason == "not valid UTF-8 text" and "B\ufffda" in issues[2].raw
    assert issues[3].reason == "no role"
    assert str(issues[0]) == "users.csv line 4: 19 fields where the header has 18"

    staff, staff_issues = read(bundle, "staff")
    assert staff == {} and [(i.line, i.record_id) for i in staff_issues] == [(6, "t1")]
    assert read(bundle, "contacts") == ({}, [])


def test_dirty_data_padded_ids_and_names_survive_the_round_trip_also_without_the_extension(tmp_path):
    path = tmp_path / "dirty.duckdb"
    generate_district(path, seed=3, students=300, dirty=DirtyData(**dict.fromkeys(DirtyData.model_fields, 0.05)))
    con = store.connect(path, read_only=True)
    assert con.execute("SELECT count(*) FROM users WHERE sourced_id <> trim(sourced_id)").fetchone()[0] > 0
    folder = export_bundle(con, tmp_path / "bundle")
    assert_round_trip(CsvBundle(folder), con)
    (folder / "skyward_relationships.csv").unlink()
    set_manifest(folder, **{"file.skyward_relationships": "absent"})
    links, _ = read(CsvBundle(folder), "student_contacts")
    assert set(links) == {r[0] for r in con.execute(
        "SELECT student_id || '|' || contact_id FROM student_contacts").fetchall()}


def test_hostile_values_survive_the_round_trip(district_copy, tmp_path):
    con = store.connect(district_copy)
    hostile = ['O\'Brien "The Rock", Jr.', "line one\nline two\r\nthree", "  padded  ", "Zoë 李 🚀 ñ", '""', ","]
    con.execute(
        """UPDATE users SET given_name = $names[1 + (seq % 6)], family_name = $names[1 + ((seq + 1) % 6)],
                            email = $names[1 + ((seq + 2) % 6)]
           WHERE seq % 7 = 0""",
        {"names": hostile},
    )
    con.execute("UPDATE users SET org_ids = list_append(org_ids, ' padded-id ') WHERE seq % 5 = 0")
    con.execute("UPDATE classes SET title = $t, location = $l WHERE seq % 3 = 0",
                {"t": hostile[0] + hostile[1], "l": hostile[3]})
    con.execute("UPDATE student_contacts SET relationship = $r WHERE contact_order = 1", {"r": hostile[1]})
    for zipped in (False, True):
        path = export_bundle(con, tmp_path / ("b.zip" if zipped else "b"), zip=zipped)
        assert_round_trip(CsvBundle(path), con)


def test_a_damaged_zip_member_fails_its_file_with_a_clear_error(folder, tmp_path):
    archive = tmp_path / "damaged.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as z:
        for path in folder.iterdir():
            z.write(path, path.name)
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as z:
        info = z.getinfo("enrollments.csv")
    middle = info.header_offset + 30 + len(info.filename) + info.file_size // 2
    data[middle] ^= 0xFF
    archive.write_bytes(bytes(data))
    bundle = CsvBundle(archive)
    with pytest.raises(BundleError, match="enrollments.csv could not be read to the end"):
        list(bundle.pages("enrollments"))
    assert sum(len(p.records) for p in bundle.pages("schools")) > 0
