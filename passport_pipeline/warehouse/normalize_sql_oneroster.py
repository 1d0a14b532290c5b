"""The OneRoster field map: 1.1 / 1.2 records to canonical rows, in DuckDB SQL.

Users split by role (``roles[]`` of 1.2 gives the primary role
and the schools), contacts bring ``student_contacts`` from ``metadata["skyward.relationships"]``
or, without that extension, from their ``agents``; GUIDRefs become their ``sourcedId``.
Skyward's ``metadata`` extensions fill what a version lacks: ``skyward.primaryOrgSourcedId`` and
``skyward.preferredFirstName`` on 1.1 users.

This is the one OneRoster field map: the API landing reads it from JSON pages and the CSV
landing (:mod:`.csv_landing`) from bundle files, each field's kind saying how a CSV file carries
it (``org`` in ``orgSourcedId``, ``terms`` in ``termSourcedIds``, ``roles`` in roles.csv...).
"""

from __future__ import annotations

from passport_pipeline.warehouse.normalize_sql import (
    RAW,
    REF,
    REFS,
    TEXT,
    Carried,
    Joined,
    Rows,
    SqlMapping,
    TypeChecks,
    blank,
    either,
    field_of,
    is_object,
    json_list,
    key,
    ref,
    ref_field,
    refs,
    refs_field,
    stripped,
    text,
    texts,
    truthy,
    unique,
)

COMMON_FIELDS = {"sourcedId": TEXT, "status": TEXT, "dateLastModified": TEXT}
COMMON = {"sis_id": key("sourcedId"), "status": key("status"), "date_last_modified": key("dateLastModified")}
NO_ID = ((blank(key("sourcedId")), "no sourcedId"),)
GUIDREF = Carried(RAW, "ref")
"""A GUIDRef read as JSON (it may come as a bare id); CSV: ``<name>SourcedId``."""
CODES = Carried(RAW, "codes")
NAMES = Carried(RAW, "names")

ORGS = SqlMapping(
    types=TypeChecks(ids=["sourcedId"], refs=["parent"], names=["name"]),
    fields={**COMMON_FIELDS, "name": TEXT, "identifier": TEXT, "type": TEXT, "parent": GUIDREF},
    checks=NO_ID,
    rows={"schools": Rows({**COMMON, "name": key("name"), "identifier": key("identifier"),
                           "org_type": key("type"), "parent_sis_id": ref(key("parent"))})},
)

ACADEMIC_SESSIONS = SqlMapping(
    types=TypeChecks(ids=["sourcedId"], refs=["parent"], names=["title"]),
    fields={**COMMON_FIELDS, "title": TEXT, "type": TEXT, "startDate": TEXT, "endDate": TEXT,
            "parent": GUIDREF, "schoolYear": TEXT},
    checks=NO_ID,
    rows={"terms": Rows({**COMMON, "title": key("title"), "term_type": key("type"),
                         "start_date": key("startDate"), "end_date": key("endDate"),
                         "parent_sis_id": ref(key("parent")), "school_year": key("schoolYear")})},
)

COURSES = SqlMapping(
    types=TypeChecks(ids=["sourcedId"], refs=["org", "schoolYear"], names=["title"]),
    fields={**COMMON_FIELDS, "title": TEXT, "courseCode": TEXT, "grades": CODES, "subjects": NAMES,
            "org": REF, "schoolYear": REF},
    checks=NO_ID,
    rows={"courses": Rows({**COMMON, "title": key("title"), "course_code": key("courseCode"),
                           "grades": texts(key("grades")), "subjects": texts(key("subjects")),
                           "school_sis_id": ref_field("org"), "school_year_sis_id": ref_field("schoolYear")})},
)

CLASSES = SqlMapping(
    types=TypeChecks(ids=["sourcedId"], refs=["course", "school"], names=["title"]),
    fields={**COMMON_FIELDS, "title": TEXT, "classCode": TEXT, "classType": TEXT, "location": TEXT,
            "grades": CODES, "subjects": NAMES, "periods": CODES, "course": REF, "school": REF, "terms": REFS},
    checks=NO_ID,
    rows={"classes": Rows({**COMMON, "title": key("title"), "class_code": key("classCode"),
                           "class_type": key("classType"), "location": key("location"),
                           "grades": texts(key("grades")), "subjects": texts(key("subjects")),
                           "periods": texts(key("periods")), "course_sis_id": ref_field("course"),
                           "school_sis_id": ref_field("school"), "term_sis_ids": refs_field("terms")})},
)

ENROLLMENTS = SqlMapping(
    types=TypeChecks(ids=["sourcedId"], refs=["user", "class", "school"]),
    fields={**COMMON_FIELDS, "user": REF, "class": REF, "school": REF, "role": TEXT, "primary": TEXT,
            "beginDate": TEXT, "endDate": TEXT},
    checks=NO_ID,
    rows={"enrollments": Rows({**COMMON, "user_sis_id": ref_field("user"), "class_sis_id": ref_field("class"),
                               "school_sis_id": ref_field("school"), "role": key("role"),
                               "primary": key("primary"), "begin_date": key("beginDate"),
                               "end_date": key("endDate")})},
)

