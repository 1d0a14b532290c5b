"""What a source can read: named, paged reads, each landing one or more canonical entities."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Read:
    """One paged read of a source, the entities it lands, and whether it runs per school."""

    name: str
    lands: tuple[str, ...]
    per_school: bool = False
    absent: bool = False
    """The source does not provide it (a CSV bundle's manifest marks its file absent): its entities
    are recorded as absent, neither extracted nor failed."""
