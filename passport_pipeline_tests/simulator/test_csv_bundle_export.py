"""Exporting a district store as a OneRoster 1.1 or 1.2 CSV bundle: files, headers, manifest, values."""

import csv
import zipfile
from pathlib import Path

import pytest

from passport_pipeline.simulator import store
from passport_pipeline.simulator.csv_bundle import FILES, export_bundle

SPEC_HEADERS: dict[str, tuple[str, ...]] = {
    "orgs": ("sourcedId", "status", "dateLastModified", "name", "type", "identifier", "parentSourcedId"),
    "academicSessions": ("sourcedId", "status", "dateLastModified", "title", "type", "startDate",
                         "endDate", "parentSourcedId", "schoolYear"),
    "courses": ("sourcedId", "status", "dateLastModified", "schoolYearSourcedId", "title", "courseCode",
                "grades", "orgSourcedId", "subjects", "subjectCodes"),
    "classes": ("sourcedId", "status", "dateLastModified", "title", "grades", "courseSourcedId",
                "classCode", "classType", "location", "schoolSourcedId", "termSourcedIds", "subjects",
                "subjectCodes", "periods"),
    "users": ("sourcedId", "status", "dateLastModified", "enabledUser", "orgSourcedIds", "role",
              "username", "userIds", "givenName", "familyName", "middleName", "identifier", "email",
              "sms", "phone", "agentSourcedIds", "grades", "password"),
    "enrollments": ("sourcedId", "status", "dateLastModified", "classSourcedId", "schoolSourcedId",
                    "userSourcedId", "role", "primary", "beginDate", "endDate"),
    "demographics": ("sourcedId", "status", "dateLastModified", "birthDate", "sex",
                     "americanIndianOrAlaskaNative", "asian", "blackOrAfricanAmerican",
                     "nativeHawaiianOrOtherPacificIslander", "white", "demographicRaceTwoOrMoreRaces",
                     "hispanicOrLatinoEthnicity", "countryOfBirthCode", "stateOfBirthAbbreviation",
                     "cityOfBirth", "publicSchoolResidenceStatus"),
    "skyward_relationships": ("studentSourcedId", "contactSourcedId", "status", "dateLastModified",
                              "relationship", "emergencyContact", "custodial", "pickupAllowed", "contactOrder"),
}
"""The OneRoster 1.1 CSV binding's headers, in its order (and our extension's): what the export must write."""
SPEC_HEADERS_V1P2 = {
    **SPEC_HEADERS,
    "users": ("sourcedId", "status", "dateLastModified", "enabledUser", "username", "userIds", "givenName",
              "familyName", "middleName", "identifier", "email", "sms", "phone", "agentSourcedIds", "grades",
              "password", "userMasterIdentifier", "resourceSourcedIds", "preferredGivenName",
              "preferredMiddleName", "preferredFamilyName", "primaryOrgSourcedId", "pronouns"),
    "roles": ("sourcedId", "status", "dateLastModified", "userSourcedId", "roleType", "role", "beginDate",
              "endDate", "orgSourcedId", "userProfileSourcedId"),
}
"""The 1.2 binding: users.csv without role and orgSourcedIds, roles.csv (other files as in 1.1)."""


