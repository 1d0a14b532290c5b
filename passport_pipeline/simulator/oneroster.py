"""The OneRoster 1.1 / 1.2 request engine: one GET request in, one HTTP reply out.

The HTTP server authenticates, decodes the URL and injects faults; this module answers from
the district store: routing of collection, single and nested paths, scopes, restricted
credentials, ``limit``/``offset``/``sort``/``orderBy``/``fields``/``filter`` (parsed by
:mod:`.oneroster_filter`), paging headers and imsx errors. :func:`handle` never raises for bad
input: every problem becomes an error reply.

Pages are rendered by DuckDB (:mod:`.oneroster_fields` says how), so a page costs a few
milliseconds. A plain page of a whole table (no filter, default order or ``sort=sourcedId``,
unrestricted) is the ``seq`` range ``[offset, offset + limit)`` and costs the same at any
offset; anything else runs as ``ORDER BY ... LIMIT ... OFFSET`` over the matching rows, as a
real server's database would.

Choices the spec leaves open:

- ``terms`` are every academic session but grading periods (which have their own endpoint):
  school years, semesters and terms, since a class's ``terms`` may name any of them (year-long
  classes run in the school year). ``schools/{id}/terms`` are those the school's classes run in.
- ``teachers`` are users of role ``teacher`` only; a class's students/teachers are such users
  with an enrollment (of any status) in the class.
- Filters compare ``dateLastModified`` as a timestamp, dates as dates, booleans as
  ``true``/``false``; on list fields (``grades``, ``orgs``...) ``=`` means "contains", ``!=``
  "does not contain" and ``~`` "an element contains"; a GUIDRef filters by its id as
  ``school='x'`` or ``school.sourcedId='x'``. ``!=`` matches missing values too. ``AND``/``OR``
  are upper case, as in the spec.
- ``demographics`` need the demographics scope even when ``roster.readonly`` is granted.
- The ``empty`` fault empties collections only; singles answer as usual.

Faults the server passes with a request (:mod:`.faults` describes them): ``nested_not_found``
and ``nested_as_schools`` reroute every nested ``schools/{id}/...`` path (404, or the
``schools`` page under the key ``schools``, whatever the school id);
``nested_students_from_enrollments`` changes who belongs to ``schools/{id}/students``;
``short_rows`` stops a collection after that many rows while its count stays true.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import quote, urlencode

import duckdb

from passport_pipeline.simulator.oneroster_fields import ENTITIES, Entity
from passport_pipeline.simulator.oneroster_filter import FilterError, filter_sql

VERSIONS = ("v1p1", "v1p2")
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000


def _scope(version: str, name: str) -> str:
    return f"https://purl.imsglobal.org/spec/or/{version}/scope/{name}.readonly"


SCOPES: dict[str, list[str]] = {
    v: [_scope(v, "roster-core"), _scope(v, "roster"), _scope(v, "roster-demographics")] for v in VERSIONS
}


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class OneRosterRequest:
    version: Literal["v1p1", "v1p2"]
    path: str
    query: Mapping[str, str]
    base_url: str
    granted_scopes: frozenset[str]
    visible_schools: frozenset[str] | None = None
    clamp_limit: int | None = None
    overlap_rows: int = 0
    non_spec_wrappers: bool = False
    empty: bool = False
    plain_errors: bool = False
    nested_not_found: bool = False
    nested_as_schools: bool = False
    nested_students_from_enrollments: bool = False
    short_rows: int | None = None
    """When set, the collection serves only its first ``short_rows`` matching rows."""


@dataclass(frozen=True)
class Collection:
    """A collection path: the entity it serves, which rows of it, and its own wrapper names."""

    entity: str
    where: str | None = None
    singular: str | None = None

    def wrapper(self, name: str, single: bool, spec: bool) -> str:
        if spec:
            return self.entity if single else _PLURALS[self.entity]
        return (self.singular or self.entity) if single else name


_PLURALS = {"org": "orgs", "academicSession": "academicSessions", "course": "courses", "class": "classes",
            "user": "users", "enrollment": "enrollments", "demographics": "demographics"}

COLLECTIONS = {
    "academicSessions": Collection("academicSession"),
    "classes": Collection("class"),
    "courses": Collection("course"),
    "demographics": Collection("demographics"),
    "enrollments": Collection("enrollment"),
    "gradingPeriods": Collection("academicSession", "type = 'gradingPeriod'", "gradingPeriod"),
    "orgs": Collection("org"),
    "schools": Collection("org", "type = 'school'", "school"),
    "students": Collection("user", "role = 'student'", "student"),
    "teachers": Collection("user", "role = 'teacher'", "teacher"),
    "terms": Collection("academicSession", "type IN ('schoolYear', 'semester', 'term')", "term"),
    "users": Collection("user"),
}

_CLASS_MEMBERS = "sourced_id IN (SELECT user_id FROM enrollments WHERE class_id = $parent)"
_USER_CLASSES = "sourced_id IN (SELECT class_id FROM enrollments WHERE user_id = $parent)"

NESTED = {
    ("schools", "classes"): "school_id = $parent",
    ("schools", "courses"): "org_id = $parent",
    ("schools", "enrollments"): "school_id = $parent",
    ("schools", "students"): "list_contains(org_ids, $parent)",
    ("schools", "teachers"): "list_contains(org_ids, $parent)",
    ("schools", "terms"): "sourced_id IN (SELECT unnest(term_ids) FROM classes WHERE school_id = $parent)",
    ("classes", "enrollments"): "class_id = $parent",
    ("classes", "students"): _CLASS_MEMBERS,
    ("classes", "teachers"): _CLASS_MEMBERS,
    ("courses", "classes"): "course_id = $parent",
    ("students", "classes"): _USER_CLASSES,
    ("teachers", "classes"): _USER_CLASSES,
    ("users", "classes"): _USER_CLASSES,
    ("terms", "classes"): "list_contains(term_ids, $parent)",
    ("terms", "gradingPeriods"): "parent_id = $parent",
}
"""(parent path, child path) -> the child rows belonging to parent ``$parent``."""

NESTED_STUDENTS_FROM_ENROLLMENTS = {
    **NESTED, ("schools", "students"): "sourced_id IN (SELECT user_id FROM enrollments WHERE school_id = $parent)",
}
"""Membership under the ``nested_students_from_enrollments`` fault: a school's students are
those enrolled in its classes."""

_ONLY_UNDER_SCHOOL = {("classes", "enrollments")}  # reachable as schools/{s}/classes/{c}/enrollments


class _Refusal(Exception):
    def __init__(self, status: int, code_minor: str, description: str) -> None:
        super().__init__(description)
        self.status, self.code_minor, self.description = status, code_minor, description


def error_reply(status: int, code_minor: str, description: str, plain: bool = False) -> Reply:
    """An error as OneRoster's imsx status body, or as ``{"error": ...}`` (the plain-errors quirk)."""
    if plain:
        body = {"error": description}
    else:
        body = {
            "imsx_codeMajor": "failure",
            "imsx_severity": "error",
            "imsx_description": description,
            "imsx_CodeMinor": {"imsx_codeMinorField": [
                {"imsx_codeMinorFieldName": "TargetEndSystemReferenceID", "imsx_codeMinorFieldValue": code_minor}
            ]},
        }
    return Reply(status, json.dumps(body).encode(), {"Content-Type": "application/json"})


