"""Resources: the configured sources (reachable for the run), the configuration, and the DuckDB warehouse.

One writer at a time is the warehouse's own guarantee (its writer lock, :mod:`..warehouse.lock`),
not a Dagster concurrency pool: a pool slot is claimed in Dagster's storage and outlives a run
whose process is killed — Dagster frees it only through the daemon's run monitoring, which does
not watch runs executed in-process by ``passport-pipeline sync`` — so one ``kill -9`` blocked
every later sync. The lock dies with its process; the next writer marks the dead run failed here.
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import dagster as dg

from passport_pipeline.config import PassportConfig, load_config
from passport_pipeline.failures import failing_in_one_line
from passport_pipeline.simulator.embedded import reachable
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.lock import WAIT_SECONDS, Claim, Owner


class SourcesResource(dg.ConfigurableResource):
    """The sources of ``passport.yaml``; for the run, the embedded demo district is started
    on a free loopback port when a source's ``base_url`` is ``embedded``."""

    config_path: str | None = None
    """passport.yaml to read (default: PASSPORT_CONFIG, ./passport.yaml or the repo's)."""
    simulator_dir: str | None = None
    """Where the embedded district is generated (default: data/simulator)."""

    def load(self) -> PassportConfig:
        return load_config(Path(self.config_path) if self.config_path else None)

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Generator[PassportConfig, None, None]:
        with ExitStack() as stack:
            root = Path(self.simulator_dir) if self.simulator_dir else None
            with failing_in_one_line():
                config = stack.enter_context(reachable(self.load(), root))
            yield config


class PassportConfigResource(dg.ConfigurableResource):
    """The sync rules and settings of ``passport.yaml``, read at run time (no server started):
    what the rule stages need."""

    config_path: str | None = None
    """passport.yaml to read (default: PASSPORT_CONFIG, ./passport.yaml or the repo's)."""

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Generator[PassportConfig, None, None]:
        yield load_config(Path(self.config_path) if self.config_path else None)


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file, opened read-write by the first step that uses it (one writer at a
    time: a run waits for another sync to finish, then is refused in one line naming it)."""

    path: str | None = None
    """Warehouse file (default: passport.yaml's ``warehouse``, or PASSPORT_WAREHOUSE)."""
    config_path: str | None = None
    wait_seconds: float = WAIT_SECONDS
    """How long the run waits for another sync writing the warehouse before it fails."""

    def file(self) -> Path:
        if self.path:
            return Path(self.path)
        return load_config(Path(self.config_path) if self.config_path else None).warehouse

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Generator[Warehouse, None, None]:
        job = context.dagster_run.job_name if context.dagster_run else "a job"
        claim = Claim(Owner.this_process(f"Dagster job {job}", run_id=context.run_id), self.wait_seconds,
                      waiting=context.log.warning,
                      took_over=lambda died: fail_dead_run(context.instance, died, context.run_id))
        with Warehouse(self.file(), claim, deferred=True) as warehouse:
            yield warehouse


def fail_dead_run(instance: dg.DagsterInstance | None, died: Owner, found_by: str | None) -> None:
    """Mark failed the Dagster run of a writer that died holding the warehouse (killed, crashed): it
    would show as started for ever. Runs of another Dagster instance, or already ended, stay as they are."""
    run = instance.get_run_by_id(died.run_id) if instance is not None and died.run_id else None
    if run is None or run.is_finished:
        return
    instance.report_run_failed(run, f"The run's process (pid {died.pid}) ended before the run did (killed or "
                                    f"crashed); run {found_by} found it when it took the warehouse, and marked "
                                    "the pulls it left running abandoned.")
