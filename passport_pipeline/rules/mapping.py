"""The "mapped" stage: a source's raw records as canonical rows, one per record.

For each entity, one ``CREATE TABLE AS`` over the newest version of every raw record does three
things at once:

- **attribute mapping**: each mappable attribute is computed by its expression
  (:func:`~passport_pipeline.rules.expressions.effective_mapping`); the raw ``payload`` is read
  only when an expression needs it;
- **SIS ID prefix**: the source's prefix is glued to the record's id and to every reference, so
  equal ids from two sources never collide; ids are otherwise kept exactly as sent;
- **schools mapping** (the report :func:`~passport_pipeline.rules.schools.map_schools` wrote):
  school references become the Passport school's id, and data of unmapped schools is dropped,
  with the records linked to what was dropped here (enrollments of a dropped class or user,
  contact links and demographics of a dropped student, contacts left with no student).

Dropped records are counted per reason, and each gets an issue of severity Skipped saying why
(:data:`RULES`): an unmapped school is a setting, not bad data, but a district admin must be able
to see where each record went. The newer and older versions of one record (``duplicate rows``)
are not records left out. A reference to an id that is nowhere in raw is kept: a later stage's
referential checks report it.
"""

from __future__ import annotations

import re

from passport_pipeline.config import Source
from passport_pipeline.config.rules import mappable
from passport_pipeline.crash import crash_point
from passport_pipeline.entities import ENTITIES, TEXT_LIST, links
from passport_pipeline.rules.expressions import effective_mapping, to_sql, uses_payload
from passport_pipeline.rules.formats import quoted
from passport_pipeline.rules.issues import SKIPPED, clear_issues, record_issues
from passport_pipeline.rules.report import EntityCounts, StageReport
from passport_pipeline.rules.tables import existing_tables, schools_mapping_table, stage_table, staging_columns
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.raw import LANDING_COLUMNS, raw_table
from passport_pipeline.warehouse.sql import ident, param

ORDER = ("schools", "terms", "courses", "classes", "students", "staff", "student_contacts", "contacts",
         "enrollments", "demographics")
"""Registry order, but contacts after the contact links whose drops decide theirs."""

PARENT_ORGS = {"schools": ("parent_sis_id",)}
"""Ids that are not links between synced records (a school's district) but get the prefix too."""

LINKS = {
    "enrollments": (("class_sis_id", "classes"), ("user_sis_id", "students"), ("user_sis_id", "staff")),
    "student_contacts": (("student_sis_id", "students"),),
    "demographics": (("sis_id", "students"),),
}
"""entity -> (column, entity it links to): a record linked to one dropped here is dropped too."""

DUPLICATE, UNMAPPED, MERGED, LINKED = (
    "duplicate rows", "unmapped school", "merged into one Passport school", "linked to unmapped school")
RULES = {UNMAPPED: "unmapped_school", MERGED: "merged_school", LINKED: "linked_to_unmapped_school"}
"""The rule of the issues of the records left out for each reason (all Skipped)."""

SCHOOL_TARGETS = ident("temp", "school_targets")
WORK_COLUMNS = "unmapped_school, merged_school, drop_reason, record_id, school_ref"


def map_attributes(warehouse: Warehouse, source: Source, run_id: str) -> StageReport:
    """Write ``stage_table("mapped", source.name, entity)`` for every entity of ``source``.

    Reads the raw tables and the schools mapping report (run ``map_schools`` first; without a
    report nothing is rewritten or dropped for schools). The issues of ``run_id`` this stage
    raised before are replaced by this run's.
    """
    report = StageReport("mapped", source.name)
    with warehouse.writing() as con:
        con.execute("BEGIN")
        try:
            clear_issues(con, run_id=run_id, source=source.name, rules=RULES.values())
            tables = existing_tables(con)
            params = {"source": source.name, "prefix": source.sis_id_prefix}
            params.update(_load_school_targets(con, source, tables))
            dropped: set[str] = set()
            for entity in (e for e in ORDER if e in source.entities):
                report.entities[entity] = _map_entity(con, source, entity, tables, params, dropped)
                counts = report.entities[entity]
                for reason in sorted(counts.dropped.keys() & RULES.keys()):
                    _record_left_out(con, source, entity, reason, dropped, run_id)
                    counts.issues[f"{RULES[reason]} ({SKIPPED})"] = counts.dropped[reason]
            crash_point("mapped.in_transaction")
            con.execute("COMMIT")
            crash_point("mapped.committed")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return report


