"""Exporting a district store as a OneRoster 1.1 CSV bundle: files, headers, manifest, values."""

import csv
import zipfile
from pathlib import Path

import pytest

from passport_pipeline.simulator import store
from passport_pipeline.simulator.csv_bundle import FILES, export_bundle
from passport_pipeline.sources.csv_bundle import SPEC_HEADERS


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
