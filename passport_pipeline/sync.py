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
from passport_pipeline.defs.report import REPORT_KEY
from passport_pipeline.sync_report import Incomplete, incomplete_scopes, sync_report
from passport_pipeline.warehouse.connection import Warehouse

SUCCEEDED, INCOMPLETE, FAILED = "succeeded", "incomplete", "failed"
EXIT_CODES = {SUCCEEDED: 0, FAILED: 1, INCOMPLETE: 3}
"""Exit status of ``passport-pipeline sync``: 2 is taken by configuration errors."""


@dataclass
class SyncOutcome:
    """A finished sync run: how it ended, its id, how long, its report and its incomplete scopes."""

    status: str
    """``succeeded``; ``incomplete``: every step ran, but some scope could not be extracted
    completely (it kept its previous data); ``failed``: a step broke off."""
    run_id: str
    seconds: float
    report: str
    incomplete: list[Incomplete]

    @property
    def success(self) -> bool:
        return self.status == SUCCEEDED


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
    with Warehouse(config.warehouse) as warehouse:
        report = sync_report(warehouse, config, result.run_id)
        incomplete = incomplete_scopes(warehouse, result.run_id)
    failures = [event for event in result.all_events if event.is_step_failure]
    report_step = REPORT_KEY.to_python_identifier()
    if result.success:
        status = SUCCEEDED
    elif incomplete and all(event.step_key == report_step for event in failures):
        status = INCOMPLETE
    else:
        status = FAILED
        failure = next((e for e in result.all_events if e.is_failure), None)
        report += f"\nThe run failed: {failure.message if failure is not None else 'see the run logs'}"
    return SyncOutcome(status, result.run_id, seconds, report, incomplete)