def newest_records(table: str, columns: list[str]) -> str:
    """A query of the newest version of each record of a raw ``table`` (its ``columns``).

    Newest by ``date_last_modified`` read as a timestamp, then by extraction time; what is left
    of a tie (a record sent twice in one pull) is broken by the values, so the choice never
    depends on row order. Records without an id are all kept: they are not versions of one record.
    Only ids sent more than once are sorted; the others, nearly all, pass straight through.
    """
    names = ", ".join(ident(c) for c in columns)
    newest_first = (f"TRY_CAST(date_last_modified AS TIMESTAMPTZ) DESC NULLS LAST, extracted_at DESC NULLS LAST,"
                    f" scope, hash({names})")
    return (f"WITH versioned AS (SELECT sis_id FROM {table} WHERE sis_id IS NOT NULL GROUP BY sis_id HAVING count(*) > 1)"
            f" SELECT {names} FROM {table} WHERE sis_id IS NULL OR sis_id NOT IN (SELECT sis_id FROM versioned)"
            f" UNION ALL (SELECT {names} FROM {table} WHERE sis_id IN (SELECT sis_id FROM versioned)"
            f" QUALIFY row_number() OVER (PARTITION BY sis_id ORDER BY {newest_first}) = 1)")


def raw_records(source: str, entity: str, tables: set[str]) -> str:
    """The raw table of ``entity``, or an empty one with its columns when nothing landed yet."""
    table = raw_table(source, entity)
    if table in tables:
        return table
    columns = {**ENTITIES[entity].all_columns, **LANDING_COLUMNS}
    return "(SELECT " + ", ".join(f"CAST(NULL AS {kind}) AS {ident(c)}" for c, kind in columns.items()) + " LIMIT 0)"


def prefixed(sql: str, kind: str = "VARCHAR") -> str:
    """``sql`` (an id, or a list of ids) with the ``$prefix`` parameter glued on.

    NULL stays NULL and a blank id stays as it is: a missing id never becomes a real-looking one.
    """
    if kind == TEXT_LIST:
        return f"list_transform({sql}, lambda prefixed_id: {prefixed('prefixed_id')})"
    return f"CASE WHEN trim({sql}) = '' THEN {sql} ELSE $prefix || {sql} END"


def execute(con, sql: str, params: dict):
    """Run ``sql`` with those of ``params`` it uses (DuckDB refuses parameters a query lacks)."""
    used = set(re.findall(r"\$(\w+)", sql))
    return con.execute(sql, {name: value for name, value in params.items() if name in used})


def _load_school_targets(con, source, tables: set[str]) -> dict:
    """Put the schools mapping into ``temp.school_targets`` (joined to by single school ids) and
    return the list parameters that rewrite lists of school ids: the unmapped schools, and the
    schools whose Passport school is not just their prefixed id (``moved_schools`` -> ``moved_to``)."""
    report = schools_mapping_table(source.name)
    if report not in tables:
        report = ("(SELECT NULL::VARCHAR AS source_school_id, NULL::VARCHAR AS status,"
                  " NULL::VARCHAR AS passport_school_sis_id, NULL::VARCHAR AS passport_school_name,"
                  " NULL::VARCHAR AS existing_passport_id LIMIT 0)")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {SCHOOL_TARGETS} AS
            SELECT source_school_id AS school_ref, passport_school_sis_id AS school_target,
                   CASE WHEN $named AND existing_passport_id IS NULL THEN passport_school_name END AS school_name,
                   status = 'unmapped' AS school_unmapped
            FROM {report} WHERE status IN ('mapped', 'unmapped')""",
        {"named": source.advanced.schools_mapping.mode == "explicit"})
    moved = f"NOT school_unmapped AND school_target IS DISTINCT FROM {prefixed('school_ref')}"
    unmapped, moved_schools, moved_to = execute(
        con, f"""SELECT coalesce(list(school_ref ORDER BY school_ref) FILTER (WHERE school_unmapped), []),
                        coalesce(list(school_ref ORDER BY school_ref) FILTER (WHERE {moved}), []),
                        coalesce(list(school_target ORDER BY school_ref) FILTER (WHERE {moved}), [])
                 FROM {SCHOOL_TARGETS}""", {"prefix": source.sis_id_prefix}).fetchone()
    return {"unmapped_schools": unmapped, "moved_schools": moved_schools, "moved_to": moved_to}


def _map_entity(con, source, entity: str, tables: set[str], params: dict, dropped: set[str]) -> EntityCounts:
    """Write one entity's mapped table and count it; what it dropped goes to ``temp.dropped_<entity>``."""
    params, linked = dict(params), _linked(source.name, entity, dropped)
    decided = _decided(source, entity, tables, params, linked)
    mapped = stage_table("mapped", source.name, entity)
    execute(con, f"CREATE OR REPLACE TABLE {mapped} AS"
                 f" SELECT * EXCLUDE ({WORK_COLUMNS}) FROM ({decided}) WHERE drop_reason IS NULL", params)
    (rows_in,) = con.execute(f"SELECT count(*) FROM {raw_records(source.name, entity, tables)}").fetchone()
    (rows_out,) = con.execute(f"SELECT count(*) FROM {mapped}").fetchone()
    counts = EntityCounts(rows_in=rows_in, rows_out=rows_out)
    has_schools = "schools" in ENTITIES[entity].references.values()
    if entity == "schools" or linked or (has_schools and params["unmapped_schools"]):
        kept = ", ".join(ident(c) for c in dict.fromkeys(("sis_id", *links(entity), "record_id", "school_ref")))
        execute(con, f"CREATE OR REPLACE TEMP TABLE {_dropped(entity)} AS"
                     f" SELECT {kept}, drop_reason FROM ({decided}) WHERE drop_reason IS NOT NULL", params)
        dropped.add(entity)
        counts.dropped = dict(con.execute(
            f"SELECT drop_reason, count(*) FROM {_dropped(entity)} GROUP BY ALL ORDER BY ALL").fetchall())
    if duplicates := rows_in - rows_out - sum(counts.dropped.values()):
        counts.dropped = {DUPLICATE: duplicates, **counts.dropped}
    return counts


