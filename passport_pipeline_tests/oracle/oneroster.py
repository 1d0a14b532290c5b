"""The oracle of OneRoster 1.1 / 1.2 JSON records to canonical records.

Users split by role: ``student`` -> students; ``guardian``/``parent``/``relative`` ->
contacts; every other role (teacher, administrator, aide, counselor, principal...) -> staff.
A 1.2 user's ``roles[]`` gives its primary role (``roleType: primary``, else the first) and
its schools; ``primaryOrg`` its primary school. The shape of the record decides, not the
configured version, so a server mixing styles still reads right.

Skyward's ``metadata`` extensions fill what a version lacks (``skyward.primaryOrgSourcedId`` and
``skyward.preferredFirstName`` on 1.1 users).

A contact's links to its students come from Skyward's ``metadata["skyward.relationships"]``
(relationship, emergency contact, custody, pickup, order) as ``student_contacts`` records with
``sis_id`` ``"<student>|<contact>"``; a contact without that extension falls back to its
``agents``, with relationship ``guardian``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from passport_pipeline_tests.oracle.records import (
    BLANK,
    Broken,
    Normalized,
    checked,
    normalize_records,
    payload,
    ref,
    refs,
    required_id,
    text,
    texts,
    unique,
)

CONTACT_ROLES = frozenset({"guardian", "parent", "relative"})
STUDENT_ROLES = frozenset({"student"})

KINDS = {
    "orgs": "orgs", "schools": "orgs",
    "academicSessions": "academicSessions", "terms": "academicSessions", "gradingPeriods": "academicSessions",
    "courses": "courses", "classes": "classes", "enrollments": "enrollments", "demographics": "demographics",
    "users": "users", "students": "users", "teachers": "users",
}
"""Collection name (spec or Skyward alias) -> the OneRoster type it serves."""

RACES = {
    "american_indian_or_alaska_native": "americanIndianOrAlaskaNative",
    "asian": "asian",
    "black_or_african_american": "blackOrAfricanAmerican",
    "native_hawaiian_or_other_pacific_islander": "nativeHawaiianOrOtherPacificIslander",
    "white": "white",
    "demographic_race_two_or_more_races": "demographicRaceTwoOrMoreRaces",
    "hispanic_or_latino_ethnicity": "hispanicOrLatinoEthnicity",
}
"""Canonical race and ethnicity columns -> OneRoster demographics fields (both normalizers read it)."""


def oneroster_kind(path: str) -> str:
    """The OneRoster type a collection path serves: ``schools/{id}/students`` -> ``users``."""
    last = path.strip("/").rsplit("/", 1)[-1]
    if last not in KINDS:
        raise ValueError(f"{path!r} is not a OneRoster collection this project reads")
    return KINDS[last]


def normalize_oneroster(path: str, records: Iterable[object]) -> Normalized:
    """Canonical records (by entity) of one page of ``path`` (``users``, ``schools/x/classes``...)."""
    return normalize_records(path, records, _MAPPINGS[oneroster_kind(path)])


def user_roles(record: dict) -> tuple[str | None, list[str], str | None]:
    """``(primary role, school ids, primary school id)`` of a 1.1 or 1.2 user."""
    roles = record.get("roles")
    if isinstance(roles, list) and roles:
        entries = [r for r in roles if isinstance(r, dict)]
        if not entries:
            raise Broken("roles[] has no role objects")
        primary = next((r for r in entries if r.get("roleType") == "primary"), entries[0])
        schools = unique(ref(r.get("org")) for r in entries)
        return text(primary.get("role")), schools, ref(record.get("primaryOrg")) or ref(primary.get("org"))
    return text(record.get("role")), refs(record.get("orgs")) or [], ref(record.get("primaryOrg"))


def user_entity(role: str | None) -> str | None:
    """Which canonical entity a user of ``role`` becomes (None: no role)."""
    if role is None or not role.strip():
        return None
    key = role.strip().lower()
    if key in STUDENT_ROLES:
        return "students"
    return "contacts" if key in CONTACT_ROLES else "staff"


def _common(entity: str, record: dict) -> dict:
    row = BLANK[entity].copy()
    row["sis_id"] = required_id(record, "sourcedId")
    row["status"] = text(record.get("status"))
    row["date_last_modified"] = text(record.get("dateLastModified"))
    row["payload"] = payload(record)
    return row


def _org(record: dict) -> Iterator[tuple[str, dict]]:
    row = _common("schools", record)
    row.update(name=text(record.get("name")), identifier=text(record.get("identifier")),
               org_type=text(record.get("type")), parent_sis_id=ref(record.get("parent")))
    yield "schools", row


def _academic_session(record: dict) -> Iterator[tuple[str, dict]]:
    row = _common("terms", record)
    row.update(title=text(record.get("title")), term_type=text(record.get("type")),
               start_date=text(record.get("startDate")), end_date=text(record.get("endDate")),
               parent_sis_id=ref(record.get("parent")), school_year=text(record.get("schoolYear")))
    yield "terms", row


def _course(record: dict) -> Iterator[tuple[str, dict]]:
    row = _common("courses", record)
    row.update(title=text(record.get("title")), course_code=text(record.get("courseCode")),
               grades=texts(record.get("grades")), subjects=texts(record.get("subjects")),
               school_sis_id=ref(record.get("org")), school_year_sis_id=ref(record.get("schoolYear")))
    yield "courses", row


def _class(record: dict) -> Iterator[tuple[str, dict]]:
    row = _common("classes", record)
    row.update(title=text(record.get("title")), class_code=text(record.get("classCode")),
               class_type=text(record.get("classType")), location=text(record.get("location")),
               grades=texts(record.get("grades")), subjects=texts(record.get("subjects")),
               periods=texts(record.get("periods")), course_sis_id=ref(record.get("course")),
               school_sis_id=ref(record.get("school")), term_sis_ids=refs(record.get("terms")))
    yield "classes", row


def _enrollment(record: dict) -> Iterator[tuple[str, dict]]:
    row = _common("enrollments", record)
    row.update(user_sis_id=ref(record.get("user")), class_sis_id=ref(record.get("class")),
               school_sis_id=ref(record.get("school")), role=text(record.get("role")),
               primary=text(record.get("primary")), begin_date=text(record.get("beginDate")),
               end_date=text(record.get("endDate")))
    yield "enrollments", row


def _demographics(record: dict) -> Iterator[tuple[str, dict]]:
    row = _common("demographics", record)
    row.update(birth_date=text(record.get("birthDate")), sex=text(record.get("sex")),
               country_of_birth_code=text(record.get("countryOfBirthCode")),
               state_of_birth_abbreviation=text(record.get("stateOfBirthAbbreviation")),
               city_of_birth=text(record.get("cityOfBirth")),
               public_school_residence_status=text(record.get("publicSchoolResidenceStatus")))
    for column, name in RACES.items():
        row[column] = text(record.get(name))
    yield "demographics", row


def _user(record: dict) -> Iterator[tuple[str, dict]]:
    role, schools, primary_school = user_roles(record)
    entity = user_entity(role)
    if entity is None:
        raise Broken("no role")
    metadata = record.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    primary_school = primary_school or text(metadata.get("skyward.primaryOrgSourcedId"))
    row = _common(entity, record)
    row.update(
        username=text(record.get("username")), given_name=text(record.get("givenName")),
        family_name=text(record.get("familyName")), middle_name=text(record.get("middleName")),
        preferred_first_name=text(record.get("preferredFirstName")) or text(metadata.get("skyward.preferredFirstName")),
        identifier=text(record.get("identifier")), state_id=_state_id(record, metadata),
        email=text(record.get("email")), phone=text(record.get("phone")), sms=text(record.get("sms")),
        enabled_user=text(record.get("enabledUser")),
    )
    if entity == "students":
        row.update(grades=texts(record.get("grades")), school_sis_ids=schools,
                   primary_school_sis_id=primary_school,
                   grad_year=text(metadata.get("skyward.gradYear")),
                   birth_date=text(record.get("birthDate") or metadata.get("skyward.birthDate")))
    elif entity == "staff":
        row.update(role=role, school_sis_ids=schools, primary_school_sis_id=primary_school)
    else:
        row["role"] = role
    yield entity, row
    if entity == "contacts":
        yield from _student_contacts(record, row, metadata)


def _state_id(record: dict, metadata: dict) -> str | None:
    """1.2 ``userMasterIdentifier``, else a ``userIds`` entry of type state id, else Skyward's extension."""
    found = text(record.get("userMasterIdentifier"))
    if found:
        return found
    for user_id in record.get("userIds") or []:
        if isinstance(user_id, dict) and str(user_id.get("type", "")).lower().replace("_", "") in ("stateid", "state"):
            return text(user_id.get("identifier"))
    return text(metadata.get("skyward.stateId"))


