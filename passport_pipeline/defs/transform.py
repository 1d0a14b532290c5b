"""Rule assets (group ``transform``): what each sync rule did to each source's records.

Per source, one asset per stage table, so the UI shows each stage's rows in and out, why rows
were dropped, the issues raised and a preview:

    staging/<source>/schools_mapping        the schools mapping report
    mapped/<source>/<entity>                attribute mapping, SIS ID prefix, schools applied
    filtered/<source>/<entity>              staff scope, emergency contacts, filter rules, linked
    staging/<source>/<entity>               data requirements, formats, referential integrity

A stage computes all entities of its source at once (include linked and referential integrity
look across entities), so its multi-asset materializes all of them together. The work is in
:mod:`passport_pipeline.rules`; this module wires it and reports.
"""

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

import dagster as dg

from passport_pipeline.config import PassportConfig, PrivacySettings, Source, load_config
from passport_pipeline.defs.extract import raw_key
from passport_pipeline.defs.scrubbed import scrubbed_logs
from passport_pipeline.entities import ENTITIES, links
from passport_pipeline.previews import preview
from passport_pipeline.failures import one_line_failures
from passport_pipeline.rules.filters import filter_records
from passport_pipeline.rules.mapping import map_attributes
from passport_pipeline.rules.report import EntityCounts, StageReport
from passport_pipeline.rules.requirements import check_requirements
from passport_pipeline.rules.schools import map_schools
from passport_pipeline.rules.tables import schools_mapping_table, stage_table, staging_columns
from passport_pipeline.warehouse.connection import Warehouse

GROUP = "transform"
ISSUES_CHECK = "no_issues"
KEY_PREFIX = {"mapped": "mapped", "filtered": "filtered", "staged": "staging"}
STAGE_WORDS = {
    "mapped": "after attribute mapping, SIS ID prefix and schools mapping",
    "filtered": "after staff scope, emergency contacts, filter rules and include linked",
    "staged": "after data requirements, format checks and referential integrity: the candidate roster",
}
PREVIOUS = {"mapped": "raw", "filtered": "mapped", "staged": "filtered"}
SCHOOLS_MAPPING_COLUMNS = {
    "source_school_id": "sis_id", "source_school_name": "name", "status": None, "new_in_source": None,
    "passport_school_sis_id": "sis_id", "passport_school_name": "name", "existing_passport_id": None,
}
"""The schools mapping report's columns -> the school attribute each holds (None: the report's own)."""


def stage_key(stage: str, source: str, entity: str) -> dg.AssetKey:
    return dg.AssetKey([KEY_PREFIX[stage], source, entity])


def schools_mapping_key(source: str) -> dg.AssetKey:
    return dg.AssetKey(["staging", source, "schools_mapping"])


def schools_mapping_asset(source: Source) -> dg.AssetsDefinition:
    """The schools mapping report of ``source``: mapped, unmapped, missing and new schools."""

    @dg.asset(
        key=schools_mapping_key(source.name),
        deps=[raw_key(source.name, "schools")] if "schools" in source.entities else [],
        group_name=GROUP,
        kinds={"duckdb"},
        description=f"Schools mapping of source '{source.name}': each source school mapped to a "
        "Passport school, unmapped (its data stays out), missing in the source, or new in it.",
        metadata={"dagster/table_name": f"staging.{source.name}__schools_mapping"},
    )
    @scrubbed_logs
    @one_line_failures()
    def _schools_mapping(context: dg.AssetExecutionContext, passport_config: dg.ResourceParam[PassportConfig],
                         warehouse: dg.ResourceParam[Warehouse]) -> dg.MaterializeResult:
        configured = passport_config.source(source.name)
        report = map_schools(warehouse, configured, context.run_id)
        table = schools_mapping_table(source.name)
        read = warehouse.reading()
        (rows,) = read.execute(f"SELECT count(*) FROM {table}").fetchone()
        shown = preview(read, table, "schools", configured, passport_config.privacy,
                        report_columns=SCHOOLS_MAPPING_COLUMNS, order_by="status, source_school_id", limit=50)
        return dg.MaterializeResult(metadata={
            "dagster/row_count": rows,
            **{key.replace("_", " "): value for key, value in report.facts.items()},
            "report": dg.MetadataValue.md(shown),
        })

    return _schools_mapping


