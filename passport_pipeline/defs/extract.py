"""Extraction assets (group ``extract``): one per configured source × entity, ``raw/<source>/<entity>``.

Each source is one multi-asset, so one run reads the source once (a read may land several
entities) and any subset can be materialized from the UI. The work is
:func:`passport_pipeline.extract.extract_source`; this module only wires it and reports.
"""

from typing import Literal

import dagster as dg

from passport_pipeline.config import PassportConfig, PrivacySettings, Source, load_config
from passport_pipeline.defs.scrubbed import scrubbed_logs
from passport_pipeline.entities import ENTITIES
from passport_pipeline.extract import EntityOutcome, extract_source
from passport_pipeline.previews import preview
from passport_pipeline.failures import one_line_failures
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.raw import LANDING_COLUMNS, raw_table

GROUP = "extract"
COMPLETE_CHECK = "complete"


class ExtractConfig(dg.Config):
    """How to read: ``full`` (a complete snapshot, per school) or ``delta`` (what changed since
    the last complete pull; sources without delta support read in full)."""

    mode: Literal["full", "delta"] = "full"


def raw_key(source: str, entity: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", source, entity])


def extraction_assets(source: Source) -> dg.AssetsDefinition:
    """The multi-asset landing ``source``'s configured entities in ``raw.<source>__<entity>``."""
    specs = [
        dg.AssetSpec(
            raw_key(source.name, entity),
            description=f"{ENTITIES[entity].description} As sent by source '{source.name}' "
            f"({source.app}), landed page by page in raw.{source.name}__{entity}.",
            group_name=GROUP,
            kinds={"duckdb"},
            skippable=True,
            metadata={"dagster/column_schema": _schema(entity), "dagster/table_name": f"raw.{source.name}__{entity}"},
        )
        for entity in source.entities
    ]
    checks = [
        dg.AssetCheckSpec(COMPLETE_CHECK, asset=raw_key(source.name, entity),
                          description="Every scope (school) of this entity was extracted completely.")
        for entity in source.entities
    ]

    @dg.multi_asset(name=f"extract_{source.name}", specs=specs, check_specs=checks, can_subset=True,
                    description=f"Extract source '{source.name}' ({source.app}) into raw tables.")
    @scrubbed_logs
    @one_line_failures(source)
    def _extract(context: dg.AssetExecutionContext, config: ExtractConfig,
                 sources: dg.ResourceParam[PassportConfig], warehouse: dg.ResourceParam[Warehouse]):
        configured = sources.source(source.name)
        selected = [key.path[-1] for key in context.selected_asset_keys]
        result = extract_source(warehouse, configured, run_id=context.run_id, entities=selected,
                                mode=config.mode, log=context.log.info)
        context.log.info(f"{source.name}: {result.mode} extraction took {result.seconds:,.1f} s")
        for entity, outcome in result.entities.items():
            key = raw_key(source.name, entity)
            yield dg.MaterializeResult(
                asset_key=key,
                metadata=_metadata(warehouse, configured, sources.privacy, entity, outcome, result.mode),
                check_results=[_completeness(key, outcome)],
            )

    return _extract


@dg.definitions
def extract_definitions() -> dg.Definitions:
    """One extraction multi-asset per source configured in passport.yaml (read locally, no I/O)."""
    return dg.Definitions(assets=[extraction_assets(source) for source in load_config().sources])


def _schema(entity: str) -> dg.TableSchema:
    columns = {**ENTITIES[entity].all_columns, **LANDING_COLUMNS}
    return dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns.items()])


def _metadata(warehouse: Warehouse, source: Source, privacy: PrivacySettings, entity: str,
              outcome: EntityOutcome, mode: str) -> dict:
    table = raw_table(source.name, entity)
    read = warehouse.reading()
    (total,) = read.execute(f"SELECT count(*) FROM {table}").fetchone()
    metadata = {
        "dagster/row_count": total,
        "mode": mode,
        "rows landed this run": outcome.rows,
        "scopes complete": len(outcome.complete),
        "scopes failed": len(outcome.failed),
        "records quarantined": outcome.quarantined,
        "provided by the source": not outcome.absent,
        "watermark": outcome.watermark or "(unchanged)",
        "preview": dg.MetadataValue.md(preview(read, table, entity, source, privacy)),
    }
    if outcome.warnings:
        metadata["warnings"] = dg.MetadataValue.md("\n".join(f"- {w}" for w in outcome.warnings[:20]))
    return metadata


def _completeness(key: dg.AssetKey, outcome: EntityOutcome) -> dg.AssetCheckResult:
    failures = "\n".join(f"- `{scope}`: {error}" for scope, error in outcome.failed.items())
    if outcome.absent:
        description = "Not provided by the source (absent): not extracted; its previous rows, if any, stay."
    elif outcome.failed:
        description = "These scopes failed; their previous complete rows were kept and nothing is inferred from them."
    else:
        description = None
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=COMPLETE_CHECK,
        passed=not outcome.failed,
        metadata={"failed scopes": dg.MetadataValue.md(failures or "none"),
                  "complete scopes": len(outcome.complete), "provided by the source": not outcome.absent},
        description=description,
    )
