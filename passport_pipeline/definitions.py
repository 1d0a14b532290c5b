"""The Dagster code location: everything under ``defs/``, with the resources attached."""

from pathlib import Path

import dagster as dg

from passport_pipeline.defs.resources import PassportConfigResource, SourcesResource, WarehouseResource


@dg.definitions
def defs() -> dg.Definitions:
    """Load ``passport_pipeline/defs`` (nothing there touches the network at import) and attach
    the sources, the configuration and the warehouse, all read from passport.yaml at run time."""
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(resources={"sources": SourcesResource(), "passport_config": PassportConfigResource(),
                                  "warehouse": WarehouseResource()}),
    )