def required_scope(version: str, path: str) -> str:
    """The scope a path needs: demographics, nested (``roster``) or core."""
    parts = path.split("/")
    if parts[0] == "demographics":
        return _scope(version, "roster-demographics")
    return _scope(version, "roster" if len(parts) > 2 else "roster-core")


def handle(con: duckdb.DuckDBPyConnection, request: OneRosterRequest) -> Reply:
    """Answer one GET of a OneRoster path from the store behind ``con``."""
    try:
        if request.version not in VERSIONS:
            raise _Refusal(404, "unknownobject", f"unknown OneRoster version {request.version!r}")
        nested = NESTED_STUDENTS_FROM_ENROLLMENTS if request.nested_students_from_enrollments else NESTED
        steps = _route(request.path, nested)
        if len(steps) > 1 and steps[0].name == "schools":
            if request.nested_not_found:
                raise _Refusal(404, "unknownobject", f"no such endpoint: /{request.path}")
            if request.nested_as_schools:
                request = replace(request, path="schools", non_spec_wrappers=True)
                steps = _route(request.path, nested)
        _check_scope(request)
        return _answer(con, request, steps)
    except _Refusal as refusal:
        return error_reply(refusal.status, refusal.code_minor, refusal.description, request.plain_errors)
    except duckdb.Error as exc:
        return error_reply(500, "internal_server_error", f"server error: {exc}", request.plain_errors)


@dataclass(frozen=True)
class _Step:
    """One collection along a path, optionally one id in it, tied to the previous step's id."""

    name: str
    sourced_id: str | None = None
    membership: str | None = None
    parent_id: str | None = None


