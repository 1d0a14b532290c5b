"""The transform benchmark's baseline: the rules of :data:`benchmarks.transform.RULES` written by hand.

One ``CREATE TABLE AS`` per entity does what our four stages do for these rules — newest version
per id, attribute mapping, SIS ID prefix, staff scope, emergency contacts, filter rules, include
linked, requirements, referential integrity — and one ``INSERT`` per entity collects the issues
(missing values reported, formats as regular expressions, date order). As our stages do, each
record the settings and filters leave out is reported with its message (one ``INSERT`` per
entity), and tobedeleted records are reported and deleted from each table as it is made, so the
tables made after it leave with them through their joins. Masking is one ``UPDATE`` after the
checks.
Nothing is general: it knows these rules, the registry's columns and that every school is mapped.
"""

from __future__ import annotations

import duckdb

from passport_pipeline.entities import ENTITIES, TEXT_LIST
from passport_pipeline.rules import formats as f

P = "'b-' || "
"""The SIS ID prefix."""

BLANK = "' \t\r\n\u00a0'"

DEDUPED = """(WITH twice AS (SELECT sis_id FROM raw."bench__{entity}" GROUP BY sis_id HAVING count(*) > 1)
             SELECT * FROM raw."bench__{entity}" WHERE sis_id NOT IN (SELECT sis_id FROM twice)
             UNION ALL (SELECT * FROM raw."bench__{entity}" WHERE sis_id IN (SELECT sis_id FROM twice)
                        QUALIFY row_number() OVER (PARTITION BY sis_id ORDER BY
                            TRY_CAST(date_last_modified AS TIMESTAMPTZ) DESC NULLS LAST, extracted_at DESC) = 1))"""
"""The newest version of each record: only ids sent more than once are ranked (a window over every
row does not fit the 1 GB DuckDB is given at 1M students)."""

MAPPED = {
    "given_name": f"trim(given_name, {BLANK})", "family_name": f"trim(family_name, {BLANK})",
    "middle_name": f"trim(middle_name, {BLANK})", "email": f"lower(trim(email, {BLANK}))",
}
STUDENT_MAPPED = {**MAPPED, "preferred_first_name": (
    f"coalesce(CASE WHEN trim(preferred_first_name, {BLANK}) <> '' THEN preferred_first_name END,"
    f" CASE WHEN trim(given_name, {BLANK}) <> '' THEN given_name END)")}
STAFF_MAPPED = {**MAPPED, "preferred_first_name": f"trim(preferred_first_name, {BLANK})",
                "username": "lower(nullif(concat(given_name, '.', family_name), ''))"}
CONTACT_MAPPED = {**MAPPED, "preferred_first_name": f"trim(preferred_first_name, {BLANK})"}
PREFIXED = {"sis_id", "parent_sis_id", "school_sis_id", "school_year_sis_id", "course_sis_id", "user_sis_id",
            "class_sis_id", "student_sis_id", "contact_sis_id", "primary_school_sis_id"}
LISTS = {"school_sis_ids", "term_sis_ids"}


def missing(column: str) -> str:
    return f"(trim({column}, {BLANK}) = '' OR {column} IS NULL)"


def select(entity: str, mapped: dict[str, str] | None = None) -> str:
    """The mapped columns of ``entity`` from its deduplicated raw table ``r``."""
    out = []
    for column in ENTITIES[entity].all_columns:
        sql = (mapped or {}).get(column, f"r.{column}" if column != "primary" else 'r."primary"')
        if column in PREFIXED:
            sql = f"{P}r.{column}"
        elif column in LISTS:
            sql = f"list_transform(r.{column}, lambda x: {P}x)"
        out.append(f"{sql} AS \"{column}\"")
    return "'bench' AS source, " + ", ".join(out)