RACES = {
    "american_indian_or_alaska_native": "americanIndianOrAlaskaNative",
    "asian": "asian",
    "black_or_african_american": "blackOrAfricanAmerican",
    "native_hawaiian_or_other_pacific_islander": "nativeHawaiianOrOtherPacificIslander",
    "white": "white",
    "demographic_race_two_or_more_races": "demographicRaceTwoOrMoreRaces",
    "hispanic_or_latino_ethnicity": "hispanicOrLatinoEthnicity",
}
"""Canonical race and ethnicity columns -> OneRoster demographics fields."""

_DEMOGRAPHICS = {
    "birth_date": "birthDate", "sex": "sex", "country_of_birth_code": "countryOfBirthCode",
    "state_of_birth_abbreviation": "stateOfBirthAbbreviation", "city_of_birth": "cityOfBirth",
    "public_school_residence_status": "publicSchoolResidenceStatus", **RACES,
}

DEMOGRAPHICS = SqlMapping(
    types=TypeChecks(ids=["sourcedId"]),
    fields={**COMMON_FIELDS, **dict.fromkeys(_DEMOGRAPHICS.values(), TEXT)},
    checks=NO_ID,
    rows={"demographics": Rows({**COMMON, **{column: key(name) for column, name in _DEMOGRAPHICS.items()}})},
)

_PERSON = {
    "username": "username", "given_name": "givenName", "family_name": "familyName", "middle_name": "middleName",
    "preferred_first_name": "preferredFirstName", "identifier": "identifier", "email": "email",
    "phone": "phone", "sms": "sms", "enabled_user": "enabledUser",
}
METADATA = 'f."metadata"'
PERSON = {**{column: key(name) for column, name in _PERSON.items()}, "state_id": "state_id",
          "preferred_first_name": f"""CASE WHEN {key('preferredFirstName')} <> '' THEN {key('preferredFirstName')}
                                      ELSE {METADATA}."skyward.preferredFirstName" END"""}
RELATIONSHIPS = f'{METADATA}."skyward.relationships"'
NOT_ITERABLE = (f"NOT coalesce({key('userMasterIdentifier')} <> '', false) AND {truthy(key('userIds'))}"
                f" AND left({key('userIds')}, 1) NOT IN ('\"', '[', '{{')")
CONTACT = "entity = 'contacts'"
LINK = {"studentSourcedId": TEXT, "relationship": TEXT, "emergencyContact": TEXT, "custodial": TEXT,
        "pickupAllowed": TEXT, "contactOrder": TEXT}
"""A Skyward ``skyward.relationships`` entry (a CSV bundle carries them in skyward_relationships.csv)."""
ROLE = {"roleType": TEXT, "role": TEXT, "org": REF, "userProfile": REF, "beginDate": TEXT, "endDate": TEXT}
"""A 1.2 ``roles[]`` entry (a CSV bundle carries them in roles.csv)."""

