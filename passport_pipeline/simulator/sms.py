"""The Skyward SMS 2.0 native API ("Read-Only API") over the simulated district.

Base URL ``{server}/api``; token ``POST {base}/token`` (see :mod:`.auth`); every data request
carries ``Authorization: Bearer <token>``. Bodies are bare JSON arrays (single objects for
``/{id}`` paths) with PascalCase fields; dates are .NET style ``2026-08-15T00:00:00``.

Paths (ids are the store's ``native_id``: NameId, SchoolId, SectionId, CourseId, TermId):

=====================================  ====================================================
``v1/schools``, ``v1/schools/{id}``    SchoolId, SchoolName, SchoolCode, GradeLow, GradeHigh
``v1/students``, ``v1/students/{id}``  NameId, DisplayId, StateId, FirstName, MiddleName,
                                       LastName, GradYr, Gender, DateOfBirth, SchoolEmail,
                                       Email, DefaultSchoolId, schoolIds, Status
``v1/students/{id}/enrollments``       school enrollments: SchoolId, EntryDate,
                                       WithdrawalDate, GradeLevel, Status (not paged)
``v1/guardians[?studentNameId=]``      every contact (guardians and other emergency
                                       contacts): GuardianNameId, names, Email, phones,
                                       Students[{StudentNameId, RelationshipDesc,
                                       IsEmergencyContact, IsCustodial, AllowPickup,
                                       ContactOrder}]
``v1/names/{id}``                      any person's name record
``v1/staff``                           one row PER ASSIGNMENT (NameId + SchoolId): a staff
                                       member working in two schools appears twice
``v1/courses``, ``v1/courses/{id}``    CourseId, CourseCode, CourseName, SchoolId, ...
``v1/sections``, ``v1/sections/{id}``  SectionId, CourseId, SchoolId, TermIds,
                                       Teachers[{StaffNameId, IsPrimary}], ...
``v1/terms``, ``v1/terms/{id}``        TermId, TermName, TermType, StartDate, EndDate
``v1/studentschedules[?studentNameId=]``  StudentNameId, SectionId, SchoolId, EntryDate,
                                       ExitDate
=====================================  ====================================================

Every row also has ``Status`` (``Active`` | ``ToBeDeleted``) and ``LastModified``.

Paging: ``paging.limit`` (default 100, capped silently at 1000) and ``paging.cursor``. There is
no total count. While more rows remain, the response has ``Link: <url>; rel="next"``; that URL
names the cursor ``cursor=`` (the real API's rename quirk); only ``paging.cursor`` is read
(a client that follows Link verbatim gets page one again). Cursors are opaque and seek by key, so a page deep in the list costs what the first
costs. Errors are ``{"Message": "..."}`` (``{"error": "..."}`` under the plain-errors fault);
unknown ids and unknown paths are 404.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

import duckdb

from passport_pipeline.simulator.oneroster import Reply

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
STAFF_ROLES = "('teacher', 'aide', 'administrator', 'counselor', 'principal')"
CONTACT_ROLES = "('guardian', 'parent', 'relative')"


@dataclass(frozen=True)
class NativeRequest:
    """One GET on the native API, with what the server's auth and faults decided about it."""

    path: str
    """Relative to the API base, decoded, no leading slash: ``v1/students``."""
    query: Mapping[str, str]
    base_url: str
    """Absolute URL of the API base (``http://host:port/api``), for ``Link`` headers."""
    visible_schools: frozenset[str] | None = None
    """OneRoster sourcedIds of the schools a restricted credential may see."""
    clamp_limit: int | None = None
    overlap_rows: int = 0
    empty: bool = False
    plain_errors: bool = False


@dataclass(frozen=True)
class Listing:
    """One native collection: its rows (as SQL) and how each row is shown (a struct).

    ``rows`` exposes ``key`` (unique sort and cursor key), ``id`` (the native id a ``/{id}``
    path selects) and ``schools`` (school sourcedIds that may see the row; NULL: everyone),
    plus the columns ``shown`` uses as ``r.<column>``. ``joins`` may use ``r`` (the page),
    ``school.id_of`` (sourcedId -> SchoolId), ``$first``/``$last`` (the page's key range) and
    :func:`_visible_to`. ``by_student`` keeps the rows about the student whose NameId is
    ``$student`` (``?studentNameId=``).
    """

    rows: str
    shown: str
    joins: str = ""
    by_student: str | None = None