def stage_assets(source: Source, stage: str, run: Callable[..., StageReport]) -> dg.AssetsDefinition:
    """One stage of ``source`` as a multi-asset: one table per entity."""
    previous = PREVIOUS[stage]
    specs = []
    for entity in source.entities:
        upstream = {stage_key(previous, source.name, entity) if previous != "raw" else raw_key(source.name, entity)}
        related = {t for targets in links(entity).values() for t in targets if t in source.entities}
        if stage == "mapped":
            upstream.add(schools_mapping_key(source.name))
            upstream |= {raw_key(source.name, t) for t in related}
        else:
            upstream |= {stage_key(previous if stage == "filtered" else stage, source.name, t)
                         for t in related if t != entity}
        specs.append(dg.AssetSpec(
            stage_key(stage, source.name, entity),
            description=f"{ENTITIES[entity].description} From source '{source.name}', {STAGE_WORDS[stage]}.",
            group_name=GROUP,
            kinds={"duckdb"},
            deps=sorted(upstream, key=lambda k: k.to_user_string()),
            metadata={"dagster/column_schema": _schema(entity),
                      "dagster/table_name": stage_table(stage, source.name, entity).replace('"', "")},
        ))
    checks = [
        dg.AssetCheckSpec(ISSUES_CHECK, asset=stage_key(stage, source.name, entity),
                          description="No record of this entity raised a data issue in this run "
                          "(a warning: records with Error issues are kept, Skipped ones left out).")
        for entity in source.entities
    ] if stage == "staged" else []

    @dg.multi_asset(name=f"{stage}_{source.name}", specs=specs, check_specs=checks,
                    description=f"Source '{source.name}': the tables {STAGE_WORDS[stage]}.")
    @scrubbed_logs
    @one_line_failures()
    def _stage(context: dg.AssetExecutionContext, passport_config: dg.ResourceParam[PassportConfig],
               warehouse: dg.ResourceParam[Warehouse]):
        configured = passport_config.source(source.name)
        if stage == "filtered":
            report = run(warehouse, configured, context.run_id, _today(passport_config))
        else:
            report = run(warehouse, configured, context.run_id)
        facts = {name.replace("_", " "): value for name, value in report.facts.items()}
        for entity, counts in report.entities.items():
            key = stage_key(stage, source.name, entity)
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={**_metadata(warehouse, configured, passport_config.privacy, stage, entity, counts),
                          **facts},
                check_results=[_issues_check(key, counts)] if stage == "staged" else [],
            )

    return _stage


@dg.definitions
def transform_definitions() -> dg.Definitions:
    """The rule stages of every source configured in passport.yaml (read locally, no I/O)."""
    assets = []
    for source in load_config().sources:
        assets += [
            schools_mapping_asset(source),
            stage_assets(source, "mapped", map_attributes),
            stage_assets(source, "filtered", filter_records),
            stage_assets(source, "staged", check_requirements),
        ]
    return dg.Definitions(assets=assets)


def _today(config: PassportConfig) -> dt.date:
    """The day of the sync in the district's timezone (``is_past``/``is_future`` compare with it)."""
    return dt.datetime.now(ZoneInfo(config.timezone)).date()


def _schema(entity: str) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in staging_columns(entity).items()])


def _metadata(warehouse: Warehouse, source: Source, privacy: PrivacySettings, stage: str, entity: str,
              counts: EntityCounts) -> dict:
    table = stage_table(stage, source.name, entity)
    return {
        "dagster/row_count": counts.rows_out,
        "rows in": counts.rows_in,
        "rows dropped": max(0, counts.rows_in - counts.rows_out),
        "dropped because": dg.MetadataValue.md(_bullets(counts.dropped)),
        "issues": dg.MetadataValue.md(_bullets(counts.issues)),
        "preview": dg.MetadataValue.md(preview(warehouse.reading(), table, entity, source, privacy)),
    }


def _issues_check(key: dg.AssetKey, counts: EntityCounts) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=ISSUES_CHECK,
        passed=not any(counts.issues.values()),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"issues": dg.MetadataValue.md(_bullets(counts.issues))},
        description=None if not any(counts.issues.values()) else
        "See sync.issues for this run: one row per record and problem.",
    )


def _bullets(counts: dict[str, int]) -> str:
    shown = {reason: n for reason, n in counts.items() if n}
    return "\n".join(f"- {reason}: {n:,}" for reason, n in shown.items()) or "none"