def _decided(source, entity: str, tables: set[str], params: dict, linked: str) -> str:
    """The query of every newest record of ``entity``, mapped, with its ``drop_reason`` (NULL: kept);
    ``linked`` is the condition that it is linked to a record dropped here.

    The school reference that is one id (``school_key``; for schools their own id) is joined to
    ``temp.school_targets``; a list of school ids (``school_list``) is rewritten element-wise.
    Which of the two decides whether a record has no mapped school left: the list when there is one.
    """
    spec = ENTITIES[entity]
    mapping, attributes = effective_mapping(entity, source.attributes.get(entity), source.app), mappable(entity)
    payload = ["payload"] if any(uses_payload(e) for e in mapping.values()) else []
    records = newest_records(raw_records(source.name, entity, tables), [*spec.all_columns, *payload])
    ids = {"sis_id", *links(entity), *PARENT_ORGS.get(entity, ())}
    school_list, school_key = _school_columns(entity)

    columns = {}
    for name, kind in staging_columns(entity).items():
        sql = to_sql(mapping[name], entity, params, kind) if name in attributes else f"r.{ident(name)}"
        if name == "source":
            sql = "$source"
        elif name == school_key:
            sql = f"CASE WHEN st.school_unmapped THEN NULL ELSE coalesce(st.school_target, {prefixed(sql)}) END"
        elif name == school_list:
            sql = f"list_transform({_mapped_schools(sql)}, lambda school: {_passport_school('school')})"
        elif name in ids:
            sql = prefixed(sql, kind)
        elif entity == "schools" and name == "name":
            sql = f"coalesce(st.school_name, {sql})"
        columns[name] = f"CAST({sql} AS {kind})"
    if school_list:
        raw_list = f"r.{ident(school_list)}"
        columns["unmapped_school"] = f"len({raw_list}) > 0 AND len({_mapped_schools(raw_list)}) = 0"
    else:
        columns["unmapped_school"] = "coalesce(st.school_unmapped, false)" if school_key else "false"
    merged = "st.school_target IS NOT NULL AND row_number() OVER (PARTITION BY st.school_target ORDER BY r.sis_id) > 1"
    columns["merged_school"] = merged if entity == "schools" else "false"
    columns["record_id"] = prefixed("r.sis_id")
    columns["school_ref"] = f"r.{ident(school_key)}" if school_key else "NULL"

    join = ""
    if school_key:
        only_schools = " AND r.org_type = 'school'" if entity == "schools" else ""
        join = f" LEFT JOIN {SCHOOL_TARGETS} AS st ON st.school_ref = r.{ident(school_key)}{only_schools}"
    select = ", ".join(f"{sql} AS {ident(name)}" for name, sql in columns.items())
    mapped = f"SELECT {select} FROM ({records}) AS r{join}"
    distinct = ""
    if school_list:
        column = ident(school_list)
        first_seen = f"lambda school, i: list_position({column}, school) = i"
        distinct = f" REPLACE (list_filter({column}, {first_seen}) AS {column})"
    reason = (f"CASE WHEN unmapped_school THEN '{UNMAPPED}' WHEN merged_school THEN '{MERGED}'"
              f" WHEN {linked or 'false'} THEN '{LINKED}' END")
    return f"SELECT *{distinct}, {reason} AS drop_reason FROM ({mapped})"


