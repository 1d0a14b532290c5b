"""The ``oneroster_csv`` source: 1.1 and 1.2 bundles landed by DuckDB equal the store and the API."""

import csv
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from passport_pipeline.config import CsvBundleSource, OneRosterSource
from passport_pipeline.entities import ENTITIES
from passport_pipeline.extract import extract_source
from passport_pipeline.simulator import store
from passport_pipeline.simulator.csv_bundle import export_bundle
from passport_pipeline.simulator.dirty import DirtyData
from passport_pipeline.simulator.district import generate_district
from passport_pipeline.simulator.server import running_simulator
from passport_pipeline.sources.csv_bundle import CARRIED, BundleError, CsvBundle
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.normalize_sql_oneroster import ONEROSTER_SQL
from passport_pipeline.warehouse.raw import raw_table

DLM = "strftime(date_last_modified, '%Y-%m-%dT%H:%M:%S.%gZ')"
COMMON = f"sourced_id, status, {DLM}"
PERSON = ("username, given_name, family_name, middle_name, preferred_first_name, identifier, state_id, "
          "email, phone, sms, CAST(enabled_user AS VARCHAR)")
FLAGS = ("american_indian_or_alaska_native, asian, black_or_african_american, "
         "native_hawaiian_or_other_pacific_islander, white, demographic_race_two_or_more_races, "
         "hispanic_or_latino_ethnicity")


