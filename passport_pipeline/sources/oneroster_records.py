"""The few things the OneRoster client reads in a record itself, before any landing.

Landing turns records into canonical rows in SQL, from the field map
(:mod:`passport_pipeline.warehouse.normalize_sql_oneroster`). The client needs only enough to
route records: which OneRoster type a path serves, and a user's role and schools — to keep the
users of one role (staff or contacts from ``/users``) and to split a collection by school.
A 1.2 user's ``roles[]`` gives its primary role (``roleType: primary``, else the first) and its
schools; a 1.1 user has ``role`` and ``orgs``. The shape of the record decides, not the version.
"""

from __future__ import annotations

KINDS = {
    "orgs": "orgs", "schools": "orgs",
    "academicSessions": "academicSessions", "terms": "academicSessions", "gradingPeriods": "academicSessions",
    "courses": "courses", "classes": "classes", "enrollments": "enrollments", "demographics": "demographics",
    "users": "users", "students": "users", "teachers": "users",
}
"""Collection name (spec or Skyward alias) -> the OneRoster type it serves."""

CONTACT_ROLES = frozenset({"guardian", "parent", "relative"})


def oneroster_kind(path: str) -> str:
    """The OneRoster type a collection path serves: ``schools/{id}/students`` -> ``users``."""
    last = path.strip("/").rsplit("/", 1)[-1]
    if last not in KINDS:
        raise ValueError(f"{path!r} is not a OneRoster collection this project reads")
    return KINDS[last]


def ref(value: object) -> str | None:
    """The id a reference names: a GUIDRef's ``sourcedId``, or a bare id."""
    found = value.get("sourcedId") if isinstance(value, dict) else value
    return None if found is None or isinstance(found, (dict, list)) else str(found)


def user_roles(record: dict) -> tuple[str | None, list[str]]:
    """``(primary role, school ids)`` of a 1.1 or 1.2 user; ValueError when its roles cannot be read."""
    roles = record.get("roles")
    if isinstance(roles, list) and roles:
        entries = [entry for entry in roles if isinstance(entry, dict)]
        if not entries:
            raise ValueError("roles[] has no role objects")
        primary = next((entry for entry in entries if entry.get("roleType") == "primary"), entries[0])
        schools = [ref(entry.get("org")) for entry in entries]
        return ref(primary.get("role")), list(dict.fromkeys(s for s in schools if s is not None))
    orgs = record.get("orgs")
    orgs = orgs if isinstance(orgs, list) else [] if orgs is None else [orgs]
    return ref(record.get("role")), [school for school in map(ref, orgs) if school is not None]


def user_entity(role: str | None) -> str | None:
    """Which canonical entity a user of ``role`` becomes: students, contacts, else staff (None: no role)."""
    if role is None or not role.strip():
        return None
    key = role.strip().lower()
    if key == "student":
        return "students"
    return "contacts" if key in CONTACT_ROLES else "staff"