def _school_columns(entity: str) -> tuple[str | None, str | None]:
    """The school reference of ``entity`` that is a list, and the one that is one id (for schools,
    their own id): ``(school_list, school_key)``, None where there is none."""
    spec = ENTITIES[entity]
    school_refs = [c for c, target in spec.references.items() if target == "schools"]
    school_list = next((c for c in school_refs if spec.all_columns[c] == TEXT_LIST), None)
    school_key = "sis_id" if entity == "schools" else next((c for c in school_refs if c != school_list), None)
    return school_list, school_key


def _record_left_out(con, source, entity: str, reason: str, dropped: set[str], run_id: str) -> None:
    """Raise the issue of each ``entity`` record dropped here for ``reason``: one insert from its
    dropped table, with a message saying why."""
    school_list, school_key = _school_columns(entity)
    params = {"rule": RULES[reason], "reason": reason, "skipped": SKIPPED}
    outcome = "': the record is left out'"
    if reason == MERGED:
        attribute, message = "'sis_id'", (f"'school ' || {quoted('school_ref')} || ' is merged into Passport school '"
                                          f" || {quoted('sis_id')} || ': only that school is synced'")
    elif reason == UNMAPPED and entity == "schools":
        attribute, message = "'sis_id'", (f"'school ' || {quoted('school_ref')}"
                                          " || ' is not in the schools mapping: its data is left out'")
    elif reason == UNMAPPED and school_list:
        attribute = param(params, school_list)
        message = f"'none of ' || {attribute} || ' is a school in the schools mapping' || {outcome}"
    elif reason == UNMAPPED:
        attribute = param(params, school_key)
        message = (f"{attribute} || ' ' || {quoted('school_ref')}"
                   f" || ' is a school not in the schools mapping' || {outcome}")
    else:
        cases = _links_dropped(source.name, entity, dropped)
        attribute = "CASE " + " ".join(f"WHEN {when} THEN {param(params, column)}" for column, when in cases) + " END"
        message = "CASE " + " ".join(
            f"WHEN {when} THEN {param(params, column + ' ')} || {quoted(ident(column))}"
            f" || ' is left out with an unmapped school' || {outcome}" if column else
            f"WHEN {when} THEN 'every student of the contact is left out with an unmapped school:"
            " the contact is left out'"
            for column, when in cases) + " END"
    record_issues(con, run_id=run_id, source=source.name, entity=entity, params=params,
                  select=f"SELECT record_id, {attribute}, $rule, $skipped, {message} FROM {_dropped(entity)}"
                         " WHERE drop_reason = $reason")


def _mapped_schools(sql: str) -> str:
    """A list of school ids without the unmapped ones."""
    return f"list_filter({sql}, lambda school: list_contains(CAST($unmapped_schools AS VARCHAR[]), school) IS NOT TRUE)"


def _passport_school(school: str) -> str:
    """The Passport school id of a mapped source school id: where it moved (merged), else itself prefixed."""
    moved = f"list_extract(CAST($moved_to AS VARCHAR[]), list_position(CAST($moved_schools AS VARCHAR[]), {school}))"
    return f"coalesce({moved}, {prefixed(school)})"


def _linked(source: str, entity: str, dropped: set[str]) -> str:
    """The condition (on mapped columns) that a record is linked to one dropped here; '' if none can be."""
    return " OR ".join(when for _, when in _links_dropped(source, entity, dropped))


def _links_dropped(source: str, entity: str, dropped: set[str]) -> list[tuple[str | None, str]]:
    """``(column, condition)``: each way a record of ``entity`` is linked to one dropped here (for
    a contact, column None: every link of it was dropped)."""
    found = [(column, f"{ident(column)} IN (SELECT sis_id FROM {_dropped(target)})")
             for column, target in LINKS.get(entity, ()) if target in dropped]
    if entity == "contacts" and "student_contacts" in dropped:
        contact_links = stage_table("mapped", source, "student_contacts")
        found.append((None, f"(sis_id IN (SELECT contact_sis_id FROM {_dropped('student_contacts')}) AND sis_id NOT IN"
                            f" (SELECT contact_sis_id FROM {contact_links} WHERE contact_sis_id IS NOT NULL))"))
    return found


def _dropped(entity: str) -> str:
    """The temp table of the ids (and references) of the ``entity`` records dropped here."""
    return ident("temp", "dropped_" + entity)
