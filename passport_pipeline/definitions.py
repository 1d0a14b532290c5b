"""The Dagster code location: every asset, check, job, schedule and sensor under ``defs/``."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    """Load everything under ``passport_pipeline/defs`` (nothing there touches the network at import)."""
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
