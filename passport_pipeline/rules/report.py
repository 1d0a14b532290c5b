"""What a stage did, per entity: rows in and out, why rows were dropped, issues raised."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class EntityCounts:
    """One entity through one stage."""

    rows_in: int = 0
    rows_out: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    """reason (e.g. ``unmapped school``, ``filter rules``, ``linked student dropped``) -> rows."""
    issues: dict[str, int] = field(default_factory=dict)
    """``rule (severity)`` (e.g. ``report_if_missing (Error)``) -> issues raised."""


@dataclass
class StageReport:
    """One stage of one source: its counts per entity, plus stage-specific facts."""

    stage: str
    source: str
    entities: dict[str, EntityCounts] = field(default_factory=dict)
    facts: dict[str, int | str] = field(default_factory=dict)
    """Stage-wide numbers worth showing, e.g. ``{"mapped schools": 6, "unmapped schools": 2}``."""