def _route(path: str, nested: Mapping[tuple[str, str], str]) -> list[_Step]:
    parts = path.split("/")
    names, ids = parts[0::2], parts[1::2]
    pairs = list(zip(names, names[1:]))
    if len(parts) == 5:
        shape_ok = names[:2] == ["schools", "classes"] and names[2] in ("enrollments", "students", "teachers")
    else:
        shape_ok = len(parts) <= 3 and not set(pairs) & _ONLY_UNDER_SCHOOL
    known = shape_ok and all(name in COLLECTIONS for name in names) and all(pair in nested for pair in pairs)
    if not known:
        raise _Refusal(404, "unknownobject", f"no such endpoint: /{path}")
    steps = [_Step(names[0], ids[0] if ids else None)]
    for i, pair in enumerate(pairs, start=1):
        steps.append(_Step(names[i], ids[i] if i < len(ids) else None, nested[pair], ids[i - 1]))
    return steps


def _check_scope(request: OneRosterRequest) -> None:
    needed = required_scope(request.version, request.path)
    implied = {_scope(request.version, "roster")} if needed == _scope(request.version, "roster-core") else set()
    if not request.granted_scopes & ({needed} | implied):
        raise _Refusal(403, "forbidden", f"the access token lacks the scope {needed}")


def _answer(con: duckdb.DuckDBPyConnection, request: OneRosterRequest, steps: list[_Step]) -> Reply:
    *parents, last = steps
    entity = _entity(request, last)
    fields = _fields(entity, request.query.get("fields"))
    params: dict[str, object] = {"base": request.base_url, "visible": _visible(request)}
    for step in parents:
        _find(con, request, step, "1", params)
    if last.sourced_id is None:
        return _page(con, request, last, entity, fields, params)
    row = _find(con, request, last, _json(entity, fields), params)
    key = COLLECTIONS[last.name].wrapper(last.name, single=True, spec=not request.non_spec_wrappers)
    return Reply(200, f'{{"{key}":{row}}}'.encode(), {"Content-Type": "application/json"})


def _find(con: duckdb.DuckDBPyConnection, request: OneRosterRequest, step: _Step, select: str, params: dict) -> object:
    """``select`` over the step's one object, or 404 when it is absent or out of sight."""
    where = " AND ".join(_where(step, request) + ["t.sourced_id = $id"])
    sql = f"SELECT {select} FROM {_entity(request, step).source} WHERE {where} LIMIT 1"
    rows = _run(con, sql, {**params, "id": step.sourced_id, "parent": step.parent_id})
    if not rows:
        raise _Refusal(404, "unknownobject", f"{step.name} {step.sourced_id!r} not found")
    return rows[0][0]


def _page(
    con: duckdb.DuckDBPyConnection, request: OneRosterRequest, step: _Step, entity: Entity, fields: list[str],
    params: dict,
) -> Reply:
    query = request.query
    limit = min(_count_param(query, "limit", DEFAULT_LIMIT, minimum=1), MAX_LIMIT, request.clamp_limit or MAX_LIMIT)
    offset = _count_param(query, "offset", 0, minimum=0)
    order, store_order = _order(entity, query)
    try:
        conditions, filter_params = filter_sql(entity, query.get("filter"))
    except FilterError as refused:
        raise _Refusal(400, "invalid_filter_field", str(refused)) from None
    where = _where(step, request) + conditions
    start = max(offset - request.overlap_rows, 0) if offset else 0
    served = limit if request.short_rows is None else max(min(limit, request.short_rows - start), 0)
    params = {**params, **filter_params, "parent": step.parent_id}
    if request.empty:
        rows, total = [], 0
    elif not where and store_order:
        rows = _render(con, entity, fields, params, list(range(start, start + served)))
        total = con.execute(f"SELECT count(*) FROM {entity.table}").fetchone()[0]
    else:
        condition = " AND ".join(where) or "TRUE"
        sql = f"SELECT t.seq FROM {entity.source} WHERE {condition} ORDER BY {order} LIMIT $limit OFFSET $offset"
        seqs = [seq for (seq,) in _run(con, sql, {**params, "limit": served, "offset": start})]
        rows = _render(con, entity, fields, params, seqs)
        total = _run(con, f"SELECT count(*) FROM {entity.source} WHERE {condition}", params)[0][0]
    key = COLLECTIONS[step.name].wrapper(step.name, single=False, spec=not request.non_spec_wrappers)
    body = f'{{"{key}":[{",".join(rows)}]}}'
    headers = {
        "Content-Type": "application/json",
        "X-Total-Count": str(total),
        "Link": _links(request, limit, offset, total),
    }
    return Reply(200, body.encode(), headers)


