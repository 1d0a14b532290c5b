"""Skyward SMS 2.0 native API client ("Read-Only API"): password-grant token, cursor paging.

Requests ask ``paging.limit``; the next page is the ``Link: <...>; rel="next"`` URL, whose
query names the cursor ``cursor=`` although the API reads ``paging.cursor`` — the client
renames it, as every working client of the real API does. Bodies are bare JSON arrays with no
total, so a pull ends when there is no ``next`` link or a page is empty.

Endpoint paths are published only in each district's Swagger, so every one can be overridden
by name (``ClientSettings.endpoint_paths``); the defaults are the simulator's (:data:`PATHS`).
Staff come one row per assignment: :meth:`SmsClient.pull` merges the rows of one ``NameId``
into one record with ``Assignments``. Per-student calls (school enrollments, for grades) run
under the client's bounded concurrency. The native API has no delta filter: reads are full.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from urllib.parse import parse_qsl, quote, urljoin, urlsplit, urlunsplit

from passport_pipeline.sources.errors import NotFoundError
from passport_pipeline.sources.http import HttpClient
from passport_pipeline.sources.paging import (
    Page, Pull, PullStats, RecentKeys, links, sent_page, server_time, unwrap_list, unwrap_single,
)
from passport_pipeline.sources.reads import Access, Probe, Read, Sample, sample_pull
from passport_pipeline.sources.settings import ClientSettings
from passport_pipeline.warehouse.normalize_sql import SqlMapping
from passport_pipeline.warehouse.normalize_sql_sms import SMS_SQL

PATHS = {
    "schools": "v1/schools",
    "students": "v1/students",
    "student_enrollments": "v1/students/{NameId}/enrollments",
    "guardians": "v1/guardians",
    "staff": "v1/staff",
    "courses": "v1/courses",
    "sections": "v1/sections",
    "terms": "v1/terms",
    "student_schedules": "v1/studentschedules",
    "names": "v1/names/{NameId}",
}
"""Endpoint name -> default path under the API base (``{NameId}``: a student's or person's native id)."""

_PLACEHOLDER = re.compile(r"\{[A-Za-z]+\}")
ASKED_WITH = {"NameId": "student", "SchoolId": "school"}
"""Path placeholders, by the id Test Connection fills them with (the first student's, the first school's)."""

ROW_KEYS = {
    "schools": ("SchoolId",),
    "students": ("NameId",),
    "guardians": ("GuardianNameId",),
    "staff": ("NameId", "SchoolId"),
    "courses": ("CourseId",),
    "sections": ("SectionId",),
    "terms": ("TermId",),
    "student_schedules": ("StudentNameId", "SectionId", "SchoolId", "EntryDate"),
}
"""What identifies a row of each listing, to drop rows repeated across pages."""

READS = (
    Read("schools", ("schools",)),
    Read("terms", ("terms",)),
    Read("courses", ("courses",)),
    Read("sections", ("classes", "enrollments")),
    Read("students", ("students", "demographics")),
    Read("staff", ("staff",)),
    Read("guardians", ("contacts", "student_contacts")),
    Read("student_schedules", ("enrollments",)),
)
"""The listings extraction reads, in dependency order, and what each lands: sections bring their
teachers' enrollments, students their demographics, guardians their links to students."""


