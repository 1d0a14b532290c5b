"""The oracle of Skyward SMS 2.0 native (PascalCase) records to canonical records.

Ids are the native ones (``NameId``, ``SchoolId``, ``SectionId``...), as text. Two
vocabularies are mapped to OneRoster's, since later stages compare them: ``Status``
(``Active`` -> ``active``; ``ToBeDeleted``/``Inactive``/``Withdrawn``/``Deleted`` ->
``tobedeleted``; anything else as sent) and a staff member's ``PositionDesc``
(``Teacher`` -> ``teacher``). The raw record stays in ``payload``.

- ``students`` -> students (plus a demographics record with ``DateOfBirth`` and ``Gender``
  when present); grades come from the per-student school ``Enrollments`` the client attaches.
- ``guardians`` -> contacts, and one ``student_contacts`` record per entry of ``Students[]``.
  Role: ``relative`` for a contact who is nobody's guardian, ``parent`` for a guardian who is a
  mother, father or stepparent, else ``guardian``.
- ``staff``: the client merges one person's assignment rows into one record with
  ``Assignments`` (see :mod:`passport_pipeline.sources.sms`); schools come from every assignment.
- ``sections`` -> classes, and a teacher enrollment per entry of ``Teachers[]``
  (``sis_id`` ``"<StaffNameId>|<SectionId>"``); ``studentschedules`` -> student enrollments
  (``"<StudentNameId>|<SectionId>"``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from passport_pipeline_tests.oracle.records import (
    BLANK,
    Broken,
    Normalized,
    checked,
    normalize_records,
    payload,
    required_id,
    text,
    texts,
    unique,
)

_STATUSES = {"active": "active", "tobedeleted": "tobedeleted", "inactive": "tobedeleted",
             "withdrawn": "tobedeleted", "deleted": "tobedeleted"}
_PARENTS = frozenset({"mother", "father", "stepparent", "parent"})
_MOBILE = ("cell", "mobile")


def normalize_sms(endpoint: str, records: Iterable[object]) -> Normalized:
    """Canonical records (by entity) of one page of a native endpoint (``students``, ``staff``...)."""
    try:
        mapping = _MAPPINGS[endpoint]
    except KeyError:
        raise ValueError(f"{endpoint!r} is not an SMS endpoint this project reads") from None
    return normalize_records(endpoint, records, mapping)


def status(value: object) -> str | None:
    """A native status in OneRoster's words (``active`` | ``tobedeleted``), else as sent."""
    found = text(value)
    return _STATUSES.get(found.strip().lower(), found) if found else found


def _common(entity: str, record: dict, sis_id: str) -> dict:
    row = BLANK[entity].copy()
    row["sis_id"] = sis_id
    row["status"] = status(record.get("Status"))
    row["date_last_modified"] = text(record.get("LastModified"))
    row["payload"] = payload(record)
    return row


def _phones(record: dict) -> tuple[str | None, str | None]:
    """``(phone, sms)`` from ``PhoneNumber``/``PhoneNumberType`` 1-3: the first mobile is the sms."""
    phone = sms = None
    for suffix in ("", "2", "3"):
        number = text(record.get(f"PhoneNumber{suffix}"))
        if number is None:
            continue
        kind = (text(record.get(f"PhoneNumberType{suffix}")) or "").strip().lower()
        if kind in _MOBILE:
            sms = sms or number
        else:
            phone = phone or number
    return phone, sms


def _person(row: dict, record: dict) -> None:
    phone, sms = _phones(record)
    row.update(given_name=text(record.get("FirstName")), middle_name=text(record.get("MiddleName")),
               family_name=text(record.get("LastName")), phone=phone, sms=sms,
               preferred_first_name=text(record.get("PreferredName")))


def _school(record: dict) -> Iterator[tuple[str, dict]]:
    row = _common("schools", record, required_id(record, "SchoolId"))
    row.update(name=text(record.get("SchoolName")), identifier=text(record.get("SchoolCode")),
               org_type="school")
    yield "schools", row


def _student(record: dict) -> Iterator[tuple[str, dict]]:
    row = _common("students", record, required_id(record, "NameId"))
    _person(row, record)
    enrollments = record.get("Enrollments")
    grades = None
    if isinstance(enrollments, list):
        grades = unique(text(e.get("GradeLevel")) for e in enrollments
                        if isinstance(e, dict) and status(e.get("Status")) == "active")
    elif record.get("GradeLevel") is not None:
        grades = texts(record.get("GradeLevel"))
    row.update(identifier=text(record.get("DisplayId")), state_id=text(record.get("StateId")),
               email=text(record.get("SchoolEmail") or record.get("Email")),
               username=text(record.get("Username")), grades=grades,
               school_sis_ids=texts(record.get("schoolIds") or record.get("SchoolIds")),
               primary_school_sis_id=text(record.get("DefaultSchoolId")),
               grad_year=text(record.get("GradYr")), birth_date=text(record.get("DateOfBirth")))
    yield "students", row
    if record.get("DateOfBirth") is not None or record.get("Gender") is not None:
        demographics = _common("demographics", record, row["sis_id"])
        demographics.update(birth_date=row["birth_date"], sex=text(record.get("Gender")))
        yield "demographics", demographics


