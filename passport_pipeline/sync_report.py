"""What a sync run did, as text for the terminal: extraction per source and entity, then each
rule stage's row counts, the schools mapping, and the issues raised.

Everything is read back from the warehouse (``sync.extractions``, the stage tables,
``sync.issues``), so the report says what the run left behind, whichever way it was launched.
"""

from __future__ import annotations

from passport_pipeline.config import PassportConfig
from passport_pipeline.rules.tables import STAGES, existing_tables, schools_mapping_table, stage_table
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.raw import raw_table


def sync_report(config: PassportConfig, run_id: str) -> str:
    """The report of run ``run_id``: extraction, rule stages and issues, per source."""
    with Warehouse(config.warehouse) as warehouse:
        read = warehouse.reading()
        tables = existing_tables(read)
        lines = _extraction(read, run_id)
        for source in config.sources:
            lines += _stages(read, tables, source.name, source.entities, run_id)
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
                  count(*) FILTER (status = 'complete'), count(*) FILTER (status = 'failed')
           FROM sync.extractions WHERE run_id = ? GROUP BY source, entity ORDER BY source, entity""",
        [run_id],
    ).fetchall()
    lines = ["Extraction", f"{'source':<12} {'entity':<18} {'mode':<6} {'rows':>10} {'scopes ok':>10} "
             f"{'failed':>7} {'quarantined':>12}"]
    for source, entity, mode, landed, quarantined, complete, failed in rows:
        lines.append(f"{source:<12} {entity:<18} {mode:<6} {landed:>10,} {complete:>10} {failed:>7} "
                     f"{quarantined:>12,}")
    return lines


def _stages(read, tables: set[str], source: str, entities, run_id: str) -> list[str]:
    """Rows after each stage and issues per entity; nothing when the stages have not run."""
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
    return lines


def _count(read, tables: set[str], table: str) -> int | None:
    if table not in tables:
        return None
    (n,) = read.execute(f"SELECT count(*) FROM {table}").fetchone()
    return n
