"""Export a simulated district as a OneRoster 1.1 CSV bundle (a folder or a .zip).

Districts without API access hand over rosters as OneRoster CSV bundles; this writes the
district store as one, so the ``oneroster_csv`` source can be tested against the same truth as
the HTTP sources. Every file is streamed by DuckDB ``COPY (SELECT ...) TO`` straight from the
store, so a million-student district costs no Python memory; rows come in storage order, which
:func:`~.store.finalize` keeps in ``sourced_id`` order, so no sort is needed.

The bundle carries what the OneRoster 1.1 API serves, in the CSV binding's shape:

- the spec's files and column headers, in the spec's order; lists are comma-separated inside
  one (quoted) field, ``userIds`` is ``{stateId:XYZ}``, booleans ``true``/``false``, dates
  ``YYYY-MM-DD``, ``dateLastModified`` ISO 8601 UTC with milliseconds;
- ``status`` and ``dateLastModified`` are *filled* although the spec leaves them blank in bulk
  files: Skyward shows deletions in two steps (``tobedeleted`` first), and readers need the
  dates for watermarks. Readers of this bundle accept blank values too;
- 1.1 has no ``counselor`` or ``principal`` role: both are written as ``administrator``;
- Skyward's vendor extensions are extra ``metadata.skyward.*`` columns to the right of the
  spec's, as the CSV binding allows: those the API serves in ``metadata`` (``nativeId``; on
  orgs ``schoolLevel``, ``gradeLow``, ``gradeHigh``; on students ``stateId``, ``gradYear``),
  and on users what 1.2 has and 1.1 lacks (``primaryOrgSourcedId``, ``preferredFirstName``)
  plus students' ``birthDate``;
- emergency-contact details, which OneRoster CSV has no place for, go to the extension file
  ``skyward_relationships.csv`` (one row per student-contact link), listed in the manifest as
  ``file.skyward_relationships``. A link has no status of its own in the store (it is removed,
  not marked): its ``status`` is its contact's, as the API client reads it.
"""

from __future__ import annotations

import csv
import tempfile
import zipfile
from pathlib import Path

import duckdb

from passport_pipeline.simulator import store

_TIMESTAMP = "strftime(date_last_modified, '%Y-%m-%dT%H:%M:%S.%gZ')"
_COMMON = f'sourced_id AS "sourcedId", status, {_TIMESTAMP} AS "dateLastModified"'
_NATIVE_ID = 'CAST(native_id AS VARCHAR) AS "metadata.skyward.nativeId"'


def _joined(column: str) -> str:
    """A list column as one comma-separated field (blank when the list is empty)."""
    return f"nullif(array_to_string({column}, ','), '')"


