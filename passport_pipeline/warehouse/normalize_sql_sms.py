"""The SMS 2.0 native field map: PascalCase records to canonical rows, in DuckDB SQL.

Native ids as text, ``Status`` and ``PositionDesc`` in OneRoster's
words, sections bring their teachers' enrollments, students their demographics, guardians their
``student_contacts``; staff come merged per ``NameId`` by the client.
"""

from __future__ import annotations

from passport_pipeline.warehouse.normalize_sql import (
    RAW,
    TEXT,
    Rows,
    SqlMapping,
    TypeChecks,
    blank,
    either,
    field_of,
    is_object,
    json_list,
    key,
    stripped,
    text,
    texts,
    truthy,
    unique,
)

EMPTY = "''"


def word(value: str) -> str:
    """``(value or "").strip().lower()`` of a text."""
    return f"lower({stripped(f'coalesce({value}, {EMPTY})')})"


def status(value: str) -> str:
    """``normalize_sms.status`` of a text: ``active`` | ``tobedeleted`` when known, else as sent."""
    return (f"CASE WHEN {word(value)} = 'active' THEN 'active'"
            f" WHEN {word(value)} IN ('tobedeleted', 'inactive', 'withdrawn', 'deleted') THEN 'tobedeleted'"
            f" ELSE {value} END")


def common(sis_id: str) -> dict[str, str]:
    return {"sis_id": sis_id, "status": status(key("Status")), "date_last_modified": key("LastModified")}


def required(name: str) -> tuple[str, str]:
    return blank(key(name)), f"no {name}"


COMMON_FIELDS = {"Status": TEXT, "LastModified": TEXT}
_PHONES = ("PhoneNumber", "PhoneNumber2", "PhoneNumber3")
PERSON_FIELDS = {"FirstName": TEXT, "MiddleName": TEXT, "LastName": TEXT, "PreferredName": TEXT,
                 **{name: TEXT for number in _PHONES for name in (number, number.replace("Number", "NumberType"))}}


def _numbers(mobile: bool) -> str:
    """Phone numbers of one kind (mobile or not), in order, as ``_phones`` walks them."""
    picked = []
    for number in _PHONES:
        kind = word(key(number.replace("Number", "NumberType")))
        test = f"{kind} IN ('cell', 'mobile')" if mobile else f"{kind} NOT IN ('cell', 'mobile')"
        picked.append(f"CASE WHEN {test} THEN {key(number)} END")
    return f"list_filter([{', '.join(picked)}], lambda p: p IS NOT NULL)"


def _first_set(numbers: str) -> str:
    """``a or b or c`` over texts: the first non-empty one, else '' when there was any."""
    return f"coalesce(list_filter({numbers}, lambda p: p <> '')[1], CASE WHEN len({numbers}) > 0 THEN '' END)"


PERSON_NAMES = ["FirstName", "MiddleName", "LastName", "PreferredName"]
PERSON = {"given_name": key("FirstName"), "middle_name": key("MiddleName"), "family_name": key("LastName"),
          "preferred_first_name": key("PreferredName"), "phone": _first_set("phones"), "sms": _first_set("mobiles")}
PHONES = {"phones": _numbers(mobile=False), "mobiles": _numbers(mobile=True)}

SCHOOLS = SqlMapping(
    types=TypeChecks(ids=["SchoolId"], names=["SchoolName"], numeric_ids=True),
    fields={**COMMON_FIELDS, "SchoolId": TEXT, "SchoolName": TEXT, "SchoolCode": TEXT},
    checks=(required("SchoolId"),),
    rows={"schools": Rows({**common(key("SchoolId")), "name": key("SchoolName"), "identifier": key("SchoolCode"),
                           "org_type": "'school'"})},
)