def _student_contacts(record: dict, contact: dict, metadata: dict) -> Iterator[tuple[str, dict]]:
    contact_id = contact["sis_id"]
    links = metadata.get("skyward.relationships")
    if isinstance(links, str):
        links = json.loads(links)
    if links is None:
        links = [{"studentSourcedId": student, "relationship": "guardian"}
                 for student in refs(record.get("agents")) or []]
    elif not isinstance(links, list):
        raise Broken("metadata skyward.relationships is not a list")
    for link in links:
        if not isinstance(link, dict) or text(link.get("studentSourcedId")) is None:
            raise Broken("a skyward.relationships entry has no studentSourcedId")
        student = text(link["studentSourcedId"])
        row = BLANK["student_contacts"].copy()
        row.update(
            sis_id=f"{student}|{contact_id}", status=contact["status"],
            date_last_modified=contact["date_last_modified"], student_sis_id=student,
            contact_sis_id=contact_id, relationship=text(link.get("relationship")),
            emergency_contact=text(link.get("emergencyContact")), custodial=text(link.get("custodial")),
            pickup_allowed=text(link.get("pickupAllowed")), contact_order=text(link.get("contactOrder")),
            payload=payload(link),
        )
        yield "student_contacts", row


_MAPPINGS = {
    "orgs": checked(_org, ["sourcedId"], ["parent"], ["name"]),
    "academicSessions": checked(_academic_session, ["sourcedId"], ["parent"], ["title"]),
    "courses": checked(_course, ["sourcedId"], ["org", "schoolYear"], ["title"]),
    "classes": checked(_class, ["sourcedId"], ["course", "school"], ["title"]),
    "enrollments": checked(_enrollment, ["sourcedId"], ["user", "class", "school"]),
    "demographics": checked(_demographics, ["sourcedId"]),
    "users": checked(_user, ["sourcedId"], ["primaryOrg"],
                     ["givenName", "familyName", "middleName", "preferredFirstName"]),
}