def _date(column: str) -> str:
    return f"strftime({column}, '%Y-%m-%dT%H:%M:%S')"


def _status(column: str = "r.status") -> str:
    return f"CASE {column} WHEN 'active' THEN 'Active' ELSE 'ToBeDeleted' END"


def _visible_to(schools: str) -> str:
    """SQL: a restricted credential (``$visible``; NULL when unrestricted) sees these schools."""
    return f"($visible::VARCHAR[] IS NULL OR list_has_any({schools}, $visible::VARCHAR[]))"


_COMMON = f"'Status': {_status()}, 'LastModified': {_date('r.date_last_modified')}"
_NAMES = "'FirstName': r.given_name, 'MiddleName': r.middle_name, 'LastName': r.family_name"

LISTINGS: dict[str, Listing] = {
    "schools": Listing(
        rows="SELECT sourced_id AS key, native_id AS id, [sourced_id] AS schools, *"
             " FROM orgs WHERE type = 'school'",
        shown="{'SchoolId': r.native_id, 'SchoolName': r.name, 'SchoolCode': r.identifier,"
              f" 'GradeLow': r.grade_low, 'GradeHigh': r.grade_high, {_COMMON}}}",
    ),
    "students": Listing(
        rows="SELECT sourced_id AS key, native_id AS id, org_ids AS schools, *"
             " FROM users WHERE role = 'student'",
        shown="{'NameId': r.native_id, 'DisplayId': r.identifier, 'StateId': r.state_id, "
              f"{_NAMES}, 'GradYr': r.grad_year, "
              "'Gender': CASE d.sex WHEN 'male' THEN 'M' WHEN 'female' THEN 'F' WHEN 'other' THEN 'X' END,"
              f" 'DateOfBirth': {_date('r.birth_date')}, 'SchoolEmail': r.email, 'Email': NULL,"
              " 'PhoneNumber': r.phone, 'DefaultSchoolId': school.id_of[r.primary_org_id],"
              f" 'schoolIds': list_transform(r.org_ids, lambda o: school.id_of[o]), {_COMMON}}}",
        joins="LEFT JOIN demographics d ON d.sourced_id = r.sourced_id AND d.sourced_id BETWEEN $first AND $last",
    ),
    "guardians": Listing(
        rows="SELECT sourced_id AS key, native_id AS id, org_ids AS schools, *"
             f" FROM users WHERE role IN {CONTACT_ROLES}",
        shown=f"{{'GuardianNameId': r.native_id, {_NAMES}, 'Email': r.email,"
              " 'PhoneNumber': r.phone, 'PhoneNumberType': 'Home',"
              " 'PhoneNumber2': r.sms, 'PhoneNumberType2': CASE WHEN r.sms IS NOT NULL THEN 'Cell' END,"
              f" 'Students': coalesce(links.students, []), {_COMMON}}}",
        joins="""LEFT JOIN (
            SELECT sc.contact_id, list({'StudentNameId': s.native_id,
                                        'RelationshipDesc': sc.relationship,
                                        'IsGuardian': sc.is_guardian,
                                        'IsEmergencyContact': sc.emergency_contact,
                                        'IsCustodial': sc.custodial,
                                        'AllowPickup': sc.pickup_allowed,
                                        'ContactOrder': sc.contact_order} ORDER BY s.native_id) AS students
            FROM student_contacts sc JOIN users s ON s.sourced_id = sc.student_id
            WHERE sc.contact_id IN (SELECT key FROM r) AND """ + _visible_to("s.org_ids") + """
            GROUP BY sc.contact_id) links ON links.contact_id = r.key""",
        by_student="key IN (SELECT sc.contact_id FROM student_contacts sc"
                   " JOIN users s ON s.sourced_id = sc.student_id WHERE s.native_id = $student)",
    ),
    "staff": Listing(
        rows="SELECT key, native_id AS id, [school_id] AS schools, * FROM ("
             "  SELECT *, sourced_id || chr(1) || lpad(i::VARCHAR, 4, '0') AS key FROM ("
             "    SELECT *, unnest(org_ids) AS school_id, generate_subscripts(org_ids, 1) AS i"
             f"    FROM users WHERE role IN {STAFF_ROLES}))",
        shown="{'NameId': r.native_id, 'DisplayId': r.identifier, "
              f"{_NAMES}, 'Email': r.email, 'Username': r.username,"
              " 'SchoolId': school.id_of[r.school_id], 'PositionDesc': upper(r.role[1]) || r.role[2:],"
              f" 'IsTeacher': r.role = 'teacher', 'IsPrimarySchool': r.school_id = r.primary_org_id, {_COMMON}}}",
    ),
    "courses": Listing(
        rows="SELECT sourced_id AS key, native_id AS id, [org_id] AS schools, * FROM courses",
        shown="{'CourseId': r.native_id, 'CourseCode': r.course_code, 'CourseName': r.title,"
              " 'SchoolId': school.id_of[r.org_id], 'Grades': r.grades, 'Subjects': r.subjects,"
              f" 'SchoolYear': y.school_year, {_COMMON}}}",
        joins="LEFT JOIN academic_sessions y ON y.sourced_id = r.school_year_id",
    ),
    "sections": Listing(
        rows="SELECT sourced_id AS key, native_id AS id, [school_id] AS schools, * FROM classes",
        shown="{'SectionId': r.native_id, 'SectionCode': r.class_code, 'SectionName': r.title,"
              " 'ClassType': r.class_type, 'CourseId': c.native_id, 'SchoolId': school.id_of[r.school_id],"
              " 'Room': r.location, 'Periods': r.periods, 'TermIds': t.ids,"
              f" 'Teachers': coalesce(teach.teachers, []), {_COMMON}}}",
        joins="""LEFT JOIN courses c ON c.sourced_id = r.course_id
            LEFT JOIN (SELECT r2.key, list(a.native_id ORDER BY a.native_id) AS ids
                       FROM r r2, unnest(r2.term_ids) AS u(term_id)
                       JOIN academic_sessions a ON a.sourced_id = u.term_id GROUP BY r2.key) t
                ON t.key = r.key
            LEFT JOIN (SELECT e.class_id, list({'StaffNameId': s.native_id, 'IsPrimary': e."primary"}
                                                ORDER BY NOT e."primary", s.native_id) AS teachers
                       FROM enrollments e JOIN users s ON s.sourced_id = e.user_id
                       WHERE e.role = 'teacher' AND e.class_id IN (SELECT key FROM r)
                       GROUP BY e.class_id) teach ON teach.class_id = r.key""",
    ),
    "terms": Listing(
        rows="SELECT sourced_id AS key, native_id AS id, NULL::VARCHAR[] AS schools, *"
             " FROM academic_sessions",
        shown="{'TermId': r.native_id, 'TermName': r.title, 'TermType': r.type,"
              f" 'StartDate': {_date('r.start_date')}, 'EndDate': {_date('r.end_date')},"
              f" 'ParentTermId': p.native_id, 'SchoolYear': r.school_year, {_COMMON}}}",
        joins="LEFT JOIN academic_sessions p ON p.sourced_id = r.parent_id",
    ),
    "studentschedules": Listing(
        rows="SELECT sourced_id AS key, NULL AS id, [school_id] AS schools, *"
             " FROM enrollments WHERE role = 'student'",
        shown="{'StudentNameId': s.native_id, 'SectionId': c.native_id,"
              f" 'SchoolId': school.id_of[r.school_id], 'EntryDate': {_date('r.begin_date')},"
              f" 'ExitDate': {_date('r.end_date')}, {_COMMON}}}",
        joins="LEFT JOIN classes c ON c.sourced_id = r.class_id"
              " LEFT JOIN users s ON s.sourced_id = r.user_id",
        by_student="user_id IN (SELECT sourced_id FROM users WHERE native_id = $student)",
    ),
    "names": Listing(
        rows="SELECT sourced_id AS key, native_id AS id, org_ids AS schools, * FROM users",
        shown=f"{{'NameId': r.native_id, {_NAMES}, 'PreferredName': r.preferred_first_name,"
              f" 'DateOfBirth': {_date('r.birth_date')}, 'Email': r.email, 'PhoneNumber': r.phone,"
              f" {_COMMON}}}",
    ),
}

