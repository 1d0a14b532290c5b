"""OneRoster 1.1 / 1.2 REST client: paged collections that survive real servers' quirks.

Paging asks ``limit``/``offset`` with ``sort=sourcedId`` (dropped if the server answers 400
to it) and computes each next offset from the rows actually received. A pull stops on an
empty page, when it holds as many distinct rows as the server's ``X-Total-Count``
(``X-Count``), or when the server says there is no more (a ``Link`` header without ``next``,
or the offset reaching the total) — never because a page was shorter than asked: servers clamp
``limit`` silently, and the clamp is detected and reported. Rows repeated at page seams are
dropped; when rows shifted while paging (repeats seen, fewer distinct rows than the total),
the pull reads on past the server's end to pick up the tail. A failed page is retried by the
HTTP policy; a collection is never restarted from page one.

Reads are verified, because a complete read is what later stages delete on: every page must be
of the kind asked for (:mod:`~passport_pipeline.sources.oneroster_kinds`, else
:class:`WrongKind`), and a pull that ends with fewer distinct rows than the server's own count
raises :class:`ShortRead` — an empty page at offset 10 of 502 is not the end of the students.

Entity reads (:meth:`OneRosterClient.pull`): students from ``/students``; staff and contacts
from ``/users`` filtered locally by role (filtering users by role is unreliable on 1.2
servers, and ``/teachers`` leaves out administrators and aides). Per-school reads
(:meth:`OneRosterClient.by_school`) use the nested ``schools/{id}/...`` endpoints when the
token's scope has ``roster.readonly``, otherwise one collection read split by school locally.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from urllib.parse import quote

from passport_pipeline.sources.errors import RequestRejected, ShortRead, SourceError
from passport_pipeline.sources.http import HttpClient, JsonResponse
from passport_pipeline.sources.oneroster_records import KINDS, oneroster_kind, ref, user_entity, user_roles
from passport_pipeline.sources.oneroster_kinds import page_records
from passport_pipeline.sources.paging import (
    Page,
    Pull,
    PullStats,
    RecentKeys,
    links,
    sent_page,
    server_time,
    total_count,
    unwrap_single,
)
from passport_pipeline.sources.parallel import PullEvent, run_pulls
from passport_pipeline.sources.reads import PROBE_ROWS, Access, Probe, Read, Sample, sample_pull
from passport_pipeline.sources.settings import oneroster_scopes
from passport_pipeline.warehouse.normalize_sql import SqlMapping
from passport_pipeline.warehouse.normalize_sql_oneroster import ONEROSTER_SQL

SCHOOL_COLLECTIONS = ("students", "teachers", "classes", "courses", "enrollments", "terms")
"""Collections readable per school (``schools/{id}/<collection>``)."""

Keep = Callable[[dict], bool]
_UNREADABLE = (TypeError, AttributeError, ValueError)


def _users_of(entity: str) -> Keep:
    def keep(record: object) -> bool:
        if not isinstance(record, dict):
            return True  # let normalization quarantine it
        try:
            found = user_entity(user_roles(record)[0])
        except _UNREADABLE:
            return True  # let normalization quarantine it
        return found is None or found == entity
    return keep


ENTITY_READS: dict[str, tuple[str, Keep | None]] = {
    "schools": ("orgs", None),
    "terms": ("academicSessions", None),
    "courses": ("courses", None),
    "classes": ("classes", None),
    "students": ("students", None),
    "staff": ("users", _users_of("staff")),
    "contacts": ("users", _users_of("contacts")),
    "enrollments": ("enrollments", None),
    "demographics": ("demographics", None),
}
"""Canonical entity -> (collection, local filter). Contacts bring their student_contacts."""

READS = (
    Read("schools", ("schools",)),
    Read("terms", ("terms",)),
    Read("courses", ("courses",), per_school=True),
    Read("classes", ("classes",), per_school=True),
    Read("students", ("students",), per_school=True),
    Read("users", ("staff", "contacts", "student_contacts")),
    Read("enrollments", ("enrollments",), per_school=True),
    Read("demographics", ("demographics",)),
)
"""What extraction reads, in dependency order: an entity's collection (:data:`ENTITY_READS`), and
``/users`` once for staff and contacts (split by role as they land), which bring contact links."""

PROBED = ("orgs", "schools", "academicSessions", "courses", "classes", "students", "teachers", "users",
          "enrollments", "demographics")
"""The collections Test Connection reads, in its report's order: every one :data:`READS` use, and
``schools`` (read whole: the schools a credential sees) and ``teachers``."""


class OneRosterClient:
    """One OneRoster source. Thread-safe: pulls may run side by side (see :meth:`by_school`)."""

    credential = "Integration Access record"
    """What Skyward calls the record behind a OneRoster credential, named when a token is refused."""

    def __init__(self, settings, *, http: HttpClient | None = None,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.http = http or HttpClient(settings, grant="client_credentials", sleep=sleep, rng=rng)
        self.root = settings.oneroster_root

    def __enter__(self) -> OneRosterClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def granted_scopes(self) -> frozenset[str]:
        """The scopes of the token (as the token response says, else as configured)."""
        granted = self.http.tokens.granted_scopes() if self.http.tokens else None
        return granted if granted is not None else frozenset(self.settings.scopes)

    def can_read_nested(self) -> bool:
        """Whether ``roster.readonly`` is granted, which nested ``schools/{id}/...`` reads need."""
        return any(scope.rstrip("/").endswith("/roster.readonly") for scope in self.granted_scopes())

    def collection(self, path: str, *, params: Mapping[str, object] | None = None,
                   since: str | dt.datetime | None = None, keep: Keep | None = None,
                   page_size: int | None = None) -> Pull:
        """A paged read of ``path`` (``users``, ``schools/{id}/classes``...); records as sent.

        The collection at the head of ``path`` is replaced by its configured path override.

        ``since`` adds the delta filter ``dateLastModified>'<since>'``; ``keep`` filters
        records locally (after de-duplication; the server's count is of the rows before it).
        """
        endpoint = self._endpoint(path)
        query = dict(params or {})
        if since is not None:
            delta = f"dateLastModified>'{_iso(since)}'"
            query["filter"] = f"{query['filter']} AND {delta}" if query.get("filter") else delta
        query.setdefault("sort", "sourcedId")
        limit = page_size or self.settings.page_size
        return Pull(endpoint.path, partial(self._pages, endpoint, query, limit, keep))

    def total(self, path: str) -> int | None:
        """The collection's own count (``X-Total-Count`` / ``X-Count``), None when the server gives
        none: one ``limit=1`` request, whose page is verified like any other (:class:`WrongKind`)."""
        endpoint = self._endpoint(path)
        stats = PullStats(endpoint.path)
        self._page(endpoint, {"sort": "sourcedId"}, 1, 0, stats)
        return stats.total

    def pull(self, entity: str, *, since: str | dt.datetime | None = None) -> Pull:
        """A district-wide read of a canonical entity (``students``, ``staff``, ``contacts``...)."""
        try:
            path, keep = ENTITY_READS[entity]
        except KeyError:
            raise ValueError(f"no OneRoster read for entity {entity!r}; known: {', '.join(ENTITY_READS)}") from None
        return self.collection(path, since=since, keep=keep)

    def reads(self) -> tuple[Read, ...]:
        """The reads of an extraction (:data:`READS`)."""
        return READS

    def read(self, name: str, *, since: str | dt.datetime | None = None) -> Pull:
        """One read of :data:`READS`, district-wide: its records as sent (``since``: what changed)."""
        return self.collection("users", since=since) if name == "users" else self.pull(name, since=since)

    def mapping(self, name: str) -> SqlMapping:
        """How the records of read ``name`` become canonical rows."""
        return ONEROSTER_SQL[oneroster_kind(self._path(name))]

    @staticmethod
    def _path(name: str) -> str:
        return name if name == "users" else ENTITY_READS[name][0]

    @property
    def max_concurrency(self) -> int:
        return self.settings.max_concurrency

    def school_ids(self) -> list[str]:
        """The ids of the source's schools (orgs of type school), read from the server."""
        return [_text(record.get("sourcedId")) for record in self.collection("schools").records()
                if isinstance(record, dict) and record.get("sourcedId") is not None
                and record.get("type", "school") == "school"]

    def single(self, collection: str, sourced_id: str) -> dict:
        """One object: ``single("users", id)``."""
        path = f"{collection.strip('/')}/{quote(sourced_id, safe='')}"
        return unwrap_single(self.http.get_json(f"{self.root}/{path}").body, path)

    def probe(self, path: str, page_size: int | None = None) -> PullStats:
        """Read just the first page of ``path``: latency, clamp and total, for Test Connection.

        Verified like any page (:class:`WrongKind`); an empty first page short of the server's
        count raises :class:`ShortRead`."""
        return self.collection(path, page_size=page_size).first_page()

    def authenticate(self) -> Access:
        """A token, and the scopes it grants (:class:`AuthenticationError` when it is refused)."""
        self.http.tokens.token()
        return Access("token obtained", requested=self.settings.scopes, granted=self.granted_scopes())

    def probes(self) -> tuple[Probe, ...]:
        """The collections of :data:`PROBED`, each feeding what :data:`READS` take from it, then one
        school's students through the nested endpoint per-school reads use (``roster.readonly``)."""
        core, roster, demographics = oneroster_scopes(self.settings.version)
        feeds: dict[str, tuple[str, ...]] = {}
        for read in READS:
            feeds[self._path(read.name)] = feeds.get(self._path(read.name), ()) + read.lands

        def collection(name: str) -> Probe:
            scope = demographics if name == "demographics" else core
            if name == "schools":
                return Probe(name, feeds.get(name, ()), scope, whole=True, page_size=None, setting="endpoints.schools",
                             schools=("sourcedId", "identifier"), keeps=(("school", "sourcedId"),))
            return Probe(name, feeds.get(name, ()), scope, page_size=None if name == "students" else PROBE_ROWS,
                         setting=f"endpoints.{name}")

        split = [entity for read in READS if read.per_school for entity in read.lands]
        instead = (f"The sync reads {', '.join(split[:-1])} and {split[-1]} whole and splits them by school instead: "
                   "nothing to fix, but each such read then fails or succeeds for every school at once.")
        return (*map(collection, PROBED), Probe("schools/{id}/students", scope=roster, needs=("school",),
                                                shown="schools/{school}/students", instead=instead))

    def sample(self, probe: Probe, ids: Mapping[str, str]) -> Sample:
        """The first page of a probe's collection (every page when ``whole``), verified like any page:
        the collection its name says, or the path its ``shown`` form gives once its ids are filled in."""
        quoted = {key: quote(value, safe="") for key, value in ids.items()}
        path = probe.shown.format_map(quoted) if probe.needs else probe.name
        return sample_pull(self.collection(path, page_size=probe.page_size), whole=probe.whole)

    def by_school(self, collection: str, school_ids: Iterable[str], *,
                  since: str | dt.datetime | None = None) -> Iterator[PullEvent]:
        """Pages of ``collection`` per school, each school ending with one final event.

        Keys are the school ids; records that belong to no requested school's scope but to no
        school at all (district-wide terms, a record without a school reference) come under
        key None. With nested scope, up to ``max_concurrency`` schools are read at once.
        """
        if collection not in SCHOOL_COLLECTIONS:
            raise ValueError(f"{collection!r} cannot be read per school; use one of {SCHOOL_COLLECTIONS}")
        school_ids = list(dict.fromkeys(school_ids))
        if self.can_read_nested():
            pulls = {school: partial(self.collection, f"schools/{quote(school, safe='')}/{collection}", since=since)
                     for school in school_ids}
            yield from run_pulls(pulls, self.settings.max_concurrency)
        else:
            yield from self.split_by_school(collection, school_ids, since=since)

    def split_by_school(self, collection: str, school_ids: Iterable[str], *,
                        since: str | dt.datetime | None = None) -> Iterator[PullEvent]:
        """One read of ``collection`` split by school locally: events keyed by school, and by None
        for records that name no school at all; every key (None too) ends with one final event."""
        school_ids = list(dict.fromkeys(school_ids))
        wanted = set(school_ids)
        kind = oneroster_kind(collection)
        pull = self.collection(collection, since=since)
        keys: list[str | None] = [*school_ids, None]
        try:
            for page in pull:
                groups: dict[str | None, list] = {}
                for record in page:
                    schools = None if collection == "terms" else _schools_of(kind, record)
                    if not schools:
                        groups.setdefault(None, []).append(record)
                        continue
                    for school in schools:
                        if school in wanted:
                            groups.setdefault(school, []).append(record)
                for key, records in groups.items():
                    yield PullEvent(key, records=records)
        except SourceError as exc:
            for key in keys:
                yield PullEvent(key, stats=pull.stats, error=exc)
            return
        for key in keys:
            yield PullEvent(key, stats=pull.stats)

    def _endpoint(self, path: str) -> _Endpoint:
        """``path`` as requested (its head's override applied), with the type it must serve.

        A path may come with its override already applied (Test Connection asks for what the
        configuration says): its type is then the overridden endpoint's."""
        head, slash, rest = path.partition("/")
        served = self.settings.endpoint_paths.get(head, head) + slash + rest
        name = path.strip("/").rsplit("/", 1)[-1]
        if name not in KINDS:
            name = next((n for n, p in self.settings.endpoint_paths.items() if p.strip("/") == path.strip("/")), name)
        return _Endpoint(served, oneroster_kind(name), frozenset({name, served.strip("/").rsplit("/", 1)[-1]}))

    def _page(self, endpoint: _Endpoint, query: dict, limit: int, offset: int,
              stats: PullStats) -> tuple[list, JsonResponse, int | None]:
        """One verified page at ``offset``, counted in ``stats``: ``(records, response, its total)``."""
        url = f"{self.root}/{endpoint.path.strip('/')}"
        while True:
            try:
                response = self.http.get_json(url, {**query, "limit": limit, "offset": offset})
                break
            except RequestRejected as exc:
                if exc.status == 400 and "sort" in query and stats.pages == 0:
                    del query["sort"]
                    stats.sort_dropped = True
                    stats.warn(f"{endpoint.path}: the server refused sort=sourcedId; paging unsorted, so rows "
                               "that change while paging may be missed until the next full sync.")
                    continue
                raise
        records = page_records(response.body, endpoint.path, endpoint.kind, endpoint.names)
        total = total_count(response.headers)
        if stats.pages == 0:
            stats.server_time = server_time(response.headers)
        stats.pages += 1
        stats.rows += len(records)
        if total is not None:
            if stats.total is not None and total != stats.total:
                stats.total_changes.append((stats.total, total))
                stats.warn(f"{endpoint.path}: the server's total changed from {stats.total} to {total} while "
                           "paging; the data changed during the read.")
            stats.total = total
        return records, response, total

    def _pages(self, endpoint: _Endpoint, query: dict, limit: int, keep: Keep | None,
               stats: PullStats) -> Iterator[Page]:
        path = endpoint.path
        stats.requested_limit = limit
        recent = RecentKeys()
        offset = 0
        while True:
            records, response, total = self._page(endpoint, query, limit, offset, stats)
            link = links(response.headers)
            if stats.pages == 1 and 0 < len(records) < limit and (
                    (total is not None and total > len(records)) or (link is not None and "next" in link)):
                stats.clamped_limit = len(records)
                stats.warn(f"{path}: asked for {limit} rows per page, the server sent {len(records)}; "
                           "it caps the page size silently, so paging goes by rows received.")
            fresh, dropped = recent.fresh(records, _sourced_id)
            stats.duplicates += dropped
            kept = [r for r in fresh if keep(r)] if keep else fresh
            stats.kept += len(kept)
            if kept:
                yield sent_page(kept, records, response)
            offset += min(len(records), limit)
            if _finished(stats, path, len(records), len(fresh), offset, total, link):
                return


@dataclass(frozen=True)
class _Endpoint:
    """A collection as requested: its path, the OneRoster type it serves, the wrapper names it may use."""

    path: str
    kind: str
    names: frozenset[str]


def _finished(stats: PullStats, path: str, received: int, fresh: int, offset: int,
              total: int | None, link: dict[str, str] | None) -> bool:
    """Whether a pull is at its end, after a page of ``received`` rows (``fresh`` of them new).

    Raises :class:`ShortRead` when it ends holding fewer distinct rows than the server counts."""
    if received == 0:
        return _ended(stats, path, f"an empty page at offset {offset}")
    if total is not None and stats.unique_rows >= total:
        return True
    if fresh == 0:
        _ended(stats, path, f"a page at offset {offset - received} that only repeated rows already received")
        stats.warn(f"{path}: the page at offset {offset - received} only repeated rows already received; "
                   "stopping there.")
        return True
    no_next = link is not None and "next" not in link
    if not no_next and not (total is not None and offset >= total):
        return False
    if total is not None and stats.duplicates:
        return False  # rows shifted while paging: read past the end for the rows pushed out of it
    return _ended(stats, path, "a Link header without next" if no_next else f"offset {offset}, the server's total")


def _ended(stats: PullStats, path: str, how: str) -> bool:
    """A pull's end (True), unless it holds fewer distinct rows than the server's latest count."""
    if stats.total is not None and stats.unique_rows < stats.total:
        raise ShortRead(f"{path}: the read ended at {how} with {stats.unique_rows} distinct rows, but the server "
                        f"counts {stats.total}. The read is incomplete, so this scope keeps its previous data; "
                        "if this repeats, the server does not serve every row it counts.",
                        endpoint=path, rows=stats.unique_rows, total=stats.total)
    return True


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _sourced_id(record: object) -> object:
    return record.get("sourcedId") if isinstance(record, dict) else None


def _schools_of(kind: str, record: object) -> list[str]:
    """The schools a record belongs to, for splitting a collection by school locally."""
    if not isinstance(record, dict):
        return []
    if kind == "users":
        try:
            return user_roles(record)[1]
        except _UNREADABLE:
            return []
    found = ref(record.get("org" if kind == "courses" else "school"))
    return [found] if found else []


def _iso(since: str | dt.datetime) -> str:
    """A delta watermark as OneRoster filter text (UTC, ``Z``)."""
    if isinstance(since, str):
        return since
    moment = since.astimezone(dt.UTC) if since.tzinfo else since
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