class SmsClient:
    """One SMS 2.0 native API source; thread-safe."""

    credential = "API key"
    """What SMS calls the record behind a native API credential, named when a token is refused."""

    def __init__(self, settings: ClientSettings, *, http: HttpClient | None = None,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None) -> None:
        unknown = sorted(set(settings.endpoint_paths) - set(PATHS))
        if unknown:
            raise ValueError(f"unknown SMS endpoint name(s) in endpoint_paths: {', '.join(unknown)}; "
                             f"known: {', '.join(PATHS)}")
        self.settings = settings
        self.http = http or HttpClient(settings, grant="password", sleep=sleep, rng=rng)
        self.base = settings.base_url.rstrip("/")
        self.paths = {**PATHS, **settings.endpoint_paths}

    def __enter__(self) -> SmsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def url(self, endpoint: str, native_id: object | None = None) -> str:
        """The URL of an endpoint; ``native_id`` fills its placeholder (``{NameId}``,
        ``{SchoolId}``) or is appended as ``/{id}``."""
        path = self.paths[endpoint].strip("/")
        if native_id is not None:
            shown = quote(str(native_id), safe="")
            path = _PLACEHOLDER.sub(shown, path) if _PLACEHOLDER.search(path) else f"{path}/{shown}"
        return f"{self.base}/{path}"

    def listing(self, endpoint: str, *, params: Mapping[str, object] | None = None,
                page_size: int | None = None) -> Pull:
        """A paged read of a listing endpoint (``students``, ``staff``...); rows as sent."""
        limit = page_size or self.settings.page_size
        return Pull(endpoint, partial(self._pages, endpoint, dict(params or {}), limit))

    def pull(self, endpoint: str, *, with_enrollments: bool = False) -> Pull:
        """A full read of a listing as extraction wants it: staff merged per person, and
        students with their school ``Enrollments`` attached when ``with_enrollments``."""
        limit = self.settings.page_size
        if endpoint == "staff":
            return Pull(endpoint, lambda stats: _merge_staff(self._pages(endpoint, {}, limit, stats), stats))
        if endpoint == "students" and with_enrollments:
            return Pull(endpoint, lambda stats: self._with_enrollments(
                self._pages(endpoint, {}, limit, stats), stats))
        return self.listing(endpoint)

    def reads(self) -> tuple[Read, ...]:
        """The reads of an extraction (:data:`READS`); the native API has no delta, so all are full."""
        return READS

    def read(self, name: str, *, since: object = None) -> Pull:
        """One read of :data:`READS`: the whole listing (the API cannot ask what changed)."""
        if since is not None:
            raise ValueError("the SMS native API has no delta filter: read it in full")
        return self.pull(name)

    def mapping(self, name: str) -> SqlMapping:
        """How the rows of read ``name`` become canonical rows."""
        return SMS_SQL[name]

    @property
    def max_concurrency(self) -> int:
        return self.settings.max_concurrency

    def single(self, endpoint: str, native_id: object) -> dict:
        """One object: ``single("students", 1234)``."""
        return unwrap_single(self.http.get_json(self.url(endpoint, native_id)).body, endpoint)

    def student_enrollments(self, name_id: object) -> list[dict]:
        """A student's school enrollments (one call per student; not paged)."""
        return unwrap_list(self.http.get_json(self.url("student_enrollments", name_id)).body,
                           "student_enrollments")

    def probe(self, endpoint: str, page_size: int | None = None) -> PullStats:
        """Read just the first page of a listing, for Test Connection."""
        return self.listing(endpoint, page_size=page_size).first_page()

    def authenticate(self) -> Access:
        """A token (:class:`AuthenticationError` when it is refused); the native API has no scopes."""
        self.http.tokens.token()
        return Access("token obtained", requested=self.settings.scopes)

    def probes(self) -> tuple[Probe, ...]:
        """Every endpoint, in :data:`PATHS` order, feeding what :data:`READS` take from it: the schools
        read whole, the students at the sync's page size (their first ``NameId`` asks the per-student
        endpoints), others one short page, and one call of each endpoint whose path names an id."""
        feeds = {read.name: read.lands for read in READS}
        found = []
        for name, path in self.paths.items():
            needs = tuple(asked for placeholder, asked in ASKED_WITH.items() if f"{{{placeholder}}}" in path)
            probe = Probe(name, feeds.get(name, ()), setting=f"endpoints.{name}")
            if name == "schools":
                probe = replace(probe, whole=True, page_size=None, schools=("SchoolId", "SchoolCode"),
                                keeps=(("school", "SchoolId"),))
            elif name == "students":
                probe = replace(probe, page_size=None, keeps=(("student", "NameId"),))
            elif needs:
                probe = replace(probe, needs=needs, shown=f"{name} ({needs[0]} {{{needs[0]}}})")
            found.append(probe)
        return tuple(found)

    def sample(self, probe: Probe, ids: Mapping[str, str]) -> Sample:
        """A probe's first page (every page when ``whole``), or for a path naming ids one call of it."""
        if not probe.needs:
            return sample_pull(self.listing(probe.name, page_size=probe.page_size), whole=probe.whole)
        path = self.paths[probe.name].strip("/")
        for placeholder, asked in ASKED_WITH.items():
            if asked in ids:
                path = path.replace(f"{{{placeholder}}}", quote(ids[asked], safe=""))
        response = self.http.get_json(f"{self.base}/{path}")
        records = response.body if isinstance(response.body, list) else [response.body]
        return Sample(len(records), records=records)

    def _pages(self, endpoint: str, params: dict, limit: int, stats: PullStats) -> Iterator[Page]:
        url, query = self.url(endpoint), {**params, "paging.limit": limit}
        stats.requested_limit = limit
        fields = ROW_KEYS.get(endpoint)
        recent = RecentKeys()
        while True:
            response = self.http.get_json(url, query)
            records = unwrap_list(response.body, endpoint)
            following = (links(response.headers) or {}).get("next")
            if stats.pages == 0:
                stats.server_time = server_time(response.headers)
            stats.pages += 1
            stats.rows += len(records)
            if stats.pages == 1 and following and 0 < len(records) < limit:
                stats.clamped_limit = len(records)
                stats.warn(f"{endpoint}: asked for {limit} rows per page, the server sent {len(records)}; "
                           "it caps the page size silently.")
            fresh, dropped = recent.fresh(records, partial(_row_key, fields))
            stats.duplicates += dropped
            stats.kept += len(fresh)
            if fresh:
                yield sent_page(fresh, records, response)
            if not records or not following:
                return
            if not fresh:
                stats.warn(f"{endpoint}: a page only repeated rows already received; stopping there.")
                return
            next_url, next_query = _follow(urljoin(url, following), limit)
            if (next_url, next_query) == (url, query):
                stats.warn(f"{endpoint}: the next link points at the same page; stopping there.")
                return
            url, query = next_url, next_query

    def _with_enrollments(self, pages: Iterator[Page], stats: PullStats) -> Iterator[Page]:
        """Attach each student's school enrollments (``Enrollments``), fetched side by side."""

        def enrollments(student: object) -> list[dict] | None:
            if not isinstance(student, dict) or student.get("NameId") is None:
                return None
            try:
                return self.student_enrollments(student["NameId"])
            except NotFoundError:
                stats.warn(f"students: enrollments of NameId {student['NameId']} not found (student removed "
                           "while reading?)")
                return None

        with ThreadPoolExecutor(self.settings.max_concurrency, thread_name_prefix="sms-student") as pool:
            for page in pages:
                for student, found in zip(page, pool.map(enrollments, page)):
                    if found is not None:
                        student["Enrollments"] = found
                yield list(page)  # changed records: no longer the page as sent