PAGED = ("schools", "students", "guardians", "staff", "courses", "sections", "terms", "studentschedules")
SINGLES = ("schools", "students", "names", "courses", "sections", "terms")

STUDENT_ENROLLMENTS = f"""
    WITH s AS (SELECT * FROM users WHERE role = 'student' AND native_id = $id),
    school AS (SELECT map_from_entries(list((sourced_id, native_id))) AS id_of FROM orgs),
    spans AS (SELECT school_id, min(begin_date) AS entry FROM enrollments
              WHERE role = 'student' AND user_id = (SELECT sourced_id FROM s) GROUP BY school_id),
    year AS (SELECT min(start_date) AS start FROM academic_sessions WHERE type = 'schoolYear'
             AND school_year = (SELECT max(school_year) FROM academic_sessions))
    SELECT to_json({{'SchoolId': school.id_of[r.school_id],
                    'EntryDate': {_date('coalesce(spans.entry, year.start)')},
                    'WithdrawalDate': {_date('r.deleted_on')}, 'GradeLevel': r.grades[1],
                    'Status': CASE r.status WHEN 'active' THEN 'Active' ELSE 'Withdrawn' END}})
    FROM (SELECT *, unnest(org_ids) AS school_id FROM s) r
    CROSS JOIN school CROSS JOIN year LEFT JOIN spans ON spans.school_id = r.school_id
    WHERE {_visible_to("[r.school_id]")}
    ORDER BY r.school_id
"""


