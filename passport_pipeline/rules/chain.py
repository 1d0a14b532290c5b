"""The rule stages of one source, in order: what a sync runs between extraction and merge.

Dagster runs each stage as its own asset (``defs/transform.py``); :func:`transform_source` runs
them back to back for tests, benchmarks and notebooks.
"""

from __future__ import annotations

import datetime as dt

from passport_pipeline.config import Source
from passport_pipeline.rules.filters import filter_records
from passport_pipeline.rules.mapping import map_attributes
from passport_pipeline.rules.report import StageReport
from passport_pipeline.rules.requirements import check_requirements
from passport_pipeline.rules.schools import map_schools
from passport_pipeline.warehouse.connection import Warehouse


def transform_source(warehouse: Warehouse, source: Source, run_id: str, today: dt.date) -> list[StageReport]:
    """Schools mapping, mapped, filtered and staged tables of ``source``, from its raw tables."""
    return [
        map_schools(warehouse, source, run_id),
        map_attributes(warehouse, source, run_id),
        filter_records(warehouse, source, run_id, today),
        check_requirements(warehouse, source, run_id),
    ]