def _row_key(fields: tuple[str, ...] | None, record: object) -> object:
    if fields is None or not isinstance(record, dict):
        return None
    key = tuple(record.get(name) for name in fields)
    return None if all(part is None for part in key) else key


def _follow(next_url: str, limit: int) -> tuple[str, dict]:
    """The request a ``next`` link asks for, with its ``cursor=`` renamed to ``paging.cursor``."""
    parts = urlsplit(next_url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "cursor" in query:
        query["paging.cursor"] = query.pop("cursor")
    query.setdefault("paging.limit", str(limit))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), query


def _merge_staff(pages: Iterator[Page], stats: PullStats) -> Iterator[Page]:
    """One record per staff member from one row per assignment.

    Rows of one ``NameId`` come together (the listing is ordered by person); the member in
    progress is carried across page boundaries. A person whose rows are split by other rows
    cannot be merged without holding every staff member, so the later rows become a second
    record with the same id (the warehouse keeps one per id) and a warning says so.
    """
    pending: list[dict] = []
    done: set = set()

    def merged() -> dict:
        base = next((row for row in pending if row.get("IsPrimarySchool") is True), pending[0])
        done.add(pending[0]["NameId"])
        return {**base, "Assignments": list(pending)}

    for page in pages:
        out: list = []
        for row in page:
            if not isinstance(row, dict) or row.get("NameId") is None:
                out.append(row)
                continue
            if pending and pending[0]["NameId"] != row["NameId"]:
                out.append(merged())
                pending = []
            if not pending and row["NameId"] in done:
                stats.warn(f"staff: NameId {row['NameId']} appears again after other staff rows; its "
                           "assignments come as two records.")
            pending.append(row)
        if out:
            yield out
    if pending:
        yield [merged()]
