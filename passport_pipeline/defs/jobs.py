"""Jobs: the sync (every asset, in one process: DuckDB has one writer)."""

import dagster as dg

sync_job = dg.define_asset_job(
    "sync",
    selection=dg.AssetSelection.all(),
    executor_def=dg.in_process_executor,
    description="Run Sync: extract every configured source (full by default; set mode: delta in "
    "the launchpad for an incremental run) and everything downstream.",
)