class NativeError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def handle(cur: duckdb.DuckDBPyConnection, request: NativeRequest) -> Reply:
    """Answer one native API GET from the store."""
    try:
        return _route(cur, request)
    except NativeError as e:
        return error_reply(e.status, e.message, request.plain_errors)


def error_reply(status: int, message: str, plain: bool = False) -> Reply:
    """An error as the SMS API sends it: ``{"Message": ...}`` (``{"error": ...}`` if plain)."""
    body = {"error": message} if plain else {"Message": message}
    return Reply(status, json.dumps(body).encode(), {"Content-Type": "application/json; charset=utf-8"})


def _route(cur: duckdb.DuckDBPyConnection, request: NativeRequest) -> Reply:
    parts = request.path.strip("/").split("/")
    match parts:
        case ["v1", name] if name in PAGED:
            return _page(cur, request, name)
        case ["v1", name, native_id] if name in SINGLES:
            return _single(cur, request, name, _native_id(native_id, request))
        case ["v1", "students", native_id, "enrollments"]:
            student = _native_id(native_id, request)
            _single(cur, request, "students", student)
            rows = cur.execute(STUDENT_ENROLLMENTS, {"id": student, "visible": _visible(request)}).fetchall()
            return _json_reply([r[0] for r in rows])
    raise _not_found(request)