USERS = SqlMapping(
    types=TypeChecks(ids=["sourcedId"], refs=["primaryOrg"],
                     names=["givenName", "familyName", "middleName", "preferredFirstName"]),
    fields={**COMMON_FIELDS, **dict.fromkeys(_PERSON.values(), TEXT),
            "preferredFirstName": Carried(TEXT, header="preferredGivenName"), "userMasterIdentifier": TEXT,
            "role": TEXT, "roles": Carried(RAW, Joined("roles", "userSourcedId", ROLE)), "orgs": REFS, "primaryOrg": GUIDREF, "grades": CODES,
            "birthDate": RAW, "userIds": Carried(RAW, "user_ids"), "agents": Carried(RAW, "refs"),
            "metadata": {"skyward.gradYear": TEXT, "skyward.stateId": TEXT, "skyward.birthDate": RAW,
                         "skyward.primaryOrgSourcedId": TEXT, "skyward.preferredFirstName": TEXT,
                         "skyward.relationships": Carried(RAW, Joined("skyward_relationships", "contactSourcedId", LINK))}},
    derived={
        # user_roles(): 1.2 roles[] when it is a non-empty list, else 1.1 role and orgs
        "roles": f"CASE WHEN {key('roles')} <> '[]' THEN {json_list(key('roles'))} END",
        "role_entries": f"list_filter(roles, lambda e: {is_object('e')})",
        "primary_role": "coalesce(list_filter(role_entries, lambda e: json_extract_string(e, '$.roleType') = 'primary')[1],"
                        " role_entries[1])",
        "role": f"CASE WHEN roles IS NOT NULL THEN {text(field_of('primary_role', 'role'))} ELSE {key('role')} END",
        "role_schools": f"list_transform(role_entries, lambda e: {ref(field_of('e', 'org'))})",
        "schools": f"CASE WHEN roles IS NOT NULL THEN {unique('role_schools')} ELSE coalesce({refs_field('orgs')}, []) END",
        "primary_org": f"CASE WHEN roles IS NOT NULL AND NOT coalesce({ref(key('primaryOrg'))} <> '', false)"
                       f" THEN {ref(field_of('primary_role', 'org'))} ELSE {ref(key('primaryOrg'))} END",
        "primary_school": f"CASE WHEN primary_org <> '' THEN primary_org"
                          f" ELSE {METADATA}.\"skyward.primaryOrgSourcedId\" END",
        # user_entity()
        "role_word": f"lower({stripped('role')})",
        "entity": "CASE WHEN coalesce(role_word, '') = '' THEN NULL WHEN role_word = 'student' THEN 'students'"
                  " WHEN role_word IN ('guardian', 'parent', 'relative') THEN 'contacts' ELSE 'staff' END",
        # _state_id()
        "state_ids": f"list_filter({json_list(key('userIds'))}, lambda u: {is_object('u')}"
                     " AND replace(lower(json_extract_string(u, '$.type')), '_', '') IN ('stateid', 'state'))",
        "state_id": f"CASE WHEN {key('userMasterIdentifier')} <> '' THEN {key('userMasterIdentifier')}"
                    f" WHEN len(state_ids) > 0 THEN {text(field_of('state_ids[1]', 'identifier'))}"
                    f" ELSE {METADATA}.\"skyward.stateId\" END",
        # _student_contacts(): the extension (maybe as JSON text), else the agents
        "links_text": f"CASE WHEN {CONTACT} AND left({RELATIONSHIPS}, 1) = '\"' THEN {text(RELATIONSHIPS)} END",
        "links_json": f"CASE WHEN links_text IS NULL THEN {RELATIONSHIPS}"
                      " WHEN json_valid(links_text) THEN json(links_text) END",
        "links": f"CASE WHEN NOT {CONTACT} THEN NULL WHEN coalesce(links_json, 'null') = 'null' THEN list_transform("
                 f"coalesce({refs(key('agents'))}, []), lambda s: json_object('studentSourcedId', s, 'relationship', 'guardian'))"
                 f" ELSE {json_list('links_json')} END",
    },
    checks=(
        ("roles IS NOT NULL AND len(role_entries) = 0", "roles[] has no role objects"),
        ("entity IS NULL", "no role"),
        *NO_ID,
        (f"{NOT_ITERABLE} AND {key('userIds')} = 'true'", "unreadable record (TypeError: 'bool' object is not iterable)"),
        (f"{NOT_ITERABLE} AND regexp_full_match({key('userIds')}, '-?[0-9]+')",
         "unreadable record (TypeError: 'int' object is not iterable)"),
        (f"{NOT_ITERABLE} AND {key('userIds')} <> 'true'", "unreadable record (TypeError: 'float' object is not iterable)"),
        (f"{CONTACT} AND links_text IS NOT NULL AND NOT json_valid(links_text)",
         "unreadable record (JSONDecodeError: metadata skyward.relationships is text but not JSON)"),
        (f"{CONTACT} AND links IS NULL", "metadata skyward.relationships is not a list"),
        (f"{CONTACT} AND list_bool_or(list_transform(links, lambda l: NOT {is_object('l')}"
         f" OR {text(field_of('l', 'studentSourcedId'))} IS NULL))",
         "a skyward.relationships entry has no studentSourcedId"),
    ),
    rows={
        "students": Rows(
            {**COMMON, **PERSON, "grades": texts(key("grades")), "school_sis_ids": "schools",
             "primary_school_sis_id": "primary_school", "grad_year": f'{METADATA}."skyward.gradYear"',
             "birth_date": text(either(key("birthDate"), f'{METADATA}."skyward.birthDate"'))},
            when="entity = 'students'"),
        "staff": Rows({**COMMON, **PERSON, "role": "role", "school_sis_ids": "schools",
                       "primary_school_sis_id": "primary_school"}, when="entity = 'staff'"),
        "contacts": Rows({**COMMON, **PERSON, "role": "role"}, when=CONTACT),
        "student_contacts": Rows(
            {"sis_id": f"i.studentSourcedId || '|' || {key('sourcedId')}", "status": key("status"),
             "date_last_modified": key("dateLastModified"), "student_sis_id": "i.studentSourcedId",
             "contact_sis_id": key("sourcedId"), "relationship": "i.relationship",
             "emergency_contact": "i.emergencyContact", "custodial": "i.custodial",
             "pickup_allowed": "i.pickupAllowed", "contact_order": "i.contactOrder"},
            when=CONTACT, each="links", item=LINK, payload="item"),
    },
)

ONEROSTER_SQL = {
    "orgs": ORGS,
    "academicSessions": ACADEMIC_SESSIONS,
    "courses": COURSES,
    "classes": CLASSES,
    "enrollments": ENROLLMENTS,
    "demographics": DEMOGRAPHICS,
    "users": USERS,
}
"""OneRoster type (as :func:`..sources.oneroster_records.oneroster_kind` names it) -> its mapping."""
