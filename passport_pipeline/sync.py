"""Run Sync from the command line: the Dagster ``sync`` job, in this process, then what happened.

The same job the UI launches runs here in-process (DuckDB has one writer), so a sync from the
terminal and one from the UI leave the same records in ``sync.*``. The sync takes the warehouse
before its run starts and keeps it until its report is read, so a second sync waits (a bounded
time) or is refused in one line naming this one, and never starts a Dagster run it cannot do.
A run that fails is told in one line, the cause and the fix (:mod:`.failures`); the traceback
only on request.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg

from passport_pipeline.config import load_config
from passport_pipeline.defs.report import REPORT_KEY
from passport_pipeline.defs.resources import fail_dead_run
from passport_pipeline.failures import STOPPED
from passport_pipeline.sync_report import Incomplete, incomplete_scopes, sync_report
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.lock import WAIT_SECONDS, Claim, Owner

if TYPE_CHECKING:
    from dagster._utils.error import SerializableErrorInfo

SUCCEEDED, INCOMPLETE, FAILED = "succeeded", "incomplete", "failed"
EXIT_CODES = {SUCCEEDED: 0, FAILED: 1, INCOMPLETE: 3}
"""Exit status of ``passport-pipeline sync``: 2 is taken by configuration errors, 130 by a stop
(Ctrl-C or SIGTERM)."""
STOPPED_EXIT = 130
INTERRUPTED = ("DagsterExecutionInterruptedError", "KeyboardInterrupt")


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
    failure: str | None = None
    """Why a failed run failed, in one line: the cause and the fix."""
    details: str | None = None
    """A failed run's error with its traceback (shown with ``--debug``)."""
    stopped: bool = False
    """The run was stopped by Ctrl-C or SIGTERM."""

    @property
    def success(self) -> bool:
        return self.status == SUCCEEDED


def run_sync(mode: str = "full", *, debug: bool = False, wait_seconds: float = WAIT_SECONDS,
             waiting: Callable[[str], None] = lambda message: None) -> SyncOutcome:
    """Run the ``sync`` job over every configured source; return its outcome and report.

    Waits up to ``wait_seconds`` for another sync writing the warehouse (telling ``waiting`` why),
    then raises :class:`~.warehouse.lock.WarehouseBusy`. Dagster's own log (and its tracebacks)
    shows only with ``debug``."""
    from passport_pipeline.definitions import defs

    config = load_config()
    job = defs().resolve_job_def("sync")
    run_config = {"ops": {f"extract_{s.name}": {"config": {"mode": mode}} for s in config.sources},
                  "loggers": {"console": {"config": {"log_level": "WARNING" if debug else "CRITICAL"}}}}
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    run_id = str(uuid.uuid4())
    with instance:
        claim = Claim(Owner.this_process("passport-pipeline sync", run_id=run_id), wait_seconds, waiting,
                      took_over=lambda died: fail_dead_run(instance, died, run_id))
        with Warehouse(config.warehouse, claim) as warehouse:
            started = time.perf_counter()
            result = job.execute_in_process(run_config=run_config, instance=instance, raise_on_error=False,
                                            run_id=run_id)
            seconds = time.perf_counter() - started
            report = sync_report(warehouse, config, run_id)
            incomplete = incomplete_scopes(warehouse, run_id)
    failures = [event for event in result.all_events if event.is_step_failure]
    report_step = REPORT_KEY.to_python_identifier()
    if result.success:
        return SyncOutcome(SUCCEEDED, run_id, seconds, report, incomplete)
    if incomplete and all(event.step_key == report_step for event in failures):
        return SyncOutcome(INCOMPLETE, run_id, seconds, report, incomplete)
    line, error = _failure(result)
    stopped = error is not None and any(cause.cls_name in INTERRUPTED for cause in _causes(error))
    return SyncOutcome(FAILED, run_id, seconds, report, incomplete, failure=STOPPED if stopped else line,
                       details=error.to_string() if error is not None else None, stopped=stopped)


def tell(outcome: SyncOutcome, debug: bool = False) -> int:
    """Print what the run did (the report), or why it failed in one line (the traceback too with
    ``debug``); return the exit status."""
    if outcome.status == FAILED:
        if debug and outcome.details:
            print(outcome.details, file=sys.stderr)
        print(f"Run {outcome.run_id} FAILED after {outcome.seconds:,.1f} s: {outcome.failure}", file=sys.stderr)
        return STOPPED_EXIT if outcome.stopped else EXIT_CODES[FAILED]
    state = outcome.status if outcome.success else outcome.status.upper()
    print(f"Run {outcome.run_id} {state} in {outcome.seconds:,.1f} s.\n")
    print(outcome.report)
    return EXIT_CODES[outcome.status]


def _failure(result: dg.ExecuteInProcessResult) -> tuple[str, SerializableErrorInfo | None]:
    """The first failure of a failed run: the line a person reads, and the error behind it."""
    step = next((event for event in result.all_events if event.is_step_failure), None)
    if step is not None:
        data = step.step_failure_data
        described = data.user_failure_data.description if data.user_failure_data else None
        return described or _unexplained(data.error, f"step {step.step_key}"), data.error
    run = next((event for event in result.all_events if event.is_run_failure), None)
    error = run.job_failure_data.error if run is not None and run.job_failure_data else None
    if error is None:
        return "the run failed: see its logs in the Dagster UI.", None
    failure = next((cause for cause in _causes(error) if cause.cls_name == "Failure"), None)
    if failure is not None:
        return failure.message.split(": ", 1)[-1].strip(), error
    return _unexplained(error, "the run"), error


def _causes(error: SerializableErrorInfo) -> list[SerializableErrorInfo]:
    chain = []
    while error is not None:
        chain.append(error)
        error = error.cause
    return chain


def _unexplained(error: SerializableErrorInfo | None, where: str) -> str:
    """A failure no one foresaw (a bug): its innermost error in one line, and how to see more."""
    if error is None:
        return f"{where} failed: see its logs in the Dagster UI."
    cause = _causes(error)[-1]
    words = " ".join(cause.message.split())
    words = words if len(words) <= 300 else words[:299] + "…"
    return f"{where} failed on an unexpected error: {words}. Run again with --debug for the traceback."