FILES: dict[str, str] = {
    "orgs": f"""
        SELECT {_COMMON}, name, type, identifier, parent_id AS "parentSourcedId", {_NATIVE_ID},
               school_level AS "metadata.skyward.schoolLevel",
               grade_low AS "metadata.skyward.gradeLow", grade_high AS "metadata.skyward.gradeHigh"
        FROM orgs""",
    "academicSessions": f"""
        SELECT {_COMMON}, title, type, CAST(start_date AS VARCHAR) AS "startDate",
               CAST(end_date AS VARCHAR) AS "endDate", parent_id AS "parentSourcedId",
               CAST(school_year AS VARCHAR) AS "schoolYear", {_NATIVE_ID}
        FROM academic_sessions""",
    "courses": f"""
        SELECT {_COMMON}, school_year_id AS "schoolYearSourcedId", title, course_code AS "courseCode",
               {_joined('grades')} AS grades, org_id AS "orgSourcedId", {_joined('subjects')} AS subjects,
               {_joined('subject_codes')} AS "subjectCodes", {_NATIVE_ID}
        FROM courses""",
    "classes": f"""
        SELECT {_COMMON}, title, {_joined('grades')} AS grades, course_id AS "courseSourcedId",
               class_code AS "classCode", class_type AS "classType", location,
               school_id AS "schoolSourcedId", {_joined('term_ids')} AS "termSourcedIds",
               {_joined('subjects')} AS subjects, NULL AS "subjectCodes", {_joined('periods')} AS periods,
               {_NATIVE_ID}
        FROM classes""",
    "users": f"""
        SELECT {_COMMON}, CAST(enabled_user AS VARCHAR) AS "enabledUser",
               {_joined('org_ids')} AS "orgSourcedIds",
               CASE WHEN role IN ('counselor', 'principal') THEN 'administrator' ELSE role END AS role,
               username, CASE WHEN state_id IS NOT NULL THEN '{{stateId:' || state_id || '}}' END AS "userIds",
               given_name AS "givenName", family_name AS "familyName", middle_name AS "middleName",
               identifier, email, sms, phone, {_joined('agent_ids')} AS "agentSourcedIds",
               {_joined('grades')} AS grades, NULL AS password, {_NATIVE_ID},
               CASE WHEN role = 'student' THEN state_id END AS "metadata.skyward.stateId",
               CASE WHEN role = 'student' THEN CAST(grad_year AS VARCHAR) END AS "metadata.skyward.gradYear",
               CASE WHEN role = 'student' THEN CAST(birth_date AS VARCHAR) END AS "metadata.skyward.birthDate",
               primary_org_id AS "metadata.skyward.primaryOrgSourcedId",
               preferred_first_name AS "metadata.skyward.preferredFirstName"
        FROM users""",
    "enrollments": f"""
        SELECT {_COMMON}, class_id AS "classSourcedId", school_id AS "schoolSourcedId",
               user_id AS "userSourcedId", role, CAST("primary" AS VARCHAR) AS "primary",
               CAST(begin_date AS VARCHAR) AS "beginDate", CAST(end_date AS VARCHAR) AS "endDate"
        FROM enrollments""",
    "demographics": f"""
        SELECT {_COMMON}, CAST(birth_date AS VARCHAR) AS "birthDate", sex,
               CAST(american_indian_or_alaska_native AS VARCHAR) AS "americanIndianOrAlaskaNative",
               CAST(asian AS VARCHAR) AS asian,
               CAST(black_or_african_american AS VARCHAR) AS "blackOrAfricanAmerican",
               CAST(native_hawaiian_or_other_pacific_islander AS VARCHAR)
                   AS "nativeHawaiianOrOtherPacificIslander",
               CAST(white AS VARCHAR) AS white,
               CAST(demographic_race_two_or_more_races AS VARCHAR) AS "demographicRaceTwoOrMoreRaces",
               CAST(hispanic_or_latino_ethnicity AS VARCHAR) AS "hispanicOrLatinoEthnicity",
               country_of_birth_code AS "countryOfBirthCode",
               state_of_birth_abbreviation AS "stateOfBirthAbbreviation",
               city_of_birth AS "cityOfBirth", public_school_residence_status AS "publicSchoolResidenceStatus"
        FROM demographics""",
    "skyward_relationships": """
        SELECT l.student_id AS "studentSourcedId", l.contact_id AS "contactSourcedId",
               coalesce(c.status, 'active') AS status,
               strftime(l.date_last_modified, '%Y-%m-%dT%H:%M:%S.%gZ') AS "dateLastModified",
               l.relationship, CAST(l.emergency_contact AS VARCHAR) AS "emergencyContact",
               CAST(l.custodial AS VARCHAR) AS custodial, CAST(l.pickup_allowed AS VARCHAR) AS "pickupAllowed",
               CAST(l.contact_order AS VARCHAR) AS "contactOrder"
        FROM student_contacts l LEFT JOIN users c ON c.sourced_id = l.contact_id
        ORDER BY l.student_id, l.contact_order, l.contact_id""",
}
"""Bundle file (without ``.csv``) -> the query that writes it, columns in the spec's order."""

ABSENT_FILES = ("categories", "classResources", "courseResources", "lineItems", "resources", "results")
"""OneRoster 1.1 files about gradebooks and resources, which a roster export does not carry."""


def export_bundle(
    store_path_or_con: str | Path | duckdb.DuckDBPyConnection, dest: str | Path, *, zip: bool = False
) -> Path:
    """Write the district as a OneRoster 1.1 CSV bundle; return the folder or the ``.zip`` file.

    ``dest`` is the folder to write into (created when missing; existing bundle files are
    replaced), or with ``zip=True`` the path of the zip file to create.
    """
    dest = Path(dest)
    if isinstance(store_path_or_con, duckdb.DuckDBPyConnection):
        return _export(store_path_or_con, dest, zip)
    con = store.connect(store_path_or_con, read_only=True)
    try:
        return _export(con, dest, zip)
    finally:
        con.close()


def _export(con: duckdb.DuckDBPyConnection, dest: Path, zip: bool) -> Path:
    if not zip:
        _write_folder(con, dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".bundle-") as folder:
        _write_folder(con, Path(folder))
        partial = dest.with_name(dest.name + ".partial")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in ["manifest", *FILES]:
                archive.write(Path(folder) / f"{name}.csv", f"{name}.csv")
        partial.replace(dest)
    return dest


def _write_folder(con: duckdb.DuckDBPyConnection, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, query in FILES.items():
        con.execute(f"COPY ({query}) TO $path (HEADER, DELIMITER ',')", {"path": str(folder / f"{name}.csv")})
    _write_manifest(con, folder / "manifest.csv")


def _write_manifest(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    district = con.execute(
        "SELECT coalesce(identifier, sourced_id) FROM orgs WHERE type = 'district' ORDER BY sourced_id LIMIT 1"
    ).fetchone()
    files = {name: "bulk" for name in FILES} | {name: "absent" for name in ABSENT_FILES}
    rows = [
        ("manifest.version", "1.0"),
        ("oneroster.version", "1.1"),
        *((f"file.{name}", files[name]) for name in sorted(files, key=str.lower)),
        ("source.systemName", "Skyward"),
        ("source.systemCode", district[0] if district else "skyward"),
    ]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(("propertyName", "value"))
        writer.writerows(rows)