def shared_sets() -> dict[str, str]:
    """Temporary tables of ids that the tables and the reports of the records left out both read,
    each computed once: the teachers, the guardian contacts, the students the filter keeps, the
    students it leaves out, and the staff the staff scope leaves out."""
    d = {e: DEDUPED.format(entity=e) for e in ENTITIES}
    enrolled = f"coalesce(lower(trim(status, {BLANK})) = 'active' AND len(grades) > 0, false)"
    return {
        "teachers": f"SELECT {P}user_sis_id AS sis_id FROM {d['enrollments']} WHERE lower(trim(role, {BLANK})) = 'teacher'",
        "guardian_contacts": f"SELECT sis_id FROM {d['contacts']} WHERE lower(trim(role, {BLANK})) IN ('parent', 'guardian')",
        "kept_students": f"SELECT {P}sis_id AS sis_id FROM {d['students']} WHERE {enrolled}",
        "dropped_students": f"SELECT {P}sis_id AS sis_id FROM {d['students']} WHERE NOT {enrolled}",
        "dropped_staff": f"SELECT {P}sis_id AS sis_id FROM {d['staff']} WHERE {P}sis_id NOT IN (SELECT sis_id FROM teachers)",
    }


def statements() -> dict[str, str]:
    """Per entity, the statement writing ``base.<entity>``, in dependency order."""
    d = {e: DEDUPED.format(entity=e) for e in ENTITIES}
    kept_links = (f"SELECT * FROM {d['student_contacts']} WHERE lower(trim(custodial, {BLANK})) = 'true'"
                  f" OR contact_sis_id IN (SELECT sis_id FROM guardian_contacts)")
    return {
        "schools": f"SELECT {select('schools')} FROM {d['schools']} r",
        "terms": f"SELECT {select('terms')} FROM {d['terms']} r",
        "courses": f"SELECT {select('courses')} FROM {d['courses']} r",
        "classes": f"""SELECT {select('classes')} FROM {d['classes']} r
                       WHERE {P}course_sis_id IN (SELECT sis_id FROM base.courses)
                         AND {P}school_sis_id IN (SELECT sis_id FROM base.schools)""",
        "students": f"""SELECT {select('students', STUDENT_MAPPED)} FROM {d['students']} r
                        WHERE lower(trim(status, {BLANK})) = 'active' AND len(grades) > 0
                          AND NOT {missing(MAPPED['given_name'])} AND NOT {missing(MAPPED['family_name'])}""",
        "staff": f"""SELECT {select('staff', STAFF_MAPPED)} FROM {d['staff']} r
                     WHERE {P}sis_id IN (SELECT sis_id FROM teachers)
                       AND NOT {missing(MAPPED['given_name'])} AND NOT {missing(MAPPED['family_name'])}""",
        "contacts": f"""SELECT {select('contacts', CONTACT_MAPPED)} FROM {d['contacts']} r
                        WHERE sis_id IN (SELECT contact_sis_id FROM ({kept_links}))""",
        "student_contacts": f"""SELECT {select('student_contacts')} FROM {d['student_contacts']} r
                                JOIN base.contacts c ON c.sis_id = {P}r.contact_sis_id
                                SEMI JOIN base.students s ON s.sis_id = {P}r.student_sis_id
                                WHERE lower(trim(r.custodial, {BLANK})) = 'true'
                                   OR lower(trim(c.role, {BLANK})) IN ('parent', 'guardian')""",
        "enrollments": f"""SELECT {select('enrollments')} FROM {d['enrollments']} r
                           WHERE TRY_CAST(end_date AS DATE) > DATE '2026-01-01'
                             AND ({P}user_sis_id IN (SELECT sis_id FROM base.students)
                                  OR {P}user_sis_id IN (SELECT sis_id FROM base.staff))
                             AND {P}class_sis_id IN (SELECT sis_id FROM base.classes)""",
        "demographics": f"""SELECT {select('demographics')} FROM {d['demographics']} r
                            WHERE {P}sis_id IN (SELECT sis_id FROM base.students)""",
    }


