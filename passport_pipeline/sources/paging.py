"""What paged reads share: the :class:`Pull` a client returns, its stats, and page helpers.

A pull is read once, page by page, so memory is bounded by the page size. Its stats tell
the caller (extraction, Test Connection) how the read went: pages, rows, duplicates dropped,
a page-size clamp the server applied silently, changes of the server's total mid-pull, the
server's clock when it started (a delta watermark) and warnings worth a person's attention.
``complete`` is true only when the pull reached the end without an error — partial rows are
never to be taken for a whole collection.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from requests.utils import parse_header_links

from passport_pipeline.sources.errors import BadResponse

Page = list
"""Records of one page, as the server sent them (normally dicts)."""


class SentPage(list):
    """A page holding every record of one response, with the response's JSON text.

    A consumer that wants the page as JSON (extraction lands pages in DuckDB) reads ``content``
    instead of encoding the records again; ``wrapped`` says the records are the body's one
    list-valued key rather than the body itself. Its records are never to be changed: a
    producer that changes them yields a plain list.
    """

    def __init__(self, records: list, content: bytes, wrapped: bool) -> None:
        super().__init__(records)
        self.content, self.wrapped = content, wrapped


def sent_page(kept: list, received: list, response) -> Page:
    """``kept`` as a :class:`SentPage` when it is all ``response`` sent (nothing dropped), else as is."""
    if len(kept) != len(received) or not response.content:
        return kept
    return SentPage(kept, response.content, isinstance(response.body, dict))


@dataclass
class PullStats:
    """How one collection read went."""

    endpoint: str
    pages: int = 0
    rows: int = 0
    """Rows received, duplicates included."""
    kept: int = 0
    """Rows handed to the caller (after de-duplication and any local filter)."""
    duplicates: int = 0
    requested_limit: int | None = None
    clamped_limit: int | None = None
    """The page size the server applied instead of the requested one, if it clamped."""
    total: int | None = None
    """The server's last ``X-Total-Count`` (or ``X-Count``)."""
    total_changes: list[tuple[int, int]] = field(default_factory=list)
    """``(before, after)`` each time the total changed mid-pull: the data moved while paging."""
    sort_dropped: bool = False
    """The server refused ``sort=sourcedId`` and the pull went on unsorted."""
    complete: bool = False
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    server_time: datetime | None = None
    """The server's clock (its ``Date`` header, UTC) at the pull's first response: a delta
    watermark that does not depend on this machine's clock. None when the server sent none."""

    @property
    def unique_rows(self) -> int:
        return self.rows - self.duplicates

    def warn(self, message: str) -> None:
        self.warnings.append(message)


class Pull:
    """One paged read: iterate it (once) for pages of records; ``stats`` says how it went."""

    def __init__(self, endpoint: str, pages: Callable[[PullStats], Iterator[Page]]) -> None:
        self.stats = PullStats(endpoint)
        self._pages = pages
        self._started = False

    def __iter__(self) -> Iterator[Page]:
        if self._started:
            raise RuntimeError(f"the pull of {self.stats.endpoint} was already read; start a new one")
        self._started = True
        return self._run()

    def first_page(self) -> PullStats:
        """Read only the first page (latency, clamp, total: what Test Connection wants); its stats."""
        pages = iter(self)
        try:
            next(pages, None)
        finally:
            pages.close()
        return self.stats

    def records(self) -> Iterator[object]:
        """The records one by one, across pages."""
        for page in self:
            yield from page

    def _run(self) -> Iterator[Page]:
        started = time.perf_counter()
        try:
            for page in self._pages(self.stats):
                yield page
            self.stats.complete = True
        finally:
            self.stats.seconds = time.perf_counter() - started


class RecentKeys:
    """Keys of the last few pages, to drop the rows paging repeats at page seams.

    Offset paging while data changes repeats rows near page boundaries, so a short window is
    enough and keeps memory bounded by the page size; a repeat farther apart is left to the
    warehouse, which keeps one row per id.
    """

    def __init__(self, pages: int = 3) -> None:
        self._pages: deque[set] = deque(maxlen=pages)

    def fresh(self, records: Iterable[object], key: Callable[[object], object]) -> tuple[list, int]:
        """``(records not seen recently, how many were dropped)``; keyless records always pass."""
        records = list(records)
        keys = [key(record) for record in records]
        try:
            unique = set(keys)
        except TypeError:  # a key sent as a JSON list or object: that record passes as keyless
            keys = [k if _hashable(k) else None for k in keys]
            unique = set(keys)
        if len(unique) == len(keys) and None not in unique and all(unique.isdisjoint(page) for page in self._pages):
            self._pages.append(unique)
            return records, 0  # the usual page: every key new, checked set by set
        current: set = set()
        kept: list = []
        dropped = 0
        for record, k in zip(records, keys):
            if k is not None:
                if k in current or any(k in page for page in self._pages):
                    dropped += 1
                    continue
                current.add(k)
            kept.append(record)
        self._pages.append(current)
        return kept, dropped


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def links(headers: Mapping[str, str]) -> dict[str, str] | None:
    """RFC 5988 ``Link`` header as ``rel -> url``; None when the response has no Link header."""
    value = headers.get("Link")
    if value is None:
        return None
    found: dict[str, str] = {}
    for link in parse_header_links(value):
        for rel in link.get("rel", "").split():
            found.setdefault(rel.lower(), link.get("url", ""))
    return found


def server_time(headers: Mapping[str, str]) -> datetime | None:
    """The ``Date`` header (an HTTP date) as an aware UTC datetime; None when absent or unreadable."""
    value = headers.get("Date")
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def total_count(headers: Mapping[str, str]) -> int | None:
    """``X-Total-Count`` (or ``X-Count``) as an int; None when absent or not a number."""
    for name in ("X-Total-Count", "X-Count"):
        value = headers.get(name)
        if value is not None:
            try:
                return int(value.strip())
            except ValueError:
                return None
    return None


def unwrap_list(body: object, endpoint: str) -> list:
    """The records of a collection body: its one list-valued key, whatever its name, or a bare list."""
    if isinstance(body, list):
        return body
    if not isinstance(body, dict):
        raise BadResponse(f"{endpoint} answered {type(body).__name__} JSON where a collection was expected.",
                          endpoint=endpoint)
    keys = [key for key, value in body.items() if isinstance(value, list)]
    if len(keys) == 1:
        return body[keys[0]]
    if not keys:
        raise BadResponse(f"{endpoint} answered without a list of records (keys: {', '.join(body) or 'none'}): "
                          "check the base path and endpoint settings.", endpoint=endpoint)
    raise BadResponse(f"{endpoint} answered several lists ({', '.join(keys)}) where one collection was "
                      "expected; this server's response shape is not supported.", endpoint=endpoint)


def unwrap_single(body: object, endpoint: str) -> dict:
    """The object of a single-object body: under its one key (``user``, ``org``...), or bare."""
    if isinstance(body, dict):
        if len(body) == 1:
            (value,) = body.values()
            if isinstance(value, dict):
                return value
        return body
    raise BadResponse(f"{endpoint} answered a body that is not one object.", endpoint=endpoint)