_ENROLLMENTS = json_list(key("Enrollments"))
STUDENTS = SqlMapping(
    types=TypeChecks(ids=["NameId"], names=PERSON_NAMES, numeric_ids=True),
    fields={**COMMON_FIELDS, **PERSON_FIELDS, "NameId": TEXT, "Enrollments": RAW, "GradeLevel": RAW,
            "DisplayId": TEXT, "StateId": TEXT, "SchoolEmail": RAW, "Email": TEXT, "Username": TEXT,
            "schoolIds": RAW, "DefaultSchoolId": TEXT, "GradYr": TEXT, "DateOfBirth": TEXT, "Gender": TEXT},
    derived={
        **PHONES,
        "active_grades": f"list_transform(list_filter({_ENROLLMENTS}, lambda e: {is_object('e')}"
                         f" AND {status(text(field_of('e', 'Status')))} = 'active'),"
                         f" lambda e: {text(field_of('e', 'GradeLevel'))})",
        "grades": f"CASE WHEN {_ENROLLMENTS} IS NOT NULL THEN {unique('active_grades')}"
                  f" ELSE {texts(key('GradeLevel'))} END",
    },
    checks=(required("NameId"),),
    rows={
        "students": Rows({
            **common(key("NameId")), **PERSON, "identifier": key("DisplayId"), "state_id": key("StateId"),
            "email": f"CASE WHEN {truthy(key('SchoolEmail'))} THEN {text(key('SchoolEmail'))} ELSE {key('Email')} END",
            "username": key("Username"), "grades": "grades",
            # "SchoolIds" differs from "schoolIds" only in case, which DuckDB's structures cannot tell apart
            "school_sis_ids": texts(either(key("schoolIds"), field_of("record", "SchoolIds"))),
            "primary_school_sis_id": key("DefaultSchoolId"), "grad_year": key("GradYr"),
            "birth_date": key("DateOfBirth")}),
        "demographics": Rows({**common(key("NameId")), "birth_date": key("DateOfBirth"), "sex": key("Gender")},
                             when=f"{key('DateOfBirth')} IS NOT NULL OR {key('Gender')} IS NOT NULL"),
    },
)

_PARENT_WORDS = "['mother', 'father', 'stepparent', 'parent']"
GUARDIANS = SqlMapping(
    types=TypeChecks(ids=["GuardianNameId"], names=PERSON_NAMES, numeric_ids=True),
    fields={**COMMON_FIELDS, **PERSON_FIELDS, "GuardianNameId": TEXT, "Students": RAW, "Email": TEXT},
    derived={
        **PHONES,
        "links": f"CASE WHEN NOT {truthy(key('Students'))} THEN [] ELSE {json_list(key('Students'))} END",
        "guardian_words": "list_transform(list_filter(links, lambda l: json_extract(l, '$.IsGuardian') IS DISTINCT FROM"
                          f" 'false'), lambda l: {word(text(field_of('l', 'RelationshipDesc')))})",
        "role": f"CASE WHEN len(links) > 0 AND len(guardian_words) = 0 THEN 'relative'"
                f" WHEN list_has_any(guardian_words, {_PARENT_WORDS}) THEN 'parent' ELSE 'guardian' END",
    },
    checks=(
        required("GuardianNameId"),
        (f"links IS NULL OR list_bool_or(list_transform(links, lambda l: NOT {is_object('l')}))",
         "Students is not a list of objects"),
        (f"list_bool_or(list_transform(links, lambda l: {text(field_of('l', 'StudentNameId'))} IS NULL))",
         "a Students entry has no StudentNameId"),
    ),
    rows={
        "contacts": Rows({**common(key("GuardianNameId")), **PERSON, "email": key("Email"), "role": "role"}),
        "student_contacts": Rows(
            {"sis_id": f"i.StudentNameId || '|' || {key('GuardianNameId')}", "status": status(key("Status")),
             "date_last_modified": key("LastModified"), "student_sis_id": "i.StudentNameId",
             "contact_sis_id": key("GuardianNameId"), "relationship": "i.RelationshipDesc",
             "emergency_contact": "i.IsEmergencyContact", "custodial": "i.IsCustodial",
             "pickup_allowed": "i.AllowPickup", "contact_order": "i.ContactOrder"},
            each="links", payload="item",
            item={"StudentNameId": TEXT, "RelationshipDesc": TEXT, "IsEmergencyContact": TEXT, "IsCustodial": TEXT,
                  "AllowPickup": TEXT, "ContactOrder": TEXT}),
    },
)

STAFF = SqlMapping(
    types=TypeChecks(ids=["NameId"], names=PERSON_NAMES, numeric_ids=True),
    fields={**COMMON_FIELDS, **PERSON_FIELDS, "NameId": TEXT, "Assignments": RAW, "PositionDesc": TEXT,
            "IsTeacher": RAW, "DisplayId": TEXT, "Email": TEXT, "Username": TEXT, "StateId": TEXT},
    derived={
        **PHONES,
        "assignments": f"list_filter(coalesce({json_list(key('Assignments'))}, [record]), lambda a: {is_object('a')})",
        "assignment_schools": f"list_transform(assignments, lambda a: {text(field_of('a', 'SchoolId'))})",
        "schools": unique("assignment_schools"),
        "primary_assignments": "list_filter(assignments, lambda a: json_extract(a, '$.IsPrimarySchool') = 'true')",
        "primary_school": f"CASE WHEN len(primary_assignments) > 0"
                          f" THEN {text(field_of('primary_assignments[1]', 'SchoolId'))} ELSE schools[1] END",
        "role": f"CASE WHEN {key('PositionDesc')} <> ''"
                f" THEN lower(left({key('PositionDesc')}, 1)) || substr({key('PositionDesc')}, 2)"
                f" WHEN {truthy(key('IsTeacher'))} THEN 'teacher' END",
    },
    checks=(required("NameId"),),
    rows={"staff": Rows({**common(key("NameId")), **PERSON, "identifier": key("DisplayId"), "email": key("Email"),
                         "username": key("Username"), "state_id": key("StateId"), "role": "role",
                         "school_sis_ids": "schools", "primary_school_sis_id": "primary_school"})},
)

