"""How generated frames become store rows: the id scheme and one SQL insert per kind of row.

Id scheme. Every ``sourced_id`` is ``<prefix>-<number>``, the number zero-padded to ten
digits, so ids sort the same as text and as numbers. Prefixes: ``org`` orgs, ``ses`` academic
sessions, ``crs`` courses, ``cls`` classes, ``stu`` students, ``stf`` staff, ``con`` contacts
(guardians, parents, relatives), ``enr`` enrollments. A student's demographics row carries the
student's id, as in OneRoster. Numbers come from one counter per table (all users share one
counter, whatever their prefix), and ``native_id`` (SMS 2.0 SchoolId / SectionId / NameId) is
that number: unique per table, and new whenever a sourced id is new.

Frames carry numbers and plain values; the SQL here formats ids, e-mails, usernames and phone
numbers, which DuckDB does far faster than Python would for a million people.
"""

from __future__ import annotations

import duckdb
import pandas as pd

ID_DIGITS = 10
PREFIXES = {
    "orgs": "org",
    "academic_sessions": "ses",
    "courses": "crs",
    "classes": "cls",
    "enrollments": "enr",
}
CONTACT_ROLES = ("guardian", "parent", "relative")
STAFF = f"role <> 'student' AND role NOT IN {CONTACT_ROLES}"
"""SQL predicate: a user row is a staff member."""


def sourced_id(prefix: str, number: int) -> str:
    """The sourced id of row ``number`` under ``prefix`` (``stu``, ``cls``...)."""
    return f"{prefix}-{number:0{ID_DIGITS}d}"


def id_sql(prefix: str, column: str) -> str:
    """SQL formatting integer ``column`` as a sourced id under ``prefix``."""
    return f"printf('{prefix}-%0{ID_DIGITS}d', {column})"


def user_prefix_sql(role: str) -> str:
    """SQL giving the id prefix of a user with role expression ``role``."""
    return (
        f"CASE WHEN {role} = 'student' THEN 'stu' "
        f"WHEN {role} IN {CONTACT_ROLES} THEN 'con' ELSE 'stf' END"
    )


def user_id_sql(role: str, column: str) -> str:
    """SQL formatting integer ``column`` as the sourced id of a user with role ``role``."""
    return f"{user_prefix_sql(role)} || printf('-%0{ID_DIGITS}d', {column})"


def number_sql(column: str) -> str:
    """SQL reading the number back out of a (possibly padded) sourced id."""
    return f"CAST(split_part(trim({column}), '-', 2) AS BIGINT)"


def _phone(column: str) -> str:
    return (
        f"printf('%03d-%03d-%04d', {column} // 10000000, ({column} // 10000) % 1000, "
        f"{column} % 10000)"
    )


_EMAIL_LOCAL = "regexp_replace(lower(given_name || '.' || family_name), '[^a-z.]', '', 'g') || no"