@pytest.fixture(scope="module")
def bundle(small_district: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_bundle(small_district, tmp_path_factory.mktemp("export") / "bundle")


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as stream:
        return next(csv.reader(stream))


@pytest.mark.parametrize("name", sorted(SPEC_HEADERS))
def test_every_file_has_the_spec_columns_in_order_then_only_metadata_extensions(bundle, name):
    columns = header(bundle / f"{name}.csv")
    spec = list(SPEC_HEADERS[name])
    assert columns[: len(spec)] == spec
    assert all(c.startswith("metadata.skyward.") for c in columns[len(spec):])


def test_manifest_lists_every_written_file_as_bulk_and_the_rest_as_absent(bundle):
    manifest = {r["propertyName"]: r["value"] for r in rows(bundle / "manifest.csv")}
    assert manifest["manifest.version"] == "1.0"
    assert manifest["oneroster.version"] == "1.1"
    assert {k[5:] for k, v in manifest.items() if k.startswith("file.") and v == "bulk"} == set(FILES)
    assert manifest["file.results"] == manifest["file.lineItems"] == "absent"
    assert manifest["source.systemName"] == "Skyward"


def test_row_counts_equal_the_store(bundle, small_district):
    con = store.connect(small_district, read_only=True)
    for name, table in [("orgs", "orgs"), ("academicSessions", "academic_sessions"), ("courses", "courses"),
                        ("classes", "classes"), ("users", "users"), ("enrollments", "enrollments"),
                        ("demographics", "demographics"), ("skyward_relationships", "student_contacts")]:
        (expected,) = con.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert len(rows(bundle / f"{name}.csv")) == expected, name


def test_values_use_the_csv_binding_formats(bundle, small_district):
    con = store.connect(small_district, read_only=True)
    users = {r["sourcedId"]: r for r in rows(bundle / "users.csv")}
    student, state_id, orgs, agents, dlm = con.execute(
        """SELECT sourced_id, state_id, array_to_string(org_ids, ','), array_to_string(agent_ids, ','),
                  strftime(date_last_modified, '%Y-%m-%dT%H:%M:%S.%gZ')
           FROM users WHERE role = 'student' AND len(agent_ids) > 1 LIMIT 1"""
    ).fetchone()
    row = users[student]
    assert row["userIds"] == f"{{stateId:{state_id}}}"
    assert row["orgSourcedIds"] == orgs and row["agentSourcedIds"] == agents and "," in agents
    assert row["status"] == "active" and row["dateLastModified"] == dlm
    assert row["enabledUser"] in ("true", "false")
    (counselor,) = con.execute("SELECT sourced_id FROM users WHERE role = 'counselor' LIMIT 1").fetchone()
    assert users[counselor]["role"] == "administrator"
    klass, grades = con.execute(
        "SELECT sourced_id, array_to_string(grades, ',') FROM classes WHERE len(grades) > 1 LIMIT 1"
    ).fetchone()
    assert {r["sourcedId"]: r for r in rows(bundle / "classes.csv")}[klass]["grades"] == grades
    enrollment = rows(bundle / "enrollments.csv")[0]
    assert enrollment["primary"] in ("true", "false")
    assert len(enrollment["beginDate"]) == 10 and enrollment["beginDate"][4] == "-"


def test_zip_holds_the_same_files_as_the_folder(bundle, small_district, tmp_path):
    archive = export_bundle(small_district, tmp_path / "bundle.zip", zip=True)
    with zipfile.ZipFile(archive) as z:
        assert sorted(z.namelist()) == sorted(p.name for p in bundle.iterdir())
        assert z.read("users.csv") == (bundle / "users.csv").read_bytes()
    assert not list(tmp_path.glob(".bundle-*")) and not list(tmp_path.glob("*.partial"))


def test_export_accepts_an_open_connection_and_a_tobedeleted_row_keeps_its_status(district_copy, tmp_path):
    con = store.connect(district_copy)
    con.execute("UPDATE users SET status = 'tobedeleted', deleted_on = DATE '2026-10-01' "
                "WHERE sourced_id = (SELECT min(sourced_id) FROM users WHERE role = 'teacher')")
    (teacher,) = con.execute("SELECT sourced_id FROM users WHERE status = 'tobedeleted'").fetchone()
    folder = export_bundle(con, tmp_path / "bundle")
    assert {r["sourcedId"]: r["status"] for r in rows(folder / "users.csv")}[teacher] == "tobedeleted"


@pytest.fixture(scope="module")
def bundle_v1p2(small_district: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_bundle(small_district, tmp_path_factory.mktemp("export") / "bundle", version="1.2")


@pytest.mark.parametrize("name", sorted(SPEC_HEADERS_V1P2))
def test_a_1p2_bundle_has_the_1p2_columns_in_order_then_only_metadata_extensions(bundle_v1p2, name):
    columns = header(bundle_v1p2 / f"{name}.csv")
    spec = list(SPEC_HEADERS_V1P2[name])
    assert columns[: len(spec)] == spec
    assert all(c.startswith("metadata.skyward.") for c in columns[len(spec):])


def test_a_1p2_bundle_gives_each_user_a_role_per_school_the_primary_one_marked(bundle_v1p2, small_district):
    con = store.connect(small_district, read_only=True)
    manifest = {r["propertyName"]: r["value"] for r in rows(bundle_v1p2 / "manifest.csv")}
    assert manifest["oneroster.version"] == "1.2" and manifest["file.roles"] == "bulk"
    assert manifest["file.userProfiles"] == "absent" and not (bundle_v1p2 / "userProfiles.csv").exists()
    roles = rows(bundle_v1p2 / "roles.csv")
    assert len(roles) == con.execute("SELECT sum(len(org_ids)) FROM users").fetchone()[0]
    user, orgs, primary, role = con.execute(
        "SELECT sourced_id, org_ids, primary_org_id, role FROM users WHERE role = 'counselor' LIMIT 1").fetchone()
    mine = [r for r in roles if r["userSourcedId"] == user]
    assert [r["orgSourcedId"] for r in mine] == orgs and {r["role"] for r in mine} == {role}
    assert [r["orgSourcedId"] for r in mine if r["roleType"] == "primary"] == [primary]
    users = {r["sourcedId"]: r for r in rows(bundle_v1p2 / "users.csv")}
    assert users[user]["primaryOrgSourcedId"] == primary and users[user]["password"] == ""


def test_files_marked_absent_are_left_out_and_the_manifest_says_so(small_district, tmp_path):
    folder = export_bundle(small_district, tmp_path / "bundle", version="1.2", absent=("courses", "demographics"))
    manifest = {r["propertyName"]: r["value"] for r in rows(folder / "manifest.csv")}
    assert manifest["file.courses"] == manifest["file.demographics"] == "absent"
    assert not (folder / "courses.csv").exists() and (folder / "classes.csv").exists()
    with pytest.raises(ValueError, match="no such bundle file to leave out: lessons"):
        export_bundle(small_district, tmp_path / "other", absent=("lessons",))