def _page(cur: duckdb.DuckDBPyConnection, request: NativeRequest, name: str) -> Reply:
    limit = _limit(request)
    # Only ``paging.cursor`` counts; the ``cursor=`` that Link advertises is ignored, as on
    # real servers: a client that follows Link verbatim gets page one again.
    cursor = request.query.get("paging.cursor")
    listing = LISTINGS[name]
    student = request.query.get("studentNameId") if listing.by_student else None
    if student is not None:
        _single(cur, request, "students", _native_id(student, request))
    if request.empty:
        return _json_reply([])
    conditions, params = [], {}
    if student is not None:
        conditions.append(listing.by_student)
        params["student"] = int(student)
    after = _decode_cursor(cursor) if cursor else None
    rows = _select(cur, listing, conditions, params, request, after=after, take=limit + 1)
    headers = {}
    if len(rows) > limit:
        rows = rows[:limit]
        resume_at = rows[max(0, len(rows) - 1 - request.overlap_rows)][0]
        query = {k: v for k, v in request.query.items() if k not in ("paging.cursor", "cursor")}
        query.update({"paging.limit": str(limit), "cursor": _encode_cursor(resume_at)})
        headers["Link"] = f'<{request.base_url}/{request.path}?{urlencode(query)}>; rel="next"'
    return _json_reply([r[1] for r in rows], headers)


def _single(cur: duckdb.DuckDBPyConnection, request: NativeRequest, name: str, native_id: int) -> Reply:
    rows = _select(cur, LISTINGS[name], ["id = $id"], {"id": native_id}, request, take=1)
    if not rows:
        raise NativeError(404, f"No {name.rstrip('s')} with id {native_id}")
    return Reply(200, rows[0][1].encode(), {"Content-Type": "application/json; charset=utf-8"})


def _select(
    cur: duckdb.DuckDBPyConnection,
    listing: Listing,
    conditions: list[str],
    params: dict[str, object],
    request: NativeRequest,
    *,
    take: int,
    after: str | None = None,
) -> list[tuple[str, str]]:
    """``(key, json)`` of the first ``take`` rows past ``after`` that meet ``conditions``.

    Two steps keep a page's cost near its size: find the page's keys reading only the columns
    the conditions need, then render just the rows in that key range (which the store's
    ``sourced_id`` order keeps together)."""
    params = {**params, "visible": _visible(request)}
    if request.visible_schools is not None:
        conditions = [*conditions, f"(schools IS NULL OR {_visible_to('schools')})"]
    where = " AND ".join(conditions) or "TRUE"
    beyond = "" if after is None else " AND key > $after"
    sql = f"SELECT key FROM ({listing.rows}) WHERE {where}{beyond} ORDER BY key LIMIT $take"
    keys = cur.execute(sql, _used({**params, "after": after, "take": take}, sql)).fetchall()
    if not keys:
        return []
    sql = f"""
        WITH r AS (SELECT * FROM ({listing.rows}) WHERE key BETWEEN $first AND $last AND {where}),
        school AS (SELECT map_from_entries(list((sourced_id, native_id))) AS id_of FROM orgs)
        SELECT r.key, to_json({listing.shown}) FROM r CROSS JOIN school {listing.joins}
        ORDER BY r.key
        """
    return cur.execute(sql, _used({**params, "first": keys[0][0], "last": keys[-1][0]}, sql)).fetchall()


def _used(params: dict, sql: str) -> dict:
    return {k: v for k, v in params.items() if f"${k}" in sql}


def _visible(request: NativeRequest) -> list[str] | None:
    return None if request.visible_schools is None else sorted(request.visible_schools)


def _limit(request: NativeRequest) -> int:
    raw = request.query.get("paging.limit", str(DEFAULT_LIMIT))
    try:
        limit = int(raw)
    except ValueError:
        raise NativeError(400, f"paging.limit must be a whole number, got {raw!r}") from None
    if limit < 1:
        raise NativeError(400, "paging.limit must be at least 1")
    return min(limit, MAX_LIMIT, request.clamp_limit or MAX_LIMIT)


def _native_id(raw: str, request: NativeRequest) -> int:
    try:
        return int(raw)
    except ValueError:
        raise _not_found(request) from None


def _not_found(request: NativeRequest) -> NativeError:
    return NativeError(404, f"No HTTP resource was found that matches the request URI "
                            f"'{request.base_url}/{request.path}'.")


def _encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        return base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise NativeError(400, "paging.cursor is not a cursor this server issued") from None


def _json_reply(rows: list[str], headers: dict[str, str] | None = None) -> Reply:
    body = ("[" + ",".join(rows) + "]").encode()
    return Reply(200, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})