LEFT_OUT = ": the record is left out"


def left_out() -> dict[str, str]:
    """Per entity, the statement reporting each record the settings and filters left out, why, and
    the message our filtered stage writes (the first reason wins, in our stage's order)."""
    d = {e: DEDUPED.format(entity=e) for e in ENTITIES}
    kept_students, dropped_students, dropped_staff = (
        f"SELECT sis_id FROM {name}" for name in ("kept_students", "dropped_students", "dropped_staff"))
    guardian = (f"coalesce(lower(trim(r.custodial, {BLANK})) = 'true'"
                f" OR r.contact_sis_id IN (SELECT sis_id FROM guardian_contacts), false)")
    kept_links = (f"SELECT {P}contact_sis_id FROM {d['student_contacts']} r"
                  f" WHERE {guardian} AND {P}student_sis_id IN ({kept_students})")

    def filtered_out(column: str, target: str) -> str:
        return (f"{sql_text(column + ' ')} || {f.quoted(P + 'r.' + column)}"
                f" || {sql_text(f' is filtered out of {target}' + LEFT_OUT)}")

    def insert(entity: str, rule: str, attribute: str, message: str, where: str = "true") -> str:
        return (f"INSERT INTO base_issues (record_id, attribute, rule, message)"
                f" SELECT {P}r.sis_id, {attribute}, {rule}, {message} FROM {d[entity]} r WHERE {where}")

    def insert_ids(ids: str, rule: str, message: str) -> str:
        return (f"INSERT INTO base_issues (record_id, attribute, rule, message)"
                f" SELECT sis_id, NULL, {sql_text(rule)}, {sql_text(message)} FROM {ids}")

    user = f"{P}r.user_sis_id"
    student_gone, staff_gone = f"{user} IN ({dropped_students})", f"{user} IN ({dropped_staff})"
    enrollment_gone = (f"NOT coalesce(TRY_CAST(r.end_date AS DATE) > DATE '2026-01-01', false)"
                       f" AND {user} NOT IN ({kept_students})")
    return {
        "students": insert_ids("dropped_students", "filter_rules",
                               "matches no filter rule of students (enrolled)" + LEFT_OUT),
        "staff": insert_ids("dropped_staff", "staff_scope", "teaches no class (staff_scope: active_teachers_only)" + LEFT_OUT),
        "student_contacts": insert(
            "student_contacts", f"CASE WHEN NOT {guardian} THEN 'emergency_contacts' ELSE 'include_linked' END",
            f"CASE WHEN {guardian} THEN 'student_sis_id' END",
            f"CASE WHEN NOT {guardian} THEN "
            + sql_text("not custodial, nor to a parent or guardian (sync_emergency_contacts: false)" + LEFT_OUT)
            + f" ELSE {filtered_out('student_sis_id', 'students')} END",
            f"NOT {guardian} OR {P}r.student_sis_id IN ({dropped_students})"),
        "contacts": insert("contacts", "'no_linked_student'", "NULL",
                           sql_text("no linked student is synced: the contact is left out"),
                           f"{P}r.sis_id NOT IN ({kept_links})"),
        "enrollments": insert(
            "enrollments", f"CASE WHEN {student_gone} OR {staff_gone} THEN 'include_linked' ELSE 'filter_rules' END",
            f"CASE WHEN {student_gone} OR {staff_gone} THEN 'user_sis_id' END",
            f"CASE WHEN {student_gone} THEN {filtered_out('user_sis_id', 'students')}"
            f" WHEN {staff_gone} THEN {filtered_out('user_sis_id', 'staff')}"
            f" ELSE {sql_text('matches no filter rule of enrollments (current)' + LEFT_OUT)} END",
            f"{student_gone} OR {staff_gone} OR ({enrollment_gone})"),
        "demographics": insert("demographics", "'include_linked'", "'sis_id'", filtered_out("sis_id", "students"),
                               f"{P}r.sis_id IN ({dropped_students})"),
    }