INSERTS = {
    "orgs": f"""
        SELECT {id_sql('org', 'no')} AS sourced_id, dlm AS date_last_modified, name, type,
               identifier, CASE WHEN parent_no IS NOT NULL THEN {id_sql('org', 'parent_no')} END
               AS parent_id, school_level, grade_low, grade_high, no AS native_id
        FROM chunk""",
    "academic_sessions": f"""
        SELECT {id_sql('ses', 'no')} AS sourced_id, dlm AS date_last_modified, title, type,
               start_date, end_date,
               CASE WHEN parent_no IS NOT NULL THEN {id_sql('ses', 'parent_no')} END AS parent_id,
               school_year, {id_sql('org', 'org_no')} AS org_id, no AS native_id
        FROM chunk""",
    "courses": f"""
        SELECT {id_sql('crs', 'no')} AS sourced_id, dlm AS date_last_modified, title,
               course_code, grades, subjects, subject_codes, {id_sql('org', 'school_no')} AS org_id,
               {id_sql('ses', 'school_year_no')} AS school_year_id, no AS native_id
        FROM chunk""",
    "classes": f"""
        SELECT {id_sql('cls', 'no')} AS sourced_id, dlm AS date_last_modified, title, class_code,
               class_type, location, grades, subjects, {id_sql('crs', 'course_no')} AS course_id,
               {id_sql('org', 'school_no')} AS school_id, [{id_sql('ses', 'term_no')}] AS term_ids,
               [period] AS periods, no AS native_id
        FROM chunk""",
    "users": f"""
        SELECT {user_id_sql('role', 'no')} AS sourced_id, dlm AS date_last_modified,
               no AS native_id, role,
               CASE WHEN role NOT IN {CONTACT_ROLES} THEN {_EMAIL_LOCAL} END AS username,
               given_name, family_name, middle_name, identifier, state_id,
               {_EMAIL_LOCAL} || '@' || email_domain AS email,
               CASE WHEN sms IS NOT NULL THEN {_phone('sms')} END AS sms,
               CASE WHEN phone IS NOT NULL THEN {_phone('phone')} END AS phone,
               CASE WHEN grade IS NOT NULL THEN [grade] END AS grades,
               list_filter([{id_sql('org', 'org_no')},
                            CASE WHEN org2_no IS NOT NULL THEN {id_sql('org', 'org2_no')} END],
                           lambda x: x IS NOT NULL) AS org_ids,
               {id_sql('org', 'org_no')} AS primary_org_id, grad_year, birth_date
        FROM chunk""",
    "student_contacts": f"""
        SELECT {user_id_sql("'student'", 'student_no')} AS student_id,
               {user_id_sql("'guardian'", 'contact_no')} AS contact_id, relationship, is_guardian,
               emergency_contact, custodial, pickup_allowed, contact_order,
               dlm AS date_last_modified
        FROM chunk""",
    "enrollments": f"""
        SELECT {id_sql('enr', 'no')} AS sourced_id, dlm AS date_last_modified,
               {user_id_sql('role', 'user_no')} AS user_id, {id_sql('cls', 'class_no')} AS class_id,
               {id_sql('org', 'school_no')} AS school_id, role, "primary", begin_date, end_date
        FROM chunk""",
    "demographics": f"""
        SELECT {user_id_sql("'student'", 'no')} AS sourced_id, dlm AS date_last_modified,
               * EXCLUDE (no, dlm)
        FROM chunk""",
}
"""Per table, the SELECT turning a registered frame ``chunk`` into store rows (BY NAME)."""


def insert(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    """Insert one frame into ``table`` through its SQL template."""
    if frame.empty:
        return
    con.register("chunk", frame)
    try:
        con.execute(f"INSERT INTO {table} BY NAME {INSERTS[table]}")
    finally:
        con.unregister("chunk")


class Appender:
    """Buffers frames per table and inserts them in batches, so memory stays one batch deep."""

    def __init__(self, con: duckdb.DuckDBPyConnection, batch_rows: int = 200_000):
        self.con = con
        self.batch_rows = batch_rows
        self.pending: dict[str, list[pd.DataFrame]] = {}

    def add(self, table: str, frame: pd.DataFrame) -> None:
        """Queue ``frame`` for ``table``; insert the queue once it holds a batch."""
        frames = self.pending.setdefault(table, [])
        frames.append(frame)
        if sum(len(f) for f in frames) >= self.batch_rows:
            self._flush(table)

    def flush(self) -> None:
        """Insert everything still queued."""
        for table in list(self.pending):
            self._flush(table)

    def _flush(self, table: str) -> None:
        frames = self.pending.pop(table, [])
        if frames:
            insert(self.con, table, pd.concat(frames, ignore_index=True))


def refresh_contact_orgs(
    con: duckdb.DuckDBPyConnection, dlm: object | None = None, students: str | None = None
) -> None:
    """Set contacts' ``org_ids`` to the schools of their active students, as Skyward reports them.

    ``students`` (SQL selecting student ids; it may use ``$dlm``) limits the work to the
    contacts of those students. Contacts whose schools change get ``date_last_modified = dlm``
    when it is given.
    """
    scope = ""
    if students:
        scope = f"""WHERE contact_id IN (SELECT contact_id FROM student_contacts
                                        WHERE student_id IN ({students}))"""
    con.execute(
        f"""
        UPDATE users SET org_ids = s.org_ids, primary_org_id = s.org_ids[1],
               date_last_modified = coalesce($dlm, users.date_last_modified)
        FROM (SELECT sc.contact_id, list_sort(list_distinct(flatten(list(st.org_ids)))) AS org_ids
              FROM (SELECT * FROM student_contacts {scope}) sc
              JOIN users st ON st.sourced_id = sc.student_id
              WHERE st.status = 'active'
              GROUP BY sc.contact_id) s
        WHERE users.sourced_id = s.contact_id AND users.org_ids IS DISTINCT FROM s.org_ids
        """,
        {"dlm": dlm},
    )
