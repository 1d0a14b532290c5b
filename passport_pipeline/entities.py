"""The one entity registry: every stage reads it instead of repeating entity lists.

Each canonical roster entity (DESIGN.md §4) has a name, the columns every source client
produces for it, and its references to other entities. Raw tables keep values exactly as the
source sent them — strings, or lists of strings — so nothing is lost before the rules decide;
types are applied in staging, where a bad value becomes an issue instead of an error.

Each entity also says which of its columns are **personal**: they describe a person (a student,
staff member or contact) beyond their place in the roster, so previews and logs show them only
where ``privacy.previews`` allows (:mod:`passport_pipeline.previews`). Each carries why. Not
personal, so always shown: ids and references (``sis_id``, ``school_sis_ids``...: an id names a
record without describing anyone), status and modification dates, a student's grades and
graduation year and a staff member's role (their place in the school, which the class rosters
show anyway), whether an account is enabled, and everything about schools, terms, courses,
classes and enrollments (school names and course titles describe no one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

TEXT = "VARCHAR"
TEXT_LIST = "VARCHAR[]"

COMMON_COLUMNS: dict[str, str] = {
    "sis_id": TEXT,              # the source's id, unprefixed, as sent
    "status": TEXT,              # active | tobedeleted
    "date_last_modified": TEXT,  # ISO 8601 as sent
}

_NAME = "a name of the person"
_REACH = "reaches the person directly"

_PERSON = {
    "username": TEXT,
    "given_name": TEXT,
    "family_name": TEXT,
    "middle_name": TEXT,
    "preferred_first_name": TEXT,
    "identifier": TEXT,
    "state_id": TEXT,
    "email": TEXT,
    "phone": TEXT,
    "sms": TEXT,
    "enabled_user": TEXT,
}

_PERSON_PERSONAL = {
    "username": "signs in as the person, and is usually made of their name",
    "given_name": _NAME,
    "family_name": _NAME,
    "middle_name": _NAME,
    "preferred_first_name": _NAME,
    "identifier": "the student or staff number: identifies the person in the district's systems",
    "state_id": "identifies the person in the state's systems, for life",
    "email": _REACH,
    "phone": _REACH,
    "sms": _REACH,
}


@dataclass(frozen=True)
class Entity:
    """A canonical roster entity: its columns (beyond the common ones) and references."""

    name: str
    description: str
    columns: dict[str, str]
    references: dict[str, str] = field(default_factory=dict)
    """column -> entity it points to (list columns point to several)."""
    personal: dict[str, str] = field(default_factory=dict)
    """column -> why it is personal: it describes the person, so previews hide it by default."""
    person: str | None = None
    """Whom a record describes, when it is a person: entities describing the same person (a
    student's demographics are the student's) share a masked attribute (``birth_date``)."""

    @property
    def all_columns(self) -> dict[str, str]:
        return {**COMMON_COLUMNS, **self.columns}


ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        Entity(
            "schools",
            "Schools (OneRoster orgs of type school), and the district they belong to.",
            {"name": TEXT, "identifier": TEXT, "org_type": TEXT, "parent_sis_id": TEXT},
        ),
        Entity(
            "terms",
            "Calendars: school years, semesters and grading periods.",
            {
                "title": TEXT,
                "term_type": TEXT,
                "start_date": TEXT,
                "end_date": TEXT,
                "parent_sis_id": TEXT,
                "school_year": TEXT,
            },
            {"parent_sis_id": "terms"},
        ),
        Entity(
            "courses",
            "Courses offered by a school.",
            {
                "title": TEXT,
                "course_code": TEXT,
                "grades": TEXT_LIST,
                "subjects": TEXT_LIST,
                "school_sis_id": TEXT,
                "school_year_sis_id": TEXT,
            },
            {"school_sis_id": "schools", "school_year_sis_id": "terms"},
        ),
        Entity(
            "classes",
            "Classes (sections) of a course, in a school, over one or more terms.",
            {
                "title": TEXT,
                "class_code": TEXT,
                "class_type": TEXT,
                "location": TEXT,
                "grades": TEXT_LIST,
                "subjects": TEXT_LIST,
                "periods": TEXT_LIST,
                "course_sis_id": TEXT,
                "school_sis_id": TEXT,
                "term_sis_ids": TEXT_LIST,
            },
            {"course_sis_id": "courses", "school_sis_id": "schools", "term_sis_ids": "terms"},
        ),
        Entity(
            "students",
            "Students, with their schools and grade.",
            {
                **_PERSON,
                "grades": TEXT_LIST,
                "school_sis_ids": TEXT_LIST,
                "primary_school_sis_id": TEXT,
                "grad_year": TEXT,
                "birth_date": TEXT,
            },
            {"school_sis_ids": "schools", "primary_school_sis_id": "schools"},
            personal={**_PERSON_PERSONAL, "birth_date": "gives the child's age and, with a name, who they are"},
            person="student",
        ),
        Entity(
            "staff",
            "Teachers, administrators, aides and counselors.",
            {**_PERSON, "role": TEXT, "school_sis_ids": TEXT_LIST, "primary_school_sis_id": TEXT},
            {"school_sis_ids": "schools", "primary_school_sis_id": "schools"},
            personal=_PERSON_PERSONAL,
            person="staff member",
        ),
        Entity(
            "contacts",
            "Guardians, parents and emergency contacts of students.",
            {**_PERSON, "role": TEXT},
            personal={**_PERSON_PERSONAL, "role": "parent, guardian or relative: how the person is related to a child"},
            person="contact",
        ),
        Entity(
            "student_contacts",
            "Which contact belongs to which student: relationship, emergency, custody, pickup.",
            {
                "student_sis_id": TEXT,
                "contact_sis_id": TEXT,
                "relationship": TEXT,
                "emergency_contact": TEXT,
                "custodial": TEXT,
                "pickup_allowed": TEXT,
                "contact_order": TEXT,
            },
            {"student_sis_id": "students", "contact_sis_id": "contacts"},
            personal={
                "relationship": "how the contact is related to the child (mother, neighbor...)",
                "emergency_contact": "a custody and safety detail of the child",
                "custodial": "a custody detail, which may follow a court order",
                "pickup_allowed": "who may take the child from school: a custody and safety detail",
                "contact_order": "whom the school calls first: a detail of the family",
            },
        ),
        Entity(
            "enrollments",
            "A student or teacher in a class, with role, primary flag and dates.",
            {
                "user_sis_id": TEXT,
                "class_sis_id": TEXT,
                "school_sis_id": TEXT,
                "role": TEXT,
                "primary": TEXT,
                "begin_date": TEXT,
                "end_date": TEXT,
            },
            {"class_sis_id": "classes", "school_sis_id": "schools"},
        ),
        Entity(
            "demographics",
            "Per-student demographics: birth date, sex, race and ethnicity, birthplace.",
            {
                "birth_date": TEXT,
                "sex": TEXT,
                "american_indian_or_alaska_native": TEXT,
                "asian": TEXT,
                "black_or_african_american": TEXT,
                "native_hawaiian_or_other_pacific_islander": TEXT,
                "white": TEXT,
                "demographic_race_two_or_more_races": TEXT,
                "hispanic_or_latino_ethnicity": TEXT,
                "country_of_birth_code": TEXT,
                "state_of_birth_abbreviation": TEXT,
                "city_of_birth": TEXT,
                "public_school_residence_status": TEXT,
            },
            {"sis_id": "students"},
            personal={
                "birth_date": "gives the child's age and, with a name, who they are",
                "sex": "a protected characteristic",
                **{race: "race or ethnicity: a protected characteristic" for race in (
                    "american_indian_or_alaska_native", "asian", "black_or_african_american",
                    "native_hawaiian_or_other_pacific_islander", "white",
                    "demographic_race_two_or_more_races", "hispanic_or_latino_ethnicity")},
                "country_of_birth_code": "where the child was born: origin, and with it often immigration",
                "state_of_birth_abbreviation": "where the child was born",
                "city_of_birth": "where the child was born",
                "public_school_residence_status": "where and how the child lives (e.g. without a home)",
            },
            person="student",
        ),
    )
}
"""Every canonical entity, in dependency order (referenced before referencing)."""

USERS = ("students", "staff")
"""The entities an enrollment's ``user_sis_id`` may name."""


def links(entity: str) -> dict[str, tuple[str, ...]]:
    """Every column of ``entity`` naming records of other entities -> the entities it may name:
    the registry's references, plus an enrollment's user (a student or a staff member)."""
    found = {column: (target,) for column, target in ENTITIES[entity].references.items()}
    if entity == "enrollments":
        found["user_sis_id"] = USERS
    return found
