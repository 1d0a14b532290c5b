"""Export a simulated district as a OneRoster 1.1 or 1.2 CSV bundle (a folder or a .zip).

Districts without API access hand over rosters as OneRoster CSV bundles; this writes the
district store as one, so the ``oneroster_csv`` source can be tested against the same truth as
the HTTP sources. Every file is streamed by DuckDB ``COPY (SELECT ...) TO`` straight from the
store, so a million-student district costs no Python memory; rows come in storage order, which
:func:`~.store.finalize` keeps in ``sourced_id`` order, so no sort is needed.

The bundle carries what the OneRoster API of its version serves, in the CSV binding's shape:

- the spec's files and column headers, in the spec's order; lists are comma-separated inside
  one (quoted) field, ``userIds`` is ``{stateId:XYZ}``, booleans ``true``/``false``, dates
  ``YYYY-MM-DD``, ``dateLastModified`` ISO 8601 UTC with milliseconds;
- ``status`` and ``dateLastModified`` are *filled* although the spec leaves them blank in bulk
  files: Skyward shows deletions in two steps (``tobedeleted`` first), and readers need the
  dates for watermarks. Readers of this bundle accept blank values too;
- 1.1 has no ``counselor`` or ``principal`` role: both are written as ``administrator``;
- 1.2 users.csv has no ``role`` or ``orgSourcedIds``: each user has a roles.csv row per school
  (``primary`` for its primary school, the others ``secondary``; role ids ``<user>-<n>`` in the
  user's school order), and users.csv gains ``userMasterIdentifier`` (the state id),
  ``preferredGivenName`` and ``primaryOrgSourcedId``. The store holds no credentials, so
  userProfiles.csv is absent and ``password`` is blank;
- Skyward's vendor extensions are extra ``metadata.skyward.*`` columns to the right of the
  spec's, as the CSV binding allows: those the API serves in ``metadata`` (``nativeId``; on
  orgs ``schoolLevel``, ``gradeLow``, ``gradeHigh``; on students ``stateId``, ``gradYear``),
  and in 1.1 what 1.2 has and 1.1 lacks (``primaryOrgSourcedId``, ``preferredFirstName``) plus
  students' ``birthDate``;
- emergency-contact details, which OneRoster CSV has no place for, go to the extension file
  ``skyward_relationships.csv`` (one row per student-contact link), listed in the manifest as
  ``file.skyward_relationships``. A link has no status of its own in the store (it is removed,
  not marked): its ``status`` is its contact's, as the API client reads it.

``absent`` files are left out and marked ``absent`` in the manifest, as a district's export
that does not provide them would.
"""

from __future__ import annotations

import csv
import tempfile
import zipfile
from dataclasses import dataclass
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
"""Bundle file (without ``.csv``) -> the query that writes it, columns in the spec's order (1.1)."""

_PRIMARY_ORG = "CASE WHEN list_contains(org_ids, primary_org_id) THEN primary_org_id ELSE org_ids[1] END"

FILES_V1P2: dict[str, str] = {
    **{name: query for name, query in FILES.items() if name != "users"},
    "users": f"""
        SELECT {_COMMON}, CAST(enabled_user AS VARCHAR) AS "enabledUser", username,
               CASE WHEN state_id IS NOT NULL THEN '{{stateId:' || state_id || '}}' END AS "userIds",
               given_name AS "givenName", family_name AS "familyName", middle_name AS "middleName",
               identifier, email, sms, phone, {_joined('agent_ids')} AS "agentSourcedIds",
               {_joined('grades')} AS grades, NULL AS password, state_id AS "userMasterIdentifier",
               NULL AS "resourceSourcedIds", preferred_first_name AS "preferredGivenName",
               NULL AS "preferredMiddleName", NULL AS "preferredFamilyName",
               primary_org_id AS "primaryOrgSourcedId", NULL AS pronouns, {_NATIVE_ID},
               CASE WHEN role = 'student' THEN state_id END AS "metadata.skyward.stateId",
               CASE WHEN role = 'student' THEN CAST(grad_year AS VARCHAR) END AS "metadata.skyward.gradYear"
        FROM users""",
    "roles": f"""
        SELECT sourced_id || '-' || org.n AS "sourcedId", status, {_TIMESTAMP} AS "dateLastModified",
               sourced_id AS "userSourcedId",
               CASE WHEN org.id = {_PRIMARY_ORG} THEN 'primary' ELSE 'secondary' END AS "roleType", role,
               NULL AS "beginDate", NULL AS "endDate", org.id AS "orgSourcedId", NULL AS "userProfileSourcedId"
        FROM (SELECT *, unnest(list_transform(org_ids, lambda id, n: {{'id': id, 'n': n}})) AS org FROM users)""",
}
"""The 1.2 bundle's files: 1.1's, with users.csv in its 1.2 shape and roles.csv."""

