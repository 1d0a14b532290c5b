"""What a source can read, and what every source client offers extraction and Test Connection.

A client declares its reads — named, paged reads (an API endpoint, a bundle file), each landing
one or more canonical entities — and extraction runs them the same way whatever the client is.
It declares its probes too — the reads Test Connection takes to see whether a sync can run
(:class:`Probe`) — and says how it gets in (:meth:`SourceClient.authenticate`), so Test
Connection checks every source the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
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


PROBE_ROWS = 10
"""Rows a probe asks of its first page: enough to see data, few enough to stay quick."""


@dataclass(frozen=True)
class Probe:
    """One read Test Connection takes of a source, and what it means for a sync.

    A client gives its probes in the order the report shows them; those that keep ids are taken
    first, one after another, then the rest side by side.
    """

    name: str
    """The endpoint or file, as the report names it (``students``, ``users.csv``, ``schools/{id}/students``)."""
    feeds: tuple[str, ...] = ()
    """The canonical entities the sync takes from it: what the client's reads of it land."""
    scope: str | None = None
    """The OAuth scope it needs, named when a 403 does not say which is missing."""
    whole: bool = False
    """Read to its end, not just its first page (the schools, to compare with the schools mapping)."""
    page_size: int | None = PROBE_ROWS
    """Rows asked per page; None: the sync's own page size, so that a server's silent clamp shows."""
    schools: tuple[str, str] | None = None
    """Its records are the source's schools: the fields of a school's id and of its code."""
    keeps: tuple[tuple[str, str], ...] = ()
    """Ids later probes are asked with: ``(id, field)``, the field of its first record that has one."""
    needs: tuple[str, ...] = ()
    """Ids it is asked with (``school``, ``student``), kept by earlier probes; skipped when one is missing."""
    shown: str = ""
    """Its name once asked: ``name`` with its ids filled in (``str.format`` fields named by ``needs``)."""
    setting: str | None = None
    """The setting that says where it is read (``endpoints.students``), to check when it is not found."""
    note: str = ""
    """What the sync does with it, added to its line (``read with users.csv``)."""
    instead: str = ""
    """What the sync does instead when it cannot be read, added to a failure's words."""
    absent: bool = False
    """The source does not provide it this time (as :attr:`Read.absent`): not read."""
    skip: str | None = None
    """Why it is not read at all (a file the sync has no use for): its line in the report."""


@dataclass(frozen=True)
class Sample:
    """What one probe read."""

    rows: int
    """Rows read: on the first page, or in all for a ``whole`` probe."""
    total: int | None = None
    """The source's own count of rows (a server's ``X-Total-Count``, a file's records), if it gives one."""
    clamp: int | None = None
    """Rows per page the server sent instead of the page size asked."""
    sort_refused: bool = False
    """The server refused ``sort=sourcedId``, so paging runs unsorted."""
    records: list = field(default_factory=list)
    """The records read (for the ids later probes need, and the schools)."""
    unreadable: tuple[object, ...] = ()
    """Rows it holds that cannot be read, each worded by ``str()`` (a file's, by line)."""


@dataclass(frozen=True)
class Access:
    """How a client got in to its source (:meth:`SourceClient.authenticate`)."""

    done: str
    """What it did: ``token obtained``, ``opened a OneRoster 1.2 bundle``."""
    facts: tuple[str, ...] = ()
    """What else it found on the way (``its manifest lists 9 files``)."""
    requested: tuple[str, ...] = ()
    """The OAuth scopes asked for."""
    granted: frozenset[str] = frozenset()
    """The scopes the token grants (empty when the source has none, or names none)."""
    sees: str = "this credential sees"
    """How the report says what the source shows of the district (``the bundle holds``)."""


def sample_pull(pull: Pull, *, whole: bool = False) -> Sample:
    """The first page of ``pull`` (every page when ``whole``) as a probe's sample."""
    records: list = []
    pages = iter(pull)
    try:
        for page in pages:
            records.extend(page)
            if not whole:
                break
    finally:
        pages.close()
    stats = pull.stats
    return Sample(stats.rows, stats.total, stats.clamped_limit, stats.sort_dropped, records)


class SourceClient(Protocol):
    """What extraction and Test Connection ask of a source client (OneRoster, SMS native, CSV bundle).

    Extraction: its reads, and for each either its pages (``read`` and ``mapping``) or, for a
    ``whole_file`` read, ``land``. Test Connection: ``authenticate``, then ``sample`` each of its
    ``probes``."""

    max_concurrency: int
    """Reads that may run side by side."""
    credential: str
    """What the source's administrators call the record behind a credential (``Integration Access
    record``, ``API key``), named when a token is refused; empty for a source without one."""

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

    def authenticate(self) -> Access:
        """Get in before any probe: a token (raising :class:`~.errors.AuthenticationError` when it is
        refused, :class:`~.errors.ConnectionFailed` when the token URL cannot be reached), or a source
        opened (a bundle, which opening the client already did)."""

    def probes(self) -> tuple[Probe, ...]:
        """What Test Connection reads, in the order it reports them."""

    def sample(self, probe: Probe, ids: Mapping[str, str]) -> Sample:
        """Take one probe, asked with ``ids`` (those it ``needs``); raise :class:`~.errors.SourceError`
        saying why it cannot be read."""


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
