"""What a sync run did, as text for the terminal: extraction per source and entity, then each
rule stage's row counts, the schools mapping, and the issues raised.

Everything is read back from the warehouse (``sync.extractions``, the stage tables,
``sync.issues``), so the report says what the run left behind, whichever way it was launched.
"""

from __future__ import annotations

from typing import NamedTuple

from passport_pipeline.config import PassportConfig, Source
from passport_pipeline.rules.known import unknown_entities, unknown_fact
from passport_pipeline.rules.tables import STAGES, existing_tables, schools_mapping_table, stage_table
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.raw import raw_table


class Incomplete(NamedTuple):
    """A scope a run could not extract completely, and why."""

    source: str
    entity: str
    scope: str
    error: str


def incomplete_scopes(warehouse: Warehouse, run_id: str) -> list[Incomplete]:
    """The scopes run ``run_id`` failed to extract (or left running), in order."""
    return _incomplete(warehouse.reading(), run_id)


def _incomplete(read, run_id: str) -> list[Incomplete]:
    rows = read.execute(
        "SELECT source, entity, scope, coalesce(error, 'the pull never finished') FROM sync.extractions"
        " WHERE run_id = ? AND status NOT IN ('complete', 'absent') ORDER BY ALL", [run_id]).fetchall()
    return [Incomplete(*row) for row in rows]


def incomplete_text(incomplete: list[Incomplete]) -> str:
    """The incomplete scopes, a line per source, entity and reason, under one line saying what it means."""
    scopes = "scope was" if len(incomplete) == 1 else "scopes were"
    lines = [f"{len(incomplete)} {scopes} not extracted completely; each keeps its previous data, and nothing "
             "is inferred from it:"]
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for item in incomplete:
        grouped.setdefault((item.source, item.entity, item.error), []).append(item.scope)
    for (source, entity, error), of_reason in grouped.items():
        lines.append(f"  - {source} {entity}, {_where(of_reason)}: {error}")
    return "\n".join(lines)


def _where(scopes: list[str]) -> str:
    """``the whole source``, ``school 101``, ``the whole source and schools 101, 102 and 3 more``."""
    schools = [scope for scope in scopes if scope != "*"]
    shown = ", ".join(schools[:5]) + (f" and {len(schools) - 5:,} more" if len(schools) > 5 else "")
    named = f"school{'s' if len(schools) > 1 else ''} {shown}" if schools else ""
    whole = "the whole source" if "*" in scopes else ""
    return " and ".join(part for part in (whole, named) if part)


def sync_report(warehouse: Warehouse, config: PassportConfig, run_id: str) -> str:
    """The report of run ``run_id``: extraction, rule stages and issues, per source."""
    read = warehouse.reading()
    tables = existing_tables(read)
    lines = _extraction(read, run_id)
    for source in config.sources:
        lines += _stages(read, tables, source, run_id)
    issues = read.execute(
        "SELECT rule, severity, count(*) FROM sync.issues WHERE run_id = ? GROUP BY ALL ORDER BY ALL",
        [run_id]).fetchall()
    lines.append("")
    lines.append("Issues: " + (", ".join(f"{n:,} {rule} ({severity})" for rule, severity, n in issues) or "none"))
    if issues:
        lines.append(f"  details: SELECT * FROM sync.issues WHERE run_id = '{run_id}'")
    lines.append(f"Warehouse: {config.warehouse}")
    return "\n".join(lines)


def _extraction(read, run_id: str) -> list[str]:
    rows = read.execute(
        """SELECT source, entity, any_value(mode), sum(rows), sum(quarantined),
                  count(*) FILTER (status = 'complete'), count(*) FILTER (status NOT IN ('complete', 'absent')),
                  bool_and(status = 'absent')
           FROM sync.extractions WHERE run_id = ? GROUP BY source, entity ORDER BY source, entity""",
        [run_id],
    ).fetchall()
    lines = ["Extraction", f"{'source':<12} {'entity':<18} {'mode':<6} {'rows':>10} {'scopes ok':>10} "
             f"{'failed':>7} {'quarantined':>12}"]
    for source, entity, mode, landed, quarantined, complete, failed, absent in rows:
        if absent:
            lines.append(f"{source:<12} {entity:<18} {'-':<6} {'not provided by the source (absent)':>43}")
            continue
        lines.append(f"{source:<12} {entity:<18} {mode:<6} {landed:>10,} {complete:>10} {failed:>7} "
                     f"{quarantined:>12,}")
    warnings = read.execute(
        """SELECT DISTINCT source, entity, unnest(CAST(stats->'warnings' AS VARCHAR[])) AS warning
           FROM sync.extractions WHERE run_id = ? ORDER BY ALL""", [run_id]).fetchall()
    if warnings:
        lines += ["", "Extraction warnings"]
        lines += [f"  - {source} {entity}: {warning}" for source, entity, warning in warnings]
    incomplete = _incomplete(read, run_id)
    if incomplete:
        lines += ["", *incomplete_text(incomplete).splitlines()]
    return lines


def _stages(read, tables: set[str], configured: Source, run_id: str) -> list[str]:
    """Rows after each stage and issues per entity; nothing when the stages have not run."""
    source, entities = configured.name, configured.entities
    if schools_mapping_table(source) not in tables:
        return []
    mapping = dict(read.execute(
        f"SELECT status, count(*) FROM {schools_mapping_table(source)} GROUP BY status").fetchall())
    (new,) = read.execute(f"SELECT count(*) FILTER (new_in_source) FROM {schools_mapping_table(source)}").fetchone()
    issues = {(entity, severity): n for entity, severity, n in read.execute(
        "SELECT entity, severity, count(*) FROM sync.issues WHERE run_id = ? AND source = ? AND rule <> 'quarantine'"
        " GROUP BY ALL", [run_id, source]).fetchall()}
    lines = ["", f"Rules: source '{source}' — schools: {mapping.get('mapped', 0)} mapped, "
             f"{mapping.get('unmapped', 0)} unmapped, {mapping.get('missing_in_source', 0)} missing in source, "
             f"{new} new in source",
             f"{'entity':<18} {'raw':>10} {'mapped':>10} {'filtered':>10} {'staged':>10} {'errors':>8} {'skipped':>8}"]
    for entity in entities:
        counts = [_count(read, tables, raw_table(source, entity))]
        counts += [_count(read, tables, stage_table(stage, source, entity)) for stage in STAGES]
        shown = " ".join(f"{'-' if n is None else f'{n:,}':>10}" for n in counts)
        lines.append(f"{entity:<18} {shown} {issues.get((entity, 'Error'), 0):>8,} "
                     f"{issues.get((entity, 'Skipped'), 0):>8,}")
    unknown = unknown_fact(configured, unknown_entities(read, configured))
    if unknown != "none":
        lines.append(f"Unknown, so references into them were not checked: {unknown}")
    return lines


def _count(read, tables: set[str], table: str) -> int | None:
    if table not in tables:
        return None
    (n,) = read.execute(f"SELECT count(*) FROM {table}").fetchone()
    return n