ABSENT_FILES = ("categories", "classResources", "courseResources", "lineItems", "resources", "results")
"""OneRoster 1.1 files about gradebooks and resources, which a roster export does not carry."""
ABSENT_FILES_V1P2 = ("categories", "classResources", "courseResources", "lineItemLearningObjectiveIds", "lineItems",
                     "lineItemScoreScales", "resources", "resultLearningObjectiveIds", "results", "resultScoreScales",
                     "scoreScales", "userProfiles", "userResources")
"""The 1.2 files a roster export does not carry (the store has no credentials for userProfiles)."""


def export_bundle(
    store_path_or_con: str | Path | duckdb.DuckDBPyConnection, dest: str | Path, *, zip: bool = False,
    version: str = "1.1", absent: tuple[str, ...] = (), system_name: str = "Skyward",
) -> Path:
    """Write the district as a OneRoster ``version`` (1.1 or 1.2) CSV bundle; return the folder or the ``.zip``.

    ``dest`` is the folder to write into (created when missing; existing bundle files are
    replaced), or with ``zip=True`` the path of the zip file to create. Files named in ``absent``
    (without ``.csv``) are left out and marked absent in the manifest. ``system_name`` is the
    manifest's ``source.systemName``.
    """
    if version not in ("1.1", "1.2"):
        raise ValueError(f"OneRoster CSV version {version!r}: the simulator writes 1.1 and 1.2")
    files = {name: query for name, query in (FILES if version == "1.1" else FILES_V1P2).items() if name not in absent}
    unknown = set(absent) - set(FILES_V1P2) - set(FILES)
    if unknown:
        raise ValueError(f"no such bundle file to leave out: {', '.join(sorted(unknown))}")
    bundle = _Bundle(files, version, (*(ABSENT_FILES if version == "1.1" else ABSENT_FILES_V1P2), *absent), system_name)
    dest = Path(dest)
    if isinstance(store_path_or_con, duckdb.DuckDBPyConnection):
        return bundle.export(store_path_or_con, dest, zip)
    con = store.connect(store_path_or_con, read_only=True)
    try:
        return bundle.export(con, dest, zip)
    finally:
        con.close()


@dataclass(frozen=True)
class _Bundle:
    files: dict[str, str]
    version: str
    absent: tuple[str, ...]
    system_name: str

    def export(self, con: duckdb.DuckDBPyConnection, dest: Path, zip: bool) -> Path:
        if not zip:
            self._write_folder(con, dest)
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".bundle-") as folder:
            self._write_folder(con, Path(folder))
            partial = dest.with_name(dest.name + ".partial")
            with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for name in ["manifest", *self.files]:
                    archive.write(Path(folder) / f"{name}.csv", f"{name}.csv")
            partial.replace(dest)
        return dest

    def _write_folder(self, con: duckdb.DuckDBPyConnection, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name in self.absent:
            (folder / f"{name}.csv").unlink(missing_ok=True)
        for name, query in self.files.items():
            con.execute(f"COPY ({query}) TO $path (HEADER, DELIMITER ',')", {"path": str(folder / f"{name}.csv")})
        self._write_manifest(con, folder / "manifest.csv")

    def _write_manifest(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        district = con.execute(
            "SELECT coalesce(identifier, sourced_id) FROM orgs WHERE type = 'district' ORDER BY sourced_id LIMIT 1"
        ).fetchone()
        files = {name: "bulk" for name in self.files} | {name: "absent" for name in self.absent}
        rows = [
            ("manifest.version", "1.0"),
            ("oneroster.version", self.version),
            *((f"file.{name}", files[name]) for name in sorted(files, key=str.lower)),
            ("source.systemName", self.system_name),
            ("source.systemCode", district[0] if district else self.system_name.lower()),
        ]
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(("propertyName", "value"))
            writer.writerows(rows)
