"""The transform benchmark's baseline: the rules of :data:`benchmarks.transform.RULES` written by hand.

One ``CREATE TABLE AS`` per entity does what our four stages do for these rules — newest version
per id, attribute mapping, SIS ID prefix, staff scope, emergency contacts, filter rules, include
linked, requirements, referential integrity — and one ``INSERT`` per entity collects the issues
(missing values reported, formats as regular expressions, date order); masking is one ``UPDATE``
after the checks.
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


def statements() -> dict[str, str]:
    """Per entity, the statement writing ``base.<entity>``, in dependency order."""
    d = {e: DEDUPED.format(entity=e) for e in ENTITIES}
    teachers = f"SELECT {P}user_sis_id FROM {d['enrollments']} WHERE lower(trim(role, {BLANK})) = 'teacher'"
    guardian_contacts = f"SELECT sis_id FROM {d['contacts']} WHERE lower(trim(role, {BLANK})) IN ('parent', 'guardian')"
    kept_links = (f"SELECT * FROM {d['student_contacts']} WHERE lower(trim(custodial, {BLANK})) = 'true'"
                  f" OR contact_sis_id IN ({guardian_contacts})")
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
                     WHERE {P}sis_id IN ({teachers})
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
    return f"INSERT INTO base_issues {' UNION ALL '.join(checks)}"


def sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_list(values: list[str]) -> str:
    return "[" + ", ".join(sql_text(v) for v in values) + "]"


def run_baseline(warehouse_path: str) -> tuple[dict[str, int], int]:
    """Write ``base.*`` and the issues; rows per entity, and the issues found."""
    con = duckdb.connect(warehouse_path, config={"memory_limit": "1GB", "preserve_insertion_order": False})
    con.execute("CREATE SCHEMA base")
    con.execute("CREATE TABLE base_issues (record_id VARCHAR, attribute VARCHAR, rule VARCHAR)")
    staged = {}
    for entity, statement in statements().items():
        con.execute(f"CREATE TABLE base.{entity} AS {statement}")
        con.execute(issues(entity))
        (staged[entity],) = con.execute(f"SELECT count(*) FROM base.{entity}").fetchone()
    con.execute(f"UPDATE base.demographics SET birth_date = '****' WHERE NOT {missing('birth_date')}")
    (found,) = con.execute("SELECT count(*) FROM base_issues").fetchone()
    con.close()
    return staged, found
