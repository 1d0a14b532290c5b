"""Resources: the configured sources (reachable for the run), the configuration, and the DuckDB warehouse."""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from passport_pipeline.config import PassportConfig, load_config
from passport_pipeline.simulator.embedded import reachable
from passport_pipeline.warehouse.connection import Warehouse


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
        with reachable(self.load(), Path(self.simulator_dir) if self.simulator_dir else None) as config:
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
    """The DuckDB warehouse file, opened read-write for the run (one writer at a time)."""

    path: str | None = None
    """Warehouse file (default: passport.yaml's ``warehouse``, or PASSPORT_WAREHOUSE)."""
    config_path: str | None = None

    def file(self) -> Path:
        if self.path:
            return Path(self.path)
        return load_config(Path(self.config_path) if self.config_path else None).warehouse

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Generator[Warehouse, None, None]:
        with Warehouse(self.file()) as warehouse:
            yield warehouse