def expected_sql(version: str) -> dict[str, str]:
    """Per entity, the store's rows as a bundle of ``version`` should land them (registry order).

    1.1 has no counselor or principal role (both are administrators); 1.2 carries students'
    birth dates only in demographics.csv, as its API does."""
    administrators = "CASE WHEN role IN ('counselor', 'principal') THEN 'administrator' ELSE role END"
    role = administrators if version == "1.1" else "role"
    birth = "CAST(birth_date AS VARCHAR)" if version == "1.1" else "NULL"
    return {
        "schools": f"SELECT {COMMON}, name, identifier, type, parent_id FROM orgs",
        "terms": f"""SELECT {COMMON}, title, type, CAST(start_date AS VARCHAR), CAST(end_date AS VARCHAR),
                            parent_id, CAST(school_year AS VARCHAR) FROM academic_sessions""",
        "courses": f"""SELECT {COMMON}, title, course_code, coalesce(grades, []), coalesce(subjects, []),
                              org_id, school_year_id FROM courses""",
        "classes": f"""SELECT {COMMON}, title, class_code, class_type, location, coalesce(grades, []),
                              coalesce(subjects, []), coalesce(periods, []), course_id, school_id, term_ids
                       FROM classes""",
        "students": f"""SELECT {COMMON}, {PERSON}, coalesce(grades, []), org_ids, primary_org_id,
                               CAST(grad_year AS VARCHAR), {birth}
                        FROM users WHERE role = 'student'""",
        "staff": f"""SELECT {COMMON}, {PERSON}, {role}, org_ids, primary_org_id FROM users
                     WHERE role NOT IN ('student', 'guardian', 'parent', 'relative')""",
        "contacts": f"SELECT {COMMON}, {PERSON}, role FROM users WHERE role IN ('guardian', 'parent', 'relative')",
        "student_contacts": f"""SELECT student_id || '|' || contact_id, u.status, strftime(u.date_last_modified,
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


def expected(con, entity: str, version: str = "1.1") -> dict[str, tuple]:
    return {row[0]: row for row in con.execute(expected_sql(version)[entity]).fetchall()}


def extract(warehouse: Warehouse, bundle: Path, name: str = "csv"):
    return extract_source(warehouse, CsvBundleSource(name=name, path=bundle), run_id="r1")


def landed(warehouse: Warehouse, entity: str, source: str = "csv") -> dict[str, tuple]:
    columns = ", ".join(f'"{c}"' for c in ENTITIES[entity].all_columns)
    rows = warehouse.reading().execute(f"SELECT {columns} FROM {raw_table(source, entity)}").fetchall()
    return {row[0]: row for row in rows}


def assert_round_trip(warehouse: Warehouse, con, version: str = "1.1", source: str = "csv") -> None:
    for entity in ENTITIES:
        assert landed(warehouse, entity, source) == expected(con, entity, version), entity
    assert warehouse.reading().execute("SELECT count(*) FROM sync.issues").fetchone() == (0,)


@pytest.fixture
def warehouse(tmp_path):
    with Warehouse(tmp_path / "warehouse.duckdb") as wh:
        yield wh


@pytest.fixture(scope="module")
def folder(small_district: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_bundle(small_district, tmp_path_factory.mktemp("bundle") / "bundle")


def copy_of(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "copy"))


def set_manifest(bundle: Path, **values: str) -> None:
    path = bundle / "manifest.csv"
    lines = [line for line in path.read_text().splitlines() if line.split(",")[0] not in values]
    path.write_text("\n".join([*lines, *(f"{k},{v}" for k, v in values.items())]) + "\n")


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_a_bundle_of_either_version_lands_the_store(small_district, warehouse, tmp_path, version):
    bundle = export_bundle(small_district, tmp_path / "bundle", version=version)
    result = extract(warehouse, bundle)
    assert not result.failed and CsvBundle(bundle).entities() == list(ENTITIES)
    assert_round_trip(warehouse, store.connect(small_district, read_only=True), version)
    assert warehouse.reading().execute("SELECT count(*) FROM sync.watermarks").fetchone() == (0,), \
        "a bundle is read whole: no later read starts from a watermark"


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_a_bundle_lands_the_records_the_api_of_its_version_serves(small_district, warehouse, tmp_path, version):
    """Failure 7: one field map — a bundle and the API of the same district land the same records
    (1.1's API has no place for the preferred name, primary school and birth date that Skyward's
    1.1 bundle carries in metadata columns)."""
    extract(warehouse, export_bundle(small_district, tmp_path / "bundle", version=version))
    with running_simulator(small_district, read_only=True) as sim:
        api = OneRosterSource(name="api", base_url=sim.base_url, token_url=sim.token_url, oneroster_version=version,
                              credentials={"client_id_env": "SIM_ID", "client_secret_env": "SIM_SECRET"})
        result = extract_source(warehouse, api, run_id="r2",
                                env={"SIM_ID": "passport-demo", "SIM_SECRET": "passport-demo-secret"})
    assert not result.failed
    only_in_bundle = {"preferred_first_name", "primary_school_sis_id", "birth_date"} if version == "1.1" else set()
    for entity in ENTITIES:
        kept = [i for i, column in enumerate(ENTITIES[entity].all_columns) if column not in only_in_bundle]
        def project(rows):
            return {key: tuple(row[i] for i in kept) for key, row in rows.items()}
        assert project(landed(warehouse, entity)) == project(landed(warehouse, entity, "api")), entity


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_every_column_lands_once_as_its_canonical_attribute_or_in_the_payload(small_district, warehouse, tmp_path,
                                                                               version):
    """A row's payload keeps exactly the columns no canonical column carries, as sent (header ->
    text, ``metadata.*`` under ``metadata``); each carried column is in its canonical column as sent
    (a comma list as the list). Nothing is stored twice, nothing is lost."""
    bundle = export_bundle(small_district, tmp_path / "bundle", version=version)
    extract(warehouse, bundle)
    read = warehouse.reading()
    for kind, mapping in ONEROSTER_SQL.items():
        entities = [entity for entity, rows in mapping.rows.items() if rows.payload == "record"]
        stored = {}
        for entity in entities:
            columns = ", ".join(f'"{c}"' for c in ENTITIES[entity].all_columns)
            for *row, payload in read.execute(f"SELECT {columns}, payload FROM {raw_table('csv', entity)}").fetchall():
                stored[row[0]] = (entity, dict(zip(ENTITIES[entity].all_columns, row)), json.loads(payload))
        with (bundle / f"{kind}.csv").open(newline="") as file:
            rows = list(csv.DictReader(file))
        assert len(rows) == len(stored), kind
        for sent in rows:
            entity, canonical, payload = stored[sent["sourcedId"]]
            metadata = payload.pop("metadata", {})
            kept = {**payload, **{f"metadata.{name}": value for name, value in metadata.items()}}
            carried = CARRIED[entity]
            assert kept == {h: v or None for h, v in sent.items() if h.lower() not in carried and h != "password"}
            for header, column in carried.items():
                value = next(v for h, v in sent.items() if h.lower() == header)
                got = canonical[column]
                assert ((",".join(got) or None) if isinstance(got, list) else got) == (value or None), header
    assert read.execute(f"SELECT DISTINCT payload::VARCHAR FROM {raw_table('csv', 'student_contacts')}").fetchall() == [
        ("{}",)]


def test_a_1p2_bundle_lands_what_the_1p1_bundle_does_but_its_role_names(small_district, warehouse, tmp_path):
    extract(warehouse, export_bundle(small_district, tmp_path / "b11", version="1.1"), "v11")
    extract(warehouse, export_bundle(small_district, tmp_path / "b12", version="1.2"), "v12")
    for entity in ENTITIES:
        old, new = landed(warehouse, entity, "v11"), landed(warehouse, entity, "v12")
        assert old.keys() == new.keys(), entity
        differ = {column for key in old for column, a, b in zip(ENTITIES[entity].all_columns, old[key], new[key])
                  if a != b}
        assert differ <= {"role", "birth_date"}, entity


def test_zip_bundles_land_also_with_the_bundle_in_a_folder_inside(folder, small_district, warehouse, tmp_path):
    con = store.connect(small_district, read_only=True)
    extract(warehouse, export_bundle(small_district, tmp_path / "b.zip", zip=True, version="1.2"))
    assert_round_trip(warehouse, con, "1.2")
    nested = tmp_path / "nested.zip"
    with zipfile.ZipFile(nested, "w") as archive:
        for path in folder.iterdir():
            archive.write(path, f"district-export/{path.name}")
    extract(warehouse, nested, "nested")
    assert landed(warehouse, "enrollments", "nested") == expected(con, "enrollments")


def test_an_absent_file_is_not_provided_and_what_names_it_still_lands(small_district, warehouse, tmp_path):
    """Failure 7: courses absent -> the courses entity is recorded absent (not failed), and classes
    and enrollments, which name courses, land in full."""
    bundle = export_bundle(small_district, tmp_path / "bundle", version="1.2", absent=("courses",))
    assert not (bundle / "courses.csv").exists()
    assert [read.name for read in CsvBundle(bundle).reads() if read.absent] == ["courses"]
    result = extract(warehouse, bundle)
    assert not result.failed and result.entities["courses"].absent
    con = store.connect(small_district, read_only=True)
    for entity in ("classes", "enrollments", "students"):
        assert landed(warehouse, entity) == expected(con, entity, "1.2"), entity
    assert warehouse.reading().execute(
        "SELECT scope, status, error, rows FROM sync.extractions WHERE entity = 'courses'").fetchall() == [
        ("*", "absent", None, 0)]


def test_without_the_relationships_extension_links_come_from_agent_ids(folder, small_district, warehouse, tmp_path):
    bundle = copy_of(folder, tmp_path)
    (bundle / "skyward_relationships.csv").unlink()
    set_manifest(bundle, **{"file.skyward_relationships": "absent"})
    extract(warehouse, bundle)
    links = landed(warehouse, "student_contacts")
    con = store.connect(small_district, read_only=True)
    assert set(links) == {r[0] for r in con.execute(
        "SELECT student_id || '|' || contact_id FROM student_contacts").fetchall()}
    assert {record[5:] for record in links.values()} == {("guardian", None, None, None, None)}


def test_an_unlisted_relationships_file_that_is_present_is_still_read(folder, warehouse, tmp_path):
    bundle = copy_of(folder, tmp_path)
    manifest = bundle / "manifest.csv"
    manifest.write_text("".join(line for line in manifest.read_text().splitlines(True)
                                if not line.startswith("file.skyward_relationships")))
    extract(warehouse, bundle)
    assert {row[9] for row in landed(warehouse, "student_contacts").values()} >= {"1", "2"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: (b / "manifest.csv").unlink(), "no manifest.csv"),
        (lambda b: set_manifest(b, **{"oneroster.version": "1.0"}),
         "oneroster.version '1.0'; this source reads OneRoster 1.1 and 1.2 CSV bundles"),
        (lambda b: set_manifest(b, **{"file.users": "full"}), "file.users = 'full'; allowed: bulk, delta, absent"),
    ],
)
def test_manifest_problems_fail_opening_with_one_clear_line(folder, tmp_path, change, message):
    bundle = copy_of(folder, tmp_path)
    change(bundle)
    with pytest.raises(BundleError, match=message) as raised:
        CsvBundle(bundle)
    assert "\n" not in str(raised.value)


def test_each_file_says_whether_it_can_be_read_and_only_an_unreadable_read_fails(folder, warehouse, tmp_path):
    bundle = copy_of(folder, tmp_path)
    (bundle / "enrollments.csv").unlink()
    courses = bundle / "courses.csv"
    courses.write_text(courses.read_text().replace("sourcedId,", "id,", 1))
    lines = {file.name: str(file) for file in CsvBundle(bundle).files()}
    assert lines["enrollments.csv"] == ("enrollments.csv (bulk): cannot be read: the manifest lists it as bulk, "
                                        "but the bundle has no such file")
    assert lines["courses.csv"] == "courses.csv (bulk): cannot be read: its header has no sourcedId column"
    assert lines["classes.csv"] == "classes.csv (bulk): readable; lands classes"
    assert lines["results.csv"] == "results.csv (absent): not provided"
    result = extract(warehouse, bundle)
    assert set(result.failed) == {"enrollments", "courses"}
    assert "no sourcedId column" in result.failed["courses"]["*"]
    assert len(landed(warehouse, "classes")) > 0 and not result.entities["classes"].failed


def test_a_1p2_bundle_without_roles_cannot_tell_users_apart_and_says_so(small_district, warehouse, tmp_path):
    bundle = export_bundle(small_district, tmp_path / "bundle", version="1.2", absent=("roles",))
    users = next(file for file in CsvBundle(bundle).files() if file.name == "users.csv")
    assert not users.readable and "roles.csv" in users.problem
    result = extract(warehouse, bundle)
    assert set(result.failed) == {"students", "staff", "contacts", "student_contacts"}
    assert not result.failed.get("enrollments")


def test_dirty_data_padded_ids_and_names_survive_also_without_the_extension(warehouse, tmp_path):
    path = tmp_path / "dirty.duckdb"
    generate_district(path, seed=3, students=300, dirty=DirtyData(**dict.fromkeys(DirtyData.model_fields, 0.05)))
    con = store.connect(path, read_only=True)
    assert con.execute("SELECT count(*) FROM users WHERE sourced_id <> trim(sourced_id)").fetchone()[0] > 0
    bundle = export_bundle(con, tmp_path / "bundle")
    extract(warehouse, bundle)
    assert_round_trip(warehouse, con)
    (bundle / "skyward_relationships.csv").unlink()
    set_manifest(bundle, **{"file.skyward_relationships": "absent"})
    extract(warehouse, bundle, "noext")
    assert set(landed(warehouse, "student_contacts", "noext")) == {r[0] for r in con.execute(
        "SELECT student_id || '|' || contact_id FROM student_contacts").fetchall()}


def test_hostile_values_survive_the_round_trip(district_copy, warehouse, tmp_path):
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
    con.execute("UPDATE courses SET subjects = ['Physical, Health, and Safety Education', 'Math'] WHERE seq % 2 = 0")
    con.execute("UPDATE student_contacts SET relationship = $r WHERE contact_order = 1", {"r": hostile[1]})
    for name, zipped, version in (("folder", False, "1.1"), ("zipped", True, "1.2")):
        extract(warehouse, export_bundle(con, tmp_path / f"{name}{'.zip' if zipped else ''}", zip=zipped,
                                         version=version), name)
        assert_round_trip(warehouse, con, version, name)


def test_a_damaged_zip_member_fails_its_read_with_a_clear_error(folder, warehouse, tmp_path):
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
    result = extract(warehouse, archive)
    assert set(result.failed) == {"enrollments"}
    assert "enrollments.csv could not be read to the end" in result.failed["enrollments"]["*"]
    assert "export it again" in result.failed["enrollments"]["*"]
    assert len(landed(warehouse, "schools")) > 0


def test_a_delta_file_upserts_what_it_holds_and_never_replaces_the_rest(small_district, warehouse, tmp_path):
    full = export_bundle(small_district, tmp_path / "full")
    assert not extract(warehouse, full).failed
    before = landed(warehouse, "enrollments")
    delta = export_bundle(small_district, tmp_path / "delta")
    lines = (delta / "enrollments.csv").read_text().splitlines()
    changed = lines[1].replace(",student,", ",teacher,")
    (delta / "enrollments.csv").write_text("\n".join([lines[0], changed]) + "\n")
    set_manifest(delta, **{"file.enrollments": "delta"})
    result = extract_source(warehouse, CsvBundleSource(name="csv", path=delta), run_id="r2")
    assert not result.failed
    after = landed(warehouse, "enrollments")
    assert after.keys() == before.keys(), "a delta file holds changes, not the whole roster"
    (sis_id,) = [key for key in after if after[key] != before[key]]
    assert after[sis_id][list(ENTITIES["enrollments"].all_columns).index("role")] == "teacher"
    assert warehouse.reading().execute(
        "SELECT DISTINCT mode FROM sync.extractions WHERE run_id = 'r2' AND entity = 'enrollments'").fetchall() \
        == [("delta",)]