def _render(
    con: duckdb.DuckDBPyConnection, entity: Entity, fields: list[str], params: dict, seqs: list[int]
) -> list[str]:
    """The JSON of the rows at these ``seq`` positions, in this order.

    Paging picks positions first and renders only them, so a page's JSON costs the same
    wherever the page is; the ``seq`` range lets DuckDB skip the rest of the table, and a
    contiguous range (every plain page) needs nothing else.
    """
    if not seqs:
        return []
    lo, hi = min(seqs), max(seqs)
    picked = "" if hi - lo + 1 == len(seqs) else " AND t.seq IN (SELECT unnest($seqs))"
    sql = f"SELECT t.seq, {_json(entity, fields)} FROM {entity.source} WHERE t.seq BETWEEN $lo AND $hi{picked}"
    rendered = dict(_run(con, sql, {**params, "lo": lo, "hi": hi, "seqs": seqs}))
    return [rendered[seq] for seq in seqs if seq in rendered]


def _run(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object]) -> list[tuple]:
    """Execute with just the named parameters the SQL uses (DuckDB refuses unused ones)."""
    used = set(re.findall(r"\$(\w+)", sql))
    return con.execute(sql, {name: value for name, value in params.items() if name in used}).fetchall()


def _visible(request: OneRosterRequest) -> list[str] | None:
    return None if request.visible_schools is None else sorted(request.visible_schools)


def _entity(request: OneRosterRequest, step: _Step) -> Entity:
    return ENTITIES[request.version][COLLECTIONS[step.name].entity]


def _where(step: _Step, request: OneRosterRequest) -> list[str]:
    """Conditions every answer on this step obeys: its collection, its parent, the credential."""
    where = [COLLECTIONS[step.name].where, step.membership]
    if request.visible_schools is not None:
        where.append(_entity(request, step).visible_when)
    return [condition for condition in where if condition]


def _json(entity: Entity, fields: list[str]) -> str:
    packed = ", ".join(f'"{name}" := {entity.fields[name].value}' for name in fields)
    return f"CAST(to_json(struct_pack({packed})) AS VARCHAR)"


def _fields(entity: Entity, requested: str | None) -> list[str]:
    """The fields to render: all, or the ``fields`` projection (in the order asked)."""
    if not requested:
        return list(entity.fields)
    names = list(dict.fromkeys(name.strip() for name in requested.split(",") if name.strip()))
    if not names:
        return list(entity.fields)
    unknown = [name for name in names if name not in entity.fields]
    if unknown:
        raise _Refusal(400, "invalid_selection_field", f"unknown field(s) in fields: {', '.join(unknown)}")
    return names


def _count_param(query: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"\s*\d{1,18}\s*", raw) or int(raw) < minimum:
        raise _Refusal(400, "invaliddata", f"{name} must be an integer >= {minimum}, got {raw!r}")
    return int(raw)


def _order(entity: Entity, query: Mapping[str, str]) -> tuple[str, bool]:
    """ORDER BY for ``sort``/``orderBy``, and whether that is store (``seq``) order.

    Ties, and no sort at all, keep store order, so paging is stable."""
    direction = query.get("orderBy", "asc").lower()
    if direction not in ("asc", "desc"):
        raise _Refusal(400, "invalid_sort_field", f"orderBy must be asc or desc, got {query['orderBy']!r}")
    name = query.get("sort")
    if not name or (name == "sourcedId" and direction == "asc"):
        return "t.seq", True
    found = entity.filter_field(name)
    if found is None:
        raise _Refusal(400, "invalid_sort_field", f"cannot sort by unknown field {name!r}")
    return f"{found.key} {direction.upper()}, t.seq", False


def _links(request: OneRosterRequest, limit: int, offset: int, total: int) -> str:
    """RFC 5988 Link header: first, prev (offset > 0), next (more rows served), last (by the total)."""
    served_to = total if request.short_rows is None else min(total, request.short_rows)
    path = "/".join(quote(part, safe="") for part in request.path.split("/"))
    kept = {k: v for k, v in request.query.items() if k not in ("limit", "offset")}

    def url(at: int) -> str:
        return f"{request.base_url}/{path}?{urlencode({**kept, 'limit': limit, 'offset': at}, quote_via=quote)}"

    links = [(url(0), "first")]
    if offset > 0:
        links.append((url(max(offset - limit, 0)), "prev"))
    if offset + limit < served_to:
        links.append((url(offset + limit), "next"))
    links.append((url(max(total - 1, 0) // limit * limit), "last"))
    return ", ".join(f'<{target}>; rel="{rel}"' for target, rel in links)
