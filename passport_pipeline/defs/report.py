"""The ``sync_report`` asset: what a sync run did, in the UI, and the run's outcome.

It runs last in the ``sync`` job, after every source's candidate roster, and shows the same report
``passport-pipeline sync`` prints. When some scope could not be extracted completely it fails, so
the run fails with the scopes and their reasons as its message — the rule stages still ran on the
data kept from the last complete extraction of those scopes.
"""

import dagster as dg

from passport_pipeline.config import PassportConfig, load_config
from passport_pipeline.crash import crash_point
from passport_pipeline.defs.scrubbed import scrubbed_logs
from passport_pipeline.defs.transform import stage_key
from passport_pipeline.failures import one_line_failures
from passport_pipeline.sync_report import incomplete_scopes, incomplete_text, sync_report
from passport_pipeline.warehouse.connection import Warehouse

REPORT_KEY = dg.AssetKey("sync_report")


@dg.definitions
def report_definitions() -> dg.Definitions:
    """The report asset, downstream of every configured source's candidate roster (read locally, no I/O)."""
    deps = [stage_key("staged", source.name, entity) for source in load_config().sources for entity in source.entities]

    @dg.asset(key=REPORT_KEY, deps=deps, group_name="report", kinds={"duckdb"},
              description="What this sync run did: extraction per source and entity, the rows each rule stage "
              "kept, and the issues raised. Fails, naming each scope and why, when a scope could not be "
              "extracted completely (its previous data was kept).")
    @scrubbed_logs
    @one_line_failures()
    def _sync_report(context: dg.AssetExecutionContext, passport_config: dg.ResourceParam[PassportConfig],
                     warehouse: dg.ResourceParam[Warehouse]) -> dg.MaterializeResult:
        incomplete = incomplete_scopes(warehouse, context.run_id)
        metadata = {"report": dg.MetadataValue.md(f"```\n{sync_report(warehouse, passport_config, context.run_id)}\n```"),
                    "incomplete scopes": len(incomplete)}
        crash_point("sync_report")
        if incomplete:
            raise dg.Failure(description=incomplete_text(incomplete), metadata=metadata)
        return dg.MaterializeResult(metadata=metadata)

    return dg.Definitions(assets=[_sync_report])
