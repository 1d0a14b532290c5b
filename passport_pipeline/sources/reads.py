"""What a source can read, and what every source client offers extraction.

A client declares its reads — named, paged reads (an API endpoint, a bundle file), each landing
one or more canonical entities — and extraction runs them the same way whatever the client is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from passport_pipeline.sources.paging import Pull
from passport_pipeline.sources.parallel import PullEvent


@dataclass(frozen=True)
class Read:
    """One paged read of a source, the entities it lands, and whether it runs per school."""

    name: str
    lands: tuple[str, ...]
    per_school: bool = False
    absent: bool = False
    """The source does not provide it this time (a bundle's file marked absent): not read, not failed."""
    delta: bool = False
    """It holds only what changed (a bundle's file marked delta): its rows are upserts, never a snapshot."""
    whole_file: bool = False
    """Landed by the client whole, from a file (:meth:`SourceClient.land`), rather than page by page."""


class SourceClient(Protocol):
    """What extraction asks of a source client (OneRoster, SMS native, CSV bundle): its reads, and
    for each either its pages (``read`` and ``mapping``) or, for a ``whole_file`` read, ``land``."""

    max_concurrency: int
    """Reads that may run side by side."""

    def reads(self) -> tuple[Read, ...]:
        """Every read this source offers, in dependency order (referenced entities first)."""

    def read(self, name: str, *, since: str | dt.datetime | None = None) -> Pull:
        """A whole-source read; ``since``: only what changed after that time (delta sources only)."""

    def mapping(self, name: str):
        """How the pages of read ``name`` land as canonical rows (:mod:`passport_pipeline.warehouse.landing`)."""

    def land(self, name: str, con, extractions) -> object:
        """Land a ``whole_file`` read on the writing cursor ``con`` into ``extractions`` (entity -> its
        pull of scope ``*``); raise :class:`~.errors.SourceError` when its file cannot be read."""

    def close(self) -> None:
        """Let go of connections and files."""


class SchoolReader(SourceClient, Protocol):
    """A client whose ``per_school`` reads can be read school by school (OneRoster)."""

    def school_ids(self) -> list[str]:
        """The ids of the source's schools, asked of the source."""

    def can_read_nested(self) -> bool:
        """Whether each school's records can be asked for on their own."""

    def total(self, name: str) -> int | None:
        """The collection's own count of records (None when the server gives none)."""

    def by_school(self, name: str, schools: Iterable[str]) -> Iterator[PullEvent]:
        """Each school's records read on their own: events keyed by school, each ending once."""

    def split_by_school(self, name: str, schools: Iterable[str], *,
                        since: str | dt.datetime | None = None) -> Iterator[PullEvent]:
        """The collection read once and split by school: events keyed by school, and by None for
        records naming no school; every key ends once."""
