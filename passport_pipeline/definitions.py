"""The Dagster code location: everything under ``defs/``, with the resources attached."""

from pathlib import Path

import dagster as dg

from passport_pipeline.defs.resources import PassportConfigResource, SourcesResource, WarehouseResource


@dg.definitions
def defs() -> dg.Definitions:
    """Load ``passport_pipeline/defs`` (nothing there touches the network at import) and attach
    the sources, the configuration and the warehouse, all read from passport.yaml at run time.

    Every job runs its steps in one process (the in-process executor), as the ``sync`` job does:
    DuckDB has one writing process, and the warehouse is opened once per run and shared by its steps."""
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(resources={"sources": SourcesResource(), "passport_config": PassportConfigResource(),
                                  "warehouse": WarehouseResource()}, executor=dg.in_process_executor),
    )
