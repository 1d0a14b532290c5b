"""What each OneRoster entity looks like in JSON, per version, as SQL over the district store.

Every JSON field of an entity is a :class:`Field`: the SQL that builds its JSON value, and the
SQL of a plain comparable value (its *key*) that ``filter`` and ``sort`` use. The request engine
(:mod:`.oneroster`) packs the chosen fields into ``to_json(struct_pack(...))`` so whole pages
are rendered inside DuckDB; it binds ``$base`` (this version's absolute base URL, for GUIDRef
hrefs) and ``$visible`` (the schools a restricted credential sees, or NULL).

Field SQL runs over :attr:`Entity.source`, whose main table is aliased ``t``; joined columns
carry names of their own so plain column names never clash.

Version 1.2 differs from 1.1 only in users: ``roles[]`` (one role per org; ``primaryOrg`` or
else the first org is the primary one) replaces ``role`` + ``orgs``, store roles ``counselor``
and ``principal`` keep their names (1.1 has no such roles and calls them ``administrator``),
and users gain ``userMasterIdentifier`` (the state id), ``preferredFirstName`` and
``primaryOrg``. The store has no pronouns or user profiles, so neither is served.

Skyward extensions live in ``metadata``, every value a string as OneRoster scalars are:
``skyward.nativeId`` (SMS 2.0 id) on orgs, sessions, courses, classes and users; orgs add
``skyward.schoolLevel``, ``skyward.gradeLow`` and ``skyward.gradeHigh``; students add
``skyward.stateId`` and ``skyward.gradYear``; contacts (guardian, parent, relative) add
``skyward.relationships``: one ``{studentSourcedId, relationship, emergencyContact, custodial,
pickupAllowed, contactOrder}`` per linked student. Enrollments and demographics carry none.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

Kind = Literal["text", "date", "timestamp", "boolean", "list"]


@dataclass(frozen=True)
class Field:
    """One JSON field: ``value`` builds it; ``key`` (of ``kind``) filters and sorts by it."""

    value: str
    key: str | None = None
    kind: Kind = "text"
    guid_ref: bool = False


@dataclass(frozen=True)
class Entity:
    """A OneRoster entity served from one store table."""

    table: str
    source: str
    fields: dict[str, Field]
    visible_when: str | None = None
    """Rows a restricted credential sees (SQL over ``$visible``); None: all of them."""
    extra_filters: dict[str, Field] = field(default_factory=dict)
    """Filterable names that are not top-level fields (e.g. ``roles.role`` on 1.2 users)."""

    def filter_field(self, name: str) -> Field | None:
        """The field a filter or sort names: a field with a key, or ``<GUIDRef>.sourcedId``."""
        if name in self.extra_filters:
            return self.extra_filters[name]
        if name.endswith(".sourcedId"):
            ref = self.fields.get(name.removesuffix(".sourcedId"))
            return ref if ref is not None and ref.guid_ref else None
        found = self.fields.get(name)
        return found if found is not None and found.key is not None else None


def text(column: str) -> Field:
    return Field(column, column, "text")


def date(column: str) -> Field:
    return Field(column, column, "date")


def flag(column: str) -> Field:
    """A boolean served as the string "true"/"false", as OneRoster does."""
    return Field(f"CAST({column} AS VARCHAR)", column, "boolean")


def strings(column: str) -> Field:
    return Field(f"coalesce({column}, [])", column, "list")


def _guid_ref(id_sql: str, collection: str, ref_type: str) -> str:
    return (
        f"struct_pack(href := $base || '/{collection}/' || url_encode({id_sql}), "
        f"sourcedId := {id_sql}, type := '{ref_type}')"
    )


def ref(column: str, collection: str, ref_type: str) -> Field:
    """A GUIDRef ``{href, sourcedId, type}``, filterable by its sourcedId."""
    value = f"CASE WHEN {column} IS NOT NULL THEN {_guid_ref(column, collection, ref_type)} END"
    return Field(value, column, "text", guid_ref=True)


def refs(column: str, collection: str, ref_type: str) -> Field:
    """A list of GUIDRefs, filterable by the sourcedIds it contains."""
    value = f"list_transform(coalesce({column}, []), lambda x: {_guid_ref('x', collection, ref_type)})"
    return Field(value, column, "list", guid_ref=True)


def _json_object(pairs: dict[str, str]) -> str:
    return "json_object(" + ", ".join(f"'{name}', {sql}" for name, sql in pairs.items()) + ")"


NATIVE_ID = {"skyward.nativeId": "CAST(native_id AS VARCHAR)"}


def _common(metadata: dict[str, str] | None = None) -> dict[str, Field]:
    """The fields every entity has; ``metadata`` maps extension names to their SQL."""
    fields = {
        "sourcedId": text("sourced_id"),
        "status": text("status"),
        "dateLastModified": Field(
            "strftime(date_last_modified, '%Y-%m-%dT%H:%M:%S.%gZ')", "date_last_modified", "timestamp"
        ),
    }
    if metadata:
        fields["metadata"] = Field(_json_object(metadata))
    return fields


ORG = Entity(
    table="orgs",
    source="""orgs t LEFT JOIN (SELECT parent_id AS child_parent_id,
                                       list(sourced_id ORDER BY sourced_id) AS child_ids
                                FROM orgs GROUP BY parent_id) ON child_parent_id = t.sourced_id""",
    fields={
        **_common({**NATIVE_ID, "skyward.schoolLevel": "school_level",
                   "skyward.gradeLow": "grade_low", "skyward.gradeHigh": "grade_high"}),
        "name": text("name"),
        "type": text("type"),
        "identifier": text("identifier"),
        "parent": ref("parent_id", "orgs", "org"),
        "children": refs(
            "list_filter(child_ids, lambda c: $visible IS NULL OR list_contains($visible, c))",
            "orgs", "org",
        ),
    },
    visible_when="(type = 'district' OR list_contains($visible, sourced_id))",
)

ACADEMIC_SESSION = Entity(
    table="academic_sessions",
    source="""academic_sessions t LEFT JOIN (
                  SELECT parent_id AS child_parent_id, list(sourced_id ORDER BY sourced_id) AS child_ids
                  FROM academic_sessions GROUP BY parent_id) ON child_parent_id = t.sourced_id""",
    fields={
        **_common(NATIVE_ID),
        "title": text("title"),
        "type": text("type"),
        "startDate": date("start_date"),
        "endDate": date("end_date"),
        "parent": ref("parent_id", "academicSessions", "academicSession"),
        "children": refs("child_ids", "academicSessions", "academicSession"),
        "schoolYear": text("CAST(school_year AS VARCHAR)"),
    },
)

COURSE = Entity(
    table="courses",
    source="courses t",
    fields={
        **_common(NATIVE_ID),
        "title": text("title"),
        "schoolYear": ref("school_year_id", "academicSessions", "academicSession"),
        "courseCode": text("course_code"),
        "grades": strings("grades"),
        "subjects": strings("subjects"),
        "org": ref("org_id", "orgs", "org"),
        "subjectCodes": strings("subject_codes"),
    },
    visible_when="list_contains($visible, org_id)",
)

CLASS = Entity(
    table="classes",
    source="classes t",
    fields={
        **_common(NATIVE_ID),
        "title": text("title"),
        "classCode": text("class_code"),
        "classType": text("class_type"),
        "location": text("location"),
        "grades": strings("grades"),
        "subjects": strings("subjects"),
        "course": ref("course_id", "courses", "course"),
        "school": ref("school_id", "orgs", "org"),
        "terms": refs("term_ids", "academicSessions", "academicSession"),
        "periods": strings("periods"),
    },
    visible_when="list_contains($visible, school_id)",
)

ENROLLMENT = Entity(
    table="enrollments",
    source="enrollments t",
    fields={
        **_common(),
        "user": ref("user_id", "users", "user"),
        "class": ref("class_id", "classes", "class"),
        "school": ref("school_id", "orgs", "org"),
        "role": text("role"),
        "primary": flag('"primary"'),
        "beginDate": date("begin_date"),
        "endDate": date("end_date"),
    },
    visible_when="list_contains($visible, school_id)",
)

_RACES = {
    "americanIndianOrAlaskaNative": "american_indian_or_alaska_native",
    "asian": "asian",
    "blackOrAfricanAmerican": "black_or_african_american",
    "nativeHawaiianOrOtherPacificIslander": "native_hawaiian_or_other_pacific_islander",
    "white": "white",
    "demographicRaceTwoOrMoreRaces": "demographic_race_two_or_more_races",
    "hispanicOrLatinoEthnicity": "hispanic_or_latino_ethnicity",
}

DEMOGRAPHICS = Entity(
    table="demographics",
    source="demographics t",
    fields={
        **_common(),
        "birthDate": date("birth_date"),
        "sex": text("sex"),
        **{name: flag(column) for name, column in _RACES.items()},
        "countryOfBirthCode": text("country_of_birth_code"),
        "stateOfBirthAbbreviation": text("state_of_birth_abbreviation"),
        "cityOfBirth": text("city_of_birth"),
        "publicSchoolResidenceStatus": text("public_school_residence_status"),
    },
    visible_when="sourced_id IN (SELECT sourced_id FROM users WHERE list_has_any(org_ids, $visible))",
)

_CONTACT_ROLES = ("guardian", "parent", "relative")

_RELATIONSHIP = """struct_pack(
    studentSourcedId := r.student_id, relationship := r.relationship,
    emergencyContact := CAST(r.emergency_contact AS VARCHAR), custodial := CAST(r.custodial AS VARCHAR),
    pickupAllowed := CAST(r.pickup_allowed AS VARCHAR), contactOrder := CAST(r.contact_order AS VARCHAR))"""

_STUDENT_METADATA = {
    **NATIVE_ID, "skyward.stateId": "state_id", "skyward.gradYear": "CAST(grad_year AS VARCHAR)",
}
_CONTACT_METADATA = {
    **NATIVE_ID,
    "skyward.relationships": f"list_transform(coalesce(relationships, []), lambda r: {_RELATIONSHIP})",
}

_USER_METADATA = Field(
    f"""CASE WHEN role = 'student' THEN {_json_object(_STUDENT_METADATA)}
             WHEN role IN {_CONTACT_ROLES} THEN {_json_object(_CONTACT_METADATA)}
             ELSE {_json_object(NATIVE_ID)} END"""
)

_USER_IDS = Field(
    "CASE WHEN state_id IS NULL THEN [] ELSE [struct_pack(type := 'stateId', identifier := state_id)] END"
)

_V1P1_ROLE = "CASE WHEN role IN ('counselor', 'principal') THEN 'administrator' ELSE role END"

_USER_V1P1 = {
    **_common(),
    "metadata": _USER_METADATA,
    "username": text("username"),
    "userIds": _USER_IDS,
    "enabledUser": flag("enabled_user"),
    "givenName": text("given_name"),
    "familyName": text("family_name"),
    "middleName": text("middle_name"),
    "role": text(_V1P1_ROLE),
    "identifier": text("identifier"),
    "email": text("email"),
    "sms": text("sms"),
    "phone": text("phone"),
    "agents": refs("agent_ids", "users", "user"),
    "orgs": refs("org_ids", "orgs", "org"),
    "grades": strings("grades"),
}

_PRIMARY_ORG = "CASE WHEN list_contains(org_ids, primary_org_id) THEN primary_org_id ELSE org_ids[1] END"

_ROLES = Field(
    f"""list_transform(org_ids, lambda o: struct_pack(
            roleType := CASE WHEN o = {_PRIMARY_ORG} THEN 'primary' ELSE 'secondary' END,
            role := role, org := {_guid_ref('o', 'orgs', 'org')}))"""
)

_V1P2_ONLY = {
    "userMasterIdentifier": text("state_id"),
    "preferredFirstName": text("preferred_first_name"),
    "roles": _ROLES,
    "primaryOrg": ref("primary_org_id", "orgs", "org"),
}

_USER_V1P2 = {
    name: {**_USER_V1P1, **_V1P2_ONLY}[name]
    for name in (
        "sourcedId", "status", "dateLastModified", "metadata", "userMasterIdentifier", "username",
        "userIds", "enabledUser", "givenName", "familyName", "middleName", "preferredFirstName",
        "roles", "identifier", "email", "sms", "phone", "agents", "primaryOrg", "grades",
    )
}

USER_V1P1 = Entity(
    table="users",
    source="users t",
    fields=_USER_V1P1,
    visible_when="list_has_any(org_ids, $visible)",
)

USER_V1P2 = replace(
    USER_V1P1,
    fields=_USER_V1P2,
    extra_filters={"roles.role": text("role"), "roles.org.sourcedId": strings("org_ids")},
)

_V1P1 = {
    "org": ORG,
    "academicSession": ACADEMIC_SESSION,
    "course": COURSE,
    "class": CLASS,
    "user": USER_V1P1,
    "enrollment": ENROLLMENT,
    "demographics": DEMOGRAPHICS,
}

ENTITIES: dict[str, dict[str, Entity]] = {
    "v1p1": _V1P1,
    "v1p2": {**_V1P1, "user": USER_V1P2},
}
"""version -> entity name (the spec's singular wrapper key) -> Entity."""
