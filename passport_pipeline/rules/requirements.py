"""The staged stage: data requirements, format checks, referential integrity and masking.

:func:`check_requirements` turns a source's filtered tables into its candidate roster
(``staging.<source>__<entity>``), entity by entity in dependency order, and reports what it found
in ``sync.issues``. Per attribute, the requirement in effect (:func:`effective_requirements`) is
one of:

- ``include``: taken as it is (the default);
- ``report_if_missing``: a missing value is an issue (Error), the record is kept;
- ``skip_if_missing``: a missing value is an issue (Skipped), the record is left out — the default
  of the references a record cannot do without (:data:`DEFAULT_REQUIREMENTS`);
- ``mask``: a value is published as ``****`` (a list as ``['****']``); raw keeps the truth, and
  the checks see the real value. Ids and references cannot be masked (the config refuses it):
  they are how records are identified and linked.

Missing means NULL, blank text (only spaces, tabs, line breaks) or a list without a non-blank
element. Then every record's values are checked for their format and its end date against its
start date (:mod:`.formats`, Error, kept), its status for tobedeleted and its references for a
record leaving with one (:mod:`.tobedeleted`), and its references for a record the sync keeps
(:mod:`.integrity`, Skipped when the reference is required, else Error) — references into the
entities that are known (:mod:`.known`) only, which the report's facts name. A record left out
is left out of the staged table, not of the issues. The whole stage is one transaction: a crash
leaves the previous tables and issues as they were.
"""

from __future__ import annotations

from passport_pipeline.config import Source
from passport_pipeline.config.rules import Requirement
from passport_pipeline.crash import crash_point
from passport_pipeline.entities import ENTITIES, TEXT_LIST
from passport_pipeline.rules.expressions import BLANKS
from passport_pipeline.rules.formats import date_order_findings, format_findings
from passport_pipeline.rules.integrity import reference_findings
from passport_pipeline.rules.issues import ERROR, SKIPPED, clear_issues, record_issues
from passport_pipeline.rules.known import UNKNOWN_FACT, unknown_entities, unknown_fact
from passport_pipeline.rules.report import EntityCounts, StageReport
from passport_pipeline.rules.tables import existing_tables, stage_table, staging_columns
from passport_pipeline.rules.tobedeleted import RULE as TOBEDELETED
from passport_pipeline.rules.tobedeleted import tobedeleted_findings
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.sql import ident

RULES = ("report_if_missing", "skip_if_missing", "format", "date_order", TOBEDELETED, "referential")
"""The rules of this stage, as they appear in ``sync.issues``."""

DEFAULT_REQUIREMENTS: dict[str, dict[str, Requirement]] = {
    "classes": {"course_sis_id": "skip_if_missing", "school_sis_id": "skip_if_missing"},
    "enrollments": {"user_sis_id": "skip_if_missing", "class_sis_id": "skip_if_missing"},
    "student_contacts": {"student_sis_id": "skip_if_missing", "contact_sis_id": "skip_if_missing"},
}
"""The references a record cannot do without; every other attribute is ``include``."""

MASK = "****"

_FINDINGS = "_findings"
_MISSING = {"report_if_missing": ERROR, "skip_if_missing": SKIPPED}
_DROPPED = (TOBEDELETED, "skip_if_missing", "referential")
"""Why a record was left out, for the report: the first of these rules among its Skipped issues."""


def effective_requirements(source: Source, entity: str) -> dict[str, Requirement]:
    """Attribute -> requirement of ``entity`` in ``source``, beyond ``include``: the defaults,
    overridden by ``passport.yaml``."""
    configured = {**DEFAULT_REQUIREMENTS.get(entity, {}), **source.requirements.get(entity, {})}
    return {attribute: rule for attribute, rule in configured.items() if rule != "include"}


def check_requirements(warehouse: Warehouse, source: Source, run_id: str) -> StageReport:
    """Write the staged tables of ``source`` from its filtered tables; report and record issues."""
    report = StageReport("staged", source.name)
    masked = 0
    with warehouse.writing() as con:
        con.execute("BEGIN")
        try:
            clear_issues(con, run_id=run_id, source=source.name, rules=RULES)
            existing = existing_tables(con)
            unknown = unknown_entities(con, source)
            for entity in ENTITIES:
                if entity in source.entities:
                    report.entities[entity], count = _stage(con, source, entity, run_id, existing, unknown)
                    masked += count
            crash_point("staged.in_transaction")
            con.execute("COMMIT")
            crash_point("staged.committed")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    report.facts["masked values"] = masked
    report.facts[UNKNOWN_FACT] = unknown_fact(source, unknown)
    return report


