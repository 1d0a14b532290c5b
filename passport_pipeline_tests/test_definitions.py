"""The code location loads the way `dagster dev` and `dg check defs` load it."""

import dagster as dg

from passport_pipeline.definitions import defs


def test_definitions_load_without_network_or_warehouse():
    loaded = defs()
    assert isinstance(loaded, dg.Definitions)
    loaded.resolve_all_job_defs()
