"""The code location loads the way `dagster dev` and `dg check defs` load it."""

import dagster as dg

from passport_pipeline.definitions import defs


def test_definitions_load_without_network_or_warehouse():
    loaded = defs()
    assert isinstance(loaded, dg.Definitions)
    loaded.resolve_all_job_defs()


def test_every_step_scrubs_secrets_from_what_it_tells_dagster():
    """Each asset and op of the code location goes through :func:`..defs.scrubbed.scrubbed_logs`."""
    loaded = defs()
    nodes = {node.name: node for job in loaded.resolve_all_job_defs() for node in job.graph.iterate_op_defs()}
    assert {"check_connections", "sync_report"} <= set(nodes) and len(nodes) > 5
    unscrubbed = [name for name, node in nodes.items()
                  if not getattr(node.compute_fn.decorated_fn, "scrubs_logs", False)]
    assert unscrubbed == []