def _stage(con, source: Source, entity: str, run_id: str, existing: set[str],
           unknown: dict[str, str]) -> tuple[EntityCounts, int]:
    """Check and stage one entity; return its counts and how many values were masked."""
    records = stage_table("filtered", source.name, entity)
    if records not in existing:
        records = ident(f"_no_{entity}")
        columns = ", ".join(f"{ident(name)} {kind}" for name, kind in staging_columns(entity).items())
        con.execute(f"CREATE OR REPLACE TEMP TABLE {records} ({columns})")
    requirements = effective_requirements(source, entity)
    known = [e for e in source.entities if e not in unknown]
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_FINDINGS}"
                " (record_id VARCHAR, attribute VARCHAR, rule VARCHAR, severity VARCHAR, message VARCHAR)")
    queries = [
        *_missing_findings(entity, records, requirements),
        *format_findings(con, entity, records),
        *date_order_findings(entity, records),
        *tobedeleted_findings(con, entity, records, known=known, requirements=requirements),
        *reference_findings(entity, records, source=source.name, known=known, requirements=requirements),
    ]
    for select, params in queries:
        con.execute(f"INSERT INTO {_FINDINGS} {select}", params)
    record_issues(con, run_id=run_id, source=source.name, entity=entity, select=f"SELECT * FROM {_FINDINGS}")

    masks = [name for name, rule in requirements.items() if rule == "mask"]
    staged = stage_table("staged", source.name, entity)
    columns = ", ".join(_published(name, kind, name in masks) for name, kind in staging_columns(entity).items())
    con.execute(f"CREATE OR REPLACE TABLE {staged} AS SELECT {columns} FROM {records} AS r"
                f" ANTI JOIN (SELECT record_id FROM {_FINDINGS} WHERE severity = $skipped) AS s"
                " ON r.sis_id IS NOT DISTINCT FROM s.record_id", {"skipped": SKIPPED, **_blanks(masks)})
    return _counts(con, entity, records, staged, masks)


def _missing(name: str, kind: str) -> str:
    """SQL: the attribute ``name`` of the record ``r`` is missing (uses ``$blanks``)."""
    column = f"r.{ident(name)}"
    if kind == TEXT_LIST:
        return f"coalesce(len(list_filter({column}, lambda v: trim(v, $blanks) <> '')), 0) = 0"
    return f"coalesce(trim({column}, $blanks), '') = ''"


def _missing_findings(entity: str, records: str, requirements: dict[str, Requirement]) -> list[tuple[str, dict]]:
    """Findings of ``report_if_missing`` and ``skip_if_missing`` attributes without a value."""
    kinds = ENTITIES[entity].all_columns
    return [(f"SELECT r.sis_id, $attribute, $rule, $severity, $message FROM {records} AS r"
             f" WHERE {_missing(name, kinds[name])}",
             {"attribute": name, "rule": rule, "severity": _MISSING[rule], "blanks": BLANKS,
              "message": f"{name} is missing: the record is {'kept' if rule == 'report_if_missing' else 'left out'}"})
            for name, rule in requirements.items() if rule in _MISSING]


def _published(name: str, kind: str, masked: bool) -> str:
    """SQL: the column ``name`` as the staged table holds it (masked when asked)."""
    column = f"r.{ident(name)}"
    if not masked:
        return column
    shown = f"['{MASK}']" if kind == TEXT_LIST else f"'{MASK}'"
    return f"CASE WHEN {_missing(name, kind)} THEN {column} ELSE {shown} END AS {ident(name)}"


def _blanks(masks: list[str]) -> dict:
    """The parameter of :func:`_missing`, for a query that masks ``masks`` (none: no parameter)."""
    return {"blanks": BLANKS} if masks else {}


def _counts(con, entity: str, records: str, staged: str, masks: list[str]) -> tuple[EntityCounts, int]:
    kinds = ENTITIES[entity].all_columns
    (rows_in,) = con.execute(f"SELECT count(*) FROM {records}").fetchone()
    masked_values = " + ".join(f"count(*) FILTER (WHERE NOT {_missing(name, kinds[name])})" for name in masks)
    rows_out, masked = con.execute(f"SELECT count(*), {masked_values or 0} FROM {staged} AS r",
                                   _blanks(masks)).fetchone()
    dropped = dict(con.execute(
        f"""SELECT reason, count(*) FROM (
                SELECT $reasons[min(list_position($reasons, rule))] AS reason
                FROM {_FINDINGS} WHERE severity = $skipped GROUP BY record_id)
            GROUP BY reason""", {"skipped": SKIPPED, "reasons": list(_DROPPED)}).fetchall())
    issues = {f"{rule} ({severity})": n for rule, severity, n in con.execute(
        f"SELECT rule, severity, count(*) FROM {_FINDINGS} GROUP BY ALL ORDER BY ALL").fetchall()}
    counts = EntityCounts(rows_in=rows_in, rows_out=rows_out, issues=issues,
                          dropped={reason: dropped.get(reason, 0) for reason in _DROPPED})
    return counts, masked