def _guardian(record: dict) -> Iterator[tuple[str, dict]]:
    contact_id = required_id(record, "GuardianNameId")
    row = _common("contacts", record, contact_id)
    _person(row, record)
    links = record.get("Students") or []
    if not isinstance(links, list) or not all(isinstance(link, dict) for link in links):
        raise Broken("Students is not a list of objects")
    guardian = [link for link in links if link.get("IsGuardian") is not False]
    relationships = {(text(link.get("RelationshipDesc")) or "").strip().lower() for link in guardian}
    role = "relative" if links and not guardian else "parent" if relationships & _PARENTS else "guardian"
    row.update(email=text(record.get("Email")), role=role)
    yield "contacts", row
    for link in links:
        student = text(link.get("StudentNameId"))
        if student is None:
            raise Broken("a Students entry has no StudentNameId")
        pair = BLANK["student_contacts"].copy()
        pair.update(
            sis_id=f"{student}|{contact_id}", status=row["status"],
            date_last_modified=row["date_last_modified"], student_sis_id=student,
            contact_sis_id=contact_id, relationship=text(link.get("RelationshipDesc")),
            emergency_contact=text(link.get("IsEmergencyContact")),
            custodial=text(link.get("IsCustodial")), pickup_allowed=text(link.get("AllowPickup")),
            contact_order=text(link.get("ContactOrder")), payload=payload(link),
        )
        yield "student_contacts", pair


def _staff(record: dict) -> Iterator[tuple[str, dict]]:
    row = _common("staff", record, required_id(record, "NameId"))
    _person(row, record)
    assignments = record.get("Assignments")
    if not isinstance(assignments, list):
        assignments = [record]
    assignments = [a for a in assignments if isinstance(a, dict)]
    schools = unique(text(a.get("SchoolId")) for a in assignments)
    primary = next((text(a.get("SchoolId")) for a in assignments if a.get("IsPrimarySchool") is True),
                   schools[0] if schools else None)
    position = text(record.get("PositionDesc"))
    role = position[:1].lower() + position[1:] if position else ("teacher" if record.get("IsTeacher") else None)
    row.update(identifier=text(record.get("DisplayId")), email=text(record.get("Email")),
               username=text(record.get("Username")), state_id=text(record.get("StateId")),
               role=role, school_sis_ids=schools, primary_school_sis_id=primary)
    yield "staff", row


def _course(record: dict) -> Iterator[tuple[str, dict]]:
    row = _common("courses", record, required_id(record, "CourseId"))
    row.update(title=text(record.get("CourseName")), course_code=text(record.get("CourseCode")),
               grades=texts(record.get("Grades")), subjects=texts(record.get("Subjects")),
               school_sis_id=text(record.get("SchoolId")))
    yield "courses", row


def _section(record: dict) -> Iterator[tuple[str, dict]]:
    section_id = required_id(record, "SectionId")
    row = _common("classes", record, section_id)
    row.update(title=text(record.get("SectionName")), class_code=text(record.get("SectionCode")),
               class_type=text(record.get("ClassType")), location=text(record.get("Room")),
               periods=texts(record.get("Periods")), course_sis_id=text(record.get("CourseId")),
               school_sis_id=text(record.get("SchoolId")), term_sis_ids=texts(record.get("TermIds")))
    yield "classes", row
    teachers = record.get("Teachers") or []
    if not isinstance(teachers, list):
        raise Broken("Teachers is not a list")
    for teacher in teachers:
        staff_id = text(teacher.get("StaffNameId")) if isinstance(teacher, dict) else None
        if staff_id is None:
            raise Broken("a Teachers entry has no StaffNameId")
        enrollment = BLANK["enrollments"].copy()
        enrollment.update(
            sis_id=f"{staff_id}|{section_id}", status=row["status"],
            date_last_modified=row["date_last_modified"], user_sis_id=staff_id,
            class_sis_id=section_id, school_sis_id=row["school_sis_id"], role="teacher",
            primary=text(teacher.get("IsPrimary")), payload=payload(teacher),
        )
        yield "enrollments", enrollment


def _term(record: dict) -> Iterator[tuple[str, dict]]:
    row = _common("terms", record, required_id(record, "TermId"))
    row.update(title=text(record.get("TermName")), term_type=text(record.get("TermType")),
               start_date=text(record.get("StartDate")), end_date=text(record.get("EndDate")),
               parent_sis_id=text(record.get("ParentTermId")), school_year=text(record.get("SchoolYear")))
    yield "terms", row


def _student_schedule(record: dict) -> Iterator[tuple[str, dict]]:
    student = required_id(record, "StudentNameId")
    section = required_id(record, "SectionId")
    row = _common("enrollments", record, f"{student}|{section}")
    row.update(user_sis_id=student, class_sis_id=section, school_sis_id=text(record.get("SchoolId")),
               role="student", begin_date=text(record.get("EntryDate")), end_date=text(record.get("ExitDate")))
    yield "enrollments", row


_NAMES = ["FirstName", "MiddleName", "LastName", "PreferredName"]
_MAPPINGS = {
    "schools": checked(_school, ["SchoolId"], names=["SchoolName"], numeric_ids=True),
    "students": checked(_student, ["NameId"], names=_NAMES, numeric_ids=True),
    "guardians": checked(_guardian, ["GuardianNameId"], names=_NAMES, numeric_ids=True),
    "staff": checked(_staff, ["NameId"], names=_NAMES, numeric_ids=True),
    "courses": checked(_course, ["CourseId", "SchoolId"], names=["CourseName"], numeric_ids=True),
    "sections": checked(_section, ["SectionId", "CourseId", "SchoolId"], names=["SectionName"], numeric_ids=True),
    "terms": checked(_term, ["TermId", "ParentTermId"], names=["TermName"], numeric_ids=True),
    "student_schedules": checked(_student_schedule, ["StudentNameId", "SectionId", "SchoolId"], numeric_ids=True),
}