COURSES = SqlMapping(
    types=TypeChecks(ids=["CourseId", "SchoolId"], names=["CourseName"], numeric_ids=True),
    fields={**COMMON_FIELDS, "CourseId": TEXT, "CourseName": TEXT, "CourseCode": TEXT, "Grades": RAW,
            "Subjects": RAW, "SchoolId": TEXT},
    checks=(required("CourseId"),),
    rows={"courses": Rows({**common(key("CourseId")), "title": key("CourseName"), "course_code": key("CourseCode"),
                           "grades": texts(key("Grades")), "subjects": texts(key("Subjects")),
                           "school_sis_id": key("SchoolId")})},
)

SECTIONS = SqlMapping(
    types=TypeChecks(ids=["SectionId", "CourseId", "SchoolId"], names=["SectionName"], numeric_ids=True),
    fields={**COMMON_FIELDS, "SectionId": TEXT, "SectionName": TEXT, "SectionCode": TEXT, "ClassType": TEXT,
            "Room": TEXT, "Periods": RAW, "CourseId": TEXT, "SchoolId": TEXT, "TermIds": RAW, "Teachers": RAW},
    derived={"teachers": f"CASE WHEN NOT {truthy(key('Teachers'))} THEN [] ELSE {json_list(key('Teachers'))} END"},
    checks=(
        required("SectionId"),
        ("teachers IS NULL", "Teachers is not a list"),
        (f"list_bool_or(list_transform(teachers, lambda t: NOT {is_object('t')}"
         f" OR {text(field_of('t', 'StaffNameId'))} IS NULL))", "a Teachers entry has no StaffNameId"),
    ),
    rows={
        "classes": Rows({**common(key("SectionId")), "title": key("SectionName"), "class_code": key("SectionCode"),
                         "class_type": key("ClassType"), "location": key("Room"), "periods": texts(key("Periods")),
                         "course_sis_id": key("CourseId"), "school_sis_id": key("SchoolId"),
                         "term_sis_ids": texts(key("TermIds"))}),
        "enrollments": Rows(
            {"sis_id": f"i.StaffNameId || '|' || {key('SectionId')}", "status": status(key("Status")),
             "date_last_modified": key("LastModified"), "user_sis_id": "i.StaffNameId",
             "class_sis_id": key("SectionId"), "school_sis_id": key("SchoolId"), "role": "'teacher'",
             "primary": "i.IsPrimary"},
            each="teachers", item={"StaffNameId": TEXT, "IsPrimary": TEXT}, payload="item"),
    },
)

TERMS = SqlMapping(
    types=TypeChecks(ids=["TermId", "ParentTermId"], names=["TermName"], numeric_ids=True),
    fields={**COMMON_FIELDS, "TermId": TEXT, "TermName": TEXT, "TermType": TEXT, "StartDate": TEXT, "EndDate": TEXT,
            "ParentTermId": TEXT, "SchoolYear": TEXT},
    checks=(required("TermId"),),
    rows={"terms": Rows({**common(key("TermId")), "title": key("TermName"), "term_type": key("TermType"),
                         "start_date": key("StartDate"), "end_date": key("EndDate"),
                         "parent_sis_id": key("ParentTermId"), "school_year": key("SchoolYear")})},
)

STUDENT_SCHEDULES = SqlMapping(
    types=TypeChecks(ids=["StudentNameId", "SectionId", "SchoolId"], numeric_ids=True),
    fields={**COMMON_FIELDS, "StudentNameId": TEXT, "SectionId": TEXT, "SchoolId": TEXT, "EntryDate": TEXT,
            "ExitDate": TEXT},
    checks=(required("StudentNameId"), required("SectionId")),
    rows={"enrollments": Rows({
        **common(f"{key('StudentNameId')} || '|' || {key('SectionId')}"), "user_sis_id": key("StudentNameId"),
        "class_sis_id": key("SectionId"), "school_sis_id": key("SchoolId"), "role": "'student'",
        "begin_date": key("EntryDate"), "end_date": key("ExitDate")})},
)

SMS_SQL = {
    "schools": SCHOOLS,
    "students": STUDENTS,
    "guardians": GUARDIANS,
    "staff": STAFF,
    "courses": COURSES,
    "sections": SECTIONS,
    "terms": TERMS,
    "student_schedules": STUDENT_SCHEDULES,
}
"""SMS endpoint name -> its mapping."""
