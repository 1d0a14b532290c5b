"""Run Sync from the command line: the Dagster ``sync`` job, in this process, then what happened.

The same job the UI launches runs here in-process (DuckDB has one writer), so a sync from the
terminal and one from the UI leave the same records in ``sync.*``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import dagster as dg

from passport_pipeline.config import load_config
from passport_pipeline.sync_report import sync_report


@dataclass
class SyncOutcome:
    """A finished sync run: whether it succeeded, its id, how long, and its report."""

    success: bool
    run_id: str
    seconds: float
    report: str


def run_sync(mode: str = "full", quiet: bool = True) -> SyncOutcome:
    """Run the ``sync`` job over every configured source; return its outcome and report."""
    from passport_pipeline.definitions import defs

    config = load_config()
    job = defs().resolve_job_def("sync")
    run_config = {"ops": {f"extract_{s.name}": {"config": {"mode": mode}} for s in config.sources}}
    if quiet:
        run_config["loggers"] = {"console": {"config": {"log_level": "WARNING"}}}
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    started = time.perf_counter()
    with instance:
        result = job.execute_in_process(run_config=run_config, instance=instance, raise_on_error=False)
    seconds = time.perf_counter() - started
    report = sync_report(config, result.run_id)
    if not result.success:
        failure = next((e for e in result.all_events if e.is_failure), None)
        reason = failure.message if failure is not None else "see the run's logs"
        report += f"\nThe run failed: {reason}"
    return SyncOutcome(result.success, result.run_id, seconds, report)
