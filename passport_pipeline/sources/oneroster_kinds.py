"""What a OneRoster collection page must look like to be taken as the collection asked for.

Servers that lack an endpoint have been seen answering it with another collection (200, the
schools list under ``schools`` for ``schools/{id}/courses``); landing those rows would file
schools as courses and call the read complete. So a page is accepted only when:

- its body is an object with exactly one list, under the spec's plural key for the endpoint's
  type (``users`` for ``students``) or under the endpoint's own name (``students``: some
  servers name the wrapper after the endpoint, SOURCE_APIS.md quirk 4) — a bare list is never
  OneRoster;
- it is empty, or at least one of its records carries its type's :data:`SIGNATURES`. A page
  where only some records lack it is still data: landing quarantines the broken ones.

The check stops at the first record that matches, normally the first, so it costs nothing
next to parsing the page.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from passport_pipeline.sources.errors import WrongKind

SIGNATURES: dict[str, Callable[[dict], bool]] = {
    "enrollments": lambda r: "user" in r and "class" in r,
    "classes": lambda r: "title" in r and ("course" in r or "school" in r),
    "courses": lambda r: "title" in r and ("org" in r or "courseCode" in r),
    "academicSessions": lambda r: "startDate" in r and "endDate" in r,
    "orgs": lambda r: "name" in r and "type" in r,
    "users": lambda r: ("role" in r or "roles" in r) and "class" not in r,
    "demographics": lambda r: True,
}
"""OneRoster type -> whether a record has the fields the spec requires of it and that tell it
apart from the other types (an enrollment has a ``role`` too, a course a ``title``; a 1.2 user
has ``roles`` instead of ``role``). Demographics share no telling field: any object passes."""

SIGNATURE_TEXT = {
    "enrollments": "an enrollment has a user and a class",
    "classes": "a class has a title and a course or school",
    "courses": "a course has a title and an org or courseCode",
    "academicSessions": "an academicSession has a startDate and an endDate",
    "orgs": "an org has a name and a type",
    "users": "a user has a role (1.1) or roles (1.2)",
    "demographics": "demographics may have any fields",
}
""":data:`SIGNATURES` in words, for the message of a wrong page."""


def page_records(body: object, endpoint: str, kind: str, names: Collection[str]) -> list:
    """The records of a collection page of ``endpoint``, which serves OneRoster type ``kind``.

    ``names`` are the other wrapper keys accepted (the endpoint's own name). Raises
    :class:`WrongKind` when the page is not of that type.
    """
    if not isinstance(body, dict):
        shape = "a bare JSON list" if isinstance(body, list) else f"{type(body).__name__} JSON"
        raise WrongKind(f"{endpoint} answered {shape} where OneRoster wraps its records in "
                        f"{{\"{kind}\": [...]}}{_NOT_ONEROSTER}", endpoint=endpoint, expected=kind,
                        received="a bare list" if isinstance(body, list) else type(body).__name__)
    lists = [key for key, value in body.items() if isinstance(value, list)]
    if len(lists) != 1:
        found = f"several lists ({', '.join(lists)})" if lists else f"no list (keys: {', '.join(body) or 'none'})"
        raise WrongKind(f"{endpoint} answered {found} where one list of {kind} was expected{_NOT_ONEROSTER}",
                        endpoint=endpoint, expected=kind)
    (key,) = lists
    if key != kind and key not in names:
        raise WrongKind(f"{endpoint} answered a list of '{key}' where {_wanted(endpoint, kind)} were expected"
                        f"{_NOT_ONEROSTER}", endpoint=endpoint, expected=kind, received=key)
    records = body[key]
    looks = SIGNATURES[kind]
    if records and not any(isinstance(record, dict) and looks(record) for record in records):
        seen = _looks_like(records)
        one = len(records) == 1
        count = f"{len(records)} record{'' if one else 's'}"
        what = f"that look{'s' if one else ''} like {seen}" if seen else "of no OneRoster type"
        raise WrongKind(f"{endpoint} answered {count} under '{key}' {what}, where {_wanted(endpoint, kind)} "
                        f"were expected (in OneRoster, {SIGNATURE_TEXT[kind]}){_NOT_ONEROSTER}",
                        endpoint=endpoint, expected=kind, received=seen)
    return records


_NOT_ONEROSTER = (": the server does not serve this endpoint as OneRoster describes it. Check the base "
                  "path and the endpoint settings; if they are right, the server lacks this endpoint.")


def _wanted(endpoint: str, kind: str) -> str:
    name = endpoint.rstrip("/").rsplit("/", 1)[-1]
    return name if name == kind else f"{name} ({kind})"


def _looks_like(records: list) -> str | None:
    """The type the records of a wrong page look like, to name it in the message."""
    for kind, looks in SIGNATURES.items():
        if kind != "demographics" and any(isinstance(r, dict) and looks(r) for r in records):
            return kind
    return None