def tobedeleted(entity: str) -> list[str]:
    """Report the records of ``base.<entity>`` to be deleted, then delete them: the tables made
    after it join to it, so what needs them leaves too."""
    status = f"lower(trim(status, {BLANK})) IN ('tobedeleted', 'inactive')"
    message = f"'status ' || {f.quoted('status')} || ' marks the record to be deleted: it is left out'"
    return [f"INSERT INTO base_issues (record_id, attribute, rule, message)"
            f" SELECT sis_id, 'status', 'tobedeleted', {message} FROM base.{entity} WHERE {status}",
            f"DELETE FROM base.{entity} WHERE {status}"]


def issues(entity: str) -> str:
    """The statement adding ``entity``'s issues: missing values, formats, date order."""
    checks = []
    schema = f.MODELS[entity].to_schema()
    for name, column in schema.columns.items():
        value = f"trim(v, {BLANK})"
        for check in column.checks:
            stats = check.statistics
            if check.name == "one_of":
                bad = f"NOT list_contains({sql_list(stats['allowed'])}, {value})"
            elif check.name == "matches":
                bad = f"NOT regexp_full_match({value}, {sql_text(stats['pattern'])})"
            else:
                bad = f"TRY_STRPTIME({value}, '%Y-%m-%d') IS NULL"
                if stats.get("earliest"):
                    bad += f" OR TRY_CAST({value} AS DATE) NOT BETWEEN DATE '{stats['earliest']}' AND current_date"
            source = f"unnest(\"{name}\")" if ENTITIES[entity].all_columns[name] == TEXT_LIST else f"\"{name}\""
            checks.append(f"""SELECT sis_id, '{name}', 'format' FROM (SELECT sis_id, {source} AS v FROM base.{entity})
                              WHERE {value} <> '' AND ({bad})""")
    for column in ("email",) if entity in ("students", "staff") else ():
        checks.append(f"SELECT sis_id, '{column}', 'report_if_missing' FROM base.{entity} WHERE {missing(column)}")
    if entity in f.DATE_ORDER:
        start, end = f.DATE_ORDER[entity]
        checks.append(f"SELECT sis_id, '{end}', 'date_order' FROM base.{entity}"
                      f" WHERE TRY_CAST({end} AS DATE) < TRY_CAST({start} AS DATE)")
    return f"INSERT INTO base_issues (record_id, attribute, rule) {' UNION ALL '.join(checks)}"


def sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_list(values: list[str]) -> str:
    return "[" + ", ".join(sql_text(v) for v in values) + "]"


def run_baseline(warehouse_path: str) -> tuple[dict[str, int], int]:
    """Write ``base.*`` and the issues; rows per entity, and the issues found."""
    con = duckdb.connect(warehouse_path, config={"memory_limit": "1GB", "preserve_insertion_order": False})
    con.execute("CREATE SCHEMA base")
    con.execute("CREATE TABLE base_issues (record_id VARCHAR, attribute VARCHAR, rule VARCHAR, message VARCHAR)")
    staged = {}
    reports = left_out()
    for name, select in shared_sets().items():
        con.execute(f"CREATE TEMP TABLE {name} AS {select}")
    for entity, statement in statements().items():
        con.execute(f"CREATE TABLE base.{entity} AS {statement}")
        for sql in tobedeleted(entity):
            con.execute(sql)
        if entity in reports:
            con.execute(reports[entity])
        con.execute(issues(entity))
        (staged[entity],) = con.execute(f"SELECT count(*) FROM base.{entity}").fetchone()
    con.execute(f"UPDATE base.demographics SET birth_date = '****' WHERE NOT {missing('birth_date')}")
    (found,) = con.execute("SELECT count(*) FROM base_issues").fetchone()
    con.close()
    return staged, found
