"""Test Connection: can this source be synced, and if not, what should a district admin fix?

For one configured source, :func:`check_source` authenticates (or opens the CSV bundle) and
reads one small page of every entity endpoint, and returns a
:class:`~passport_pipeline.connection_report.SourceReport`:

- **access**: a token was obtained, or why not — a wrong client id/secret, an inactive,
  not-yet-effective or expired Integration Access record (in the server's own words), an unset
  secret variable (named), a token URL that is unreachable or wrong, a refused scope;
- **endpoints**: each one reachable (rows on the first page, the server's total, latency),
  empty (200 with no rows: a warning), forbidden (naming the missing scope), failing (status
  and the server's words), or skipped when there was nothing to ask about. OneRoster: the
  collections, plus ``schools/{first school}/students`` for ``roster.readonly``; SMS native:
  every configured endpoint, per-student ones with the first student's ``NameId``; CSV: every
  file the manifest lists or the sync reads — read whole by DuckDB (its rows and those that
  cannot be read), unreadable and why, or not provided (failing only when the sync needs it);
- **paging**: ``students`` is read at the configured page size, so that a page-size clamp the
  server applies silently shows; every other endpoint with a small limit, to stay quick;
- **schools**: the schools the credential sees against those the explicit schools mapping
  expects (or, in auto mode, those the previous sync saw, when the caller passes them), so a
  credential restricted to some schools is told apart from a wrong secret.

Retries are cut to two quick ones: a check reports what a server does, it does not wait it out.
Every message comes from the source clients (which redact secrets and tokens) or from here,
and the report is redacted once more with the source's secret.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from urllib.parse import quote

import duckdb

from passport_pipeline.config import (
    ApiSource,
    ConfigError,
    CsvBundleSource,
    OneRosterSource,
    PassportConfig,
    Source,
    default_scopes,
)
from passport_pipeline.connection_report import (
    AccessCheck,
    EndpointCheck,
    SchoolCoverage,
    SourceReport,
    format_report,
)
from passport_pipeline.sources import (
    AuthenticationError,
    BadResponse,
    ConnectionFailed,
    ForbiddenError,
    NotFoundError,
    OneRosterClient,
    SmsClient,
    SourceError,
)
from passport_pipeline.sources.connect import client_settings
from passport_pipeline.sources.csv_bundle import BundleFile, CsvBundle
from passport_pipeline.sources.oneroster import ENTITY_READS
from passport_pipeline.sources.paging import Pull, PullStats
from passport_pipeline.warehouse.raw import raw_table

__all__ = ["SourceReport", "check_source", "check_sources", "format_report", "previous_schools"]

PROBE_ROWS = 10
"""Rows asked of each endpoint: enough to see data, few enough to stay quick."""
CORE_ENTITIES = ("schools", "students", "staff", "classes", "enrollments")
"""Without these a sync cannot produce a roster (as far as the source extracts them)."""

ONEROSTER_PROBES = ("orgs", "schools", "academicSessions", "courses", "classes", "students", "teachers", "users",
                    "enrollments", "demographics")
ONEROSTER_FEEDS = {name: tuple(e for e, (read, _) in ENTITY_READS.items() if read == name) for name in ONEROSTER_PROBES}
"""OneRoster collection -> the canonical entities the client reads from it."""
SMS_FEEDS = {"schools": ("schools",), "students": ("students", "demographics"), "student_enrollments": ("students",),
             "guardians": ("contacts", "student_contacts"), "staff": ("staff",), "courses": ("courses",),
             "sections": ("classes", "enrollments"), "terms": ("terms",), "student_schedules": ("enrollments",)}
"""SMS native endpoint -> the canonical entities extraction takes from it."""

_PLACEHOLDER = re.compile(r"\{(NameId|SchoolId)\}")

Schools = dict[str, set[str]]
"""A school's source id -> every id it may be mapped by (source id, code)."""


def check_sources(config: PassportConfig, names: Sequence[str] | None = None, env: Mapping[str, str] = os.environ,
                  *, known_schools: Mapping[str, Collection[str]] | None = None) -> list[SourceReport]:
    """Reports for the named sources (default: all), in order; an unknown name raises ``ConfigError``.

    ``embedded`` sources must come from a config already ``served_by`` the running simulator.
    ``known_schools`` maps a source name to the school ids its previous sync saw
    (:func:`previous_schools`), compared with what the credential sees in auto mapping mode.
    """
    sources = [config.source(name) for name in names] if names else list(config.sources)
    known = known_schools or {}
    return [check_source(source, env, known_schools=known.get(source.name)) for source in sources]


def check_source(source: Source, env: Mapping[str, str] = os.environ, *,
                 known_schools: Collection[str] | None = None) -> SourceReport:
    """Check one source; what the server or the environment gets wrong goes in the report, never raised."""
    if isinstance(source, CsvBundleSource):
        return _check_bundle(source, known_schools)
    return _check_api(source, env, known_schools)


def previous_schools(con: duckdb.DuckDBPyConnection, source: str) -> set[str] | None:
    """The school ids the last extractions of ``source`` landed in the warehouse; None if none did."""
    try:
        rows = con.execute(f"SELECT DISTINCT sis_id FROM {raw_table(source, 'schools')} "
                           "WHERE coalesce(org_type, 'school') = 'school' AND sis_id IS NOT NULL").fetchall()
    except duckdb.CatalogException:
        return None
    return {sis_id for (sis_id,) in rows} or None


# --- API sources ---------------------------------------------------------------------------------

def _check_api(source: ApiSource, env: Mapping[str, str], known_schools: Collection[str] | None) -> SourceReport:
    report = SourceReport(source.name, source.app, _location(source), AccessCheck(False, "configuration", ""))
    try:
        secret = source.resolve_credentials(env).secret.get_secret_value()
        settings = client_settings(source, env)
    except ConfigError as exc:
        problem = "missing_credentials" if "environment variable" in str(exc) else "configuration"
        detail = "; ".join(exc.problems) or exc.summary
        return dataclasses.replace(report, access=AccessCheck(False, problem, detail[:1].upper() + detail[1:]))
    settings = dataclasses.replace(settings, max_retries=min(settings.max_retries, 2),
                                   backoff_max_s=min(settings.backoff_max_s, 1.0),
                                   retry_after_max_s=min(settings.retry_after_max_s, 5.0))
    oneroster = isinstance(source, OneRosterSource)
    with OneRosterClient(settings) if oneroster else SmsClient(settings) as client:
        access = _authenticate(source, client)
        report = dataclasses.replace(report, access=access)
        if access.ok:
            reader = _Reader(source, client, frozenset(access.granted_scopes))
            checks, schools = _oneroster_checks(reader) if oneroster else _sms_checks(reader)
            coverage = _coverage(source, schools, known_schools, sees="this credential sees")
            report = dataclasses.replace(report, endpoints=tuple(checks), schools=coverage)
    return report.redacted(secret)


def _authenticate(source: ApiSource, client: OneRosterClient | SmsClient) -> AccessCheck:
    started = time.perf_counter()
    try:
        client.http.tokens.token()
        granted = client.granted_scopes() if isinstance(client, OneRosterClient) else frozenset()
    except AuthenticationError as exc:
        return _refusal(source, exc)
    except ConnectionFailed as exc:
        return AccessCheck(False, "token_url_unreachable", f"{exc} (setting: token_url)")
    except BadResponse as exc:
        return AccessCheck(False, "token_url_wrong", f"{exc} (setting: token_url)")
    except SourceError as exc:
        return AccessCheck(False, "server_error", str(exc))
    ms = _ms(time.perf_counter() - started)
    detail = f"token obtained in {ms} ms"
    if granted:
        detail += "; scopes granted: " + ", ".join(sorted(_short(s) for s in granted))
        refused = sorted(_short(s) for s in set(client.settings.scopes) - granted)
        if refused:
            detail += "; requested but not granted: " + ", ".join(refused)
    return AccessCheck(True, None, detail, latency_ms=ms, granted_scopes=tuple(sorted(granted)))


def _refusal(source: ApiSource, exc: AuthenticationError) -> AccessCheck:
    """A refused token request, told apart by what the server said."""
    words = (exc.said.text or str(exc.said)) if exc.said else ""
    quoted = f' The server said: "{words}".' if words else ""
    text = words.lower()
    record = "Integration Access record" if isinstance(source, OneRosterSource) else "API key"
    if exc.said and exc.said.code == "invalid_scope":
        return AccessCheck(False, "invalid_scope", "The token URL refused the requested scopes." + quoted +
                           " Ask your Skyward administrator to grant them to this credential, or remove them "
                           "from the source's scopes setting.")
    if exc.status == 404:
        return AccessCheck(False, "token_url_wrong", f"The token URL {exc.endpoint} does not exist on the server "
                           f"(404): check token_url; it looks like {source.TOKEN_EXAMPLE}.")
    if re.search(r"\binactive\b|not active|disabled", text):
        return AccessCheck(False, "inactive", f"The credential is known, but its {record} is inactive." + quoted +
                           " Ask your Skyward administrator to mark it active; the client id and secret need "
                           "no change.")
    if re.search(r"not (yet )?effective|not valid until|effective (date|from|until)", text):
        return AccessCheck(False, "not_yet_effective", f"The credential's {record} is not in effect yet." +
                           quoted + " Wait for its effective date, or ask your Skyward administrator to move it.")
    if re.search(r"expired|expiration", text):
        return AccessCheck(False, "expired", f"The credential's {record} has expired." + quoted +
                           " Ask your Skyward administrator to extend it or to issue a new credential.")
    if exc.status in (400, 401):
        return AccessCheck(False, "wrong_credentials", f"{exc} A secret is shown only once, when the credential "
                           "is created: if unsure, have a new one issued.")
    return AccessCheck(False, "refused", str(exc))


class _Reader:
    """Reads of one authenticated API source, each turned into an :class:`EndpointCheck`."""

    def __init__(self, source: ApiSource, client: OneRosterClient | SmsClient, granted: frozenset[str]) -> None:
        self.source = source
        self.client = client
        self.granted = granted

    def core(self, feeds: tuple[str, ...]) -> bool:
        return any(entity in CORE_ENTITIES and entity in self.source.entities for entity in feeds)

    def page_size(self, name: str) -> int:
        return self.client.settings.page_size if name == "students" else PROBE_ROWS

    def paged(self, name: str, pull: Pull, feeds: tuple[str, ...], *, whole: bool = False,
              scope: str | None = None) -> tuple[EndpointCheck, list]:
        """The first page of ``pull`` (every page when ``whole``) as a check, with its records.

        ``scope`` is the scope the endpoint needs, to name it when a 403 does not.
        """
        records: list = []
        pages = iter(pull)
        try:
            for page in pages:
                records.extend(page)
                if not whole:
                    break
        except SourceError as exc:
            return self.failed(name, exc, feeds, _ms(pull.stats.seconds), scope), []
        finally:
            pages.close()
        return _answered(name, feeds, self.core(feeds), pull.stats, whole=whole), records

    def failed(self, name: str, exc: SourceError, feeds: tuple[str, ...], latency_ms: int | None,
               scope: str | None = None) -> EndpointCheck:
        core = self.core(feeds)
        if isinstance(exc, ForbiddenError):
            missing = exc.scope or (scope if scope and scope not in self.granted else None)
            return EndpointCheck(name, "forbidden", feeds, core, latency_ms=latency_ms, status=exc.status,
                                 missing_scope=missing, detail=_forbidden(name, feeds, missing, exc))
        setting = isinstance(exc, NotFoundError) and name in self.source.endpoints
        hint = f" (setting: endpoints.{name})" if setting else ""
        return EndpointCheck(name, "failing", feeds, core, latency_ms=latency_ms, status=exc.status,
                             detail=f"{exc}{hint}")

    def all(self, reads: Sequence[Callable[[], EndpointCheck]]) -> list[EndpointCheck]:
        """Run the reads side by side, within the source's concurrency; results in order."""
        workers = max(min(self.client.settings.max_concurrency, len(reads)), 1)
        with ThreadPoolExecutor(workers, thread_name_prefix="test-connection") as pool:
            return list(pool.map(lambda read: read(), reads))


def _oneroster_checks(reader: _Reader) -> tuple[list[EndpointCheck], Schools | None]:
    source, client = reader.source, reader.client
    core_scope, roster_scope, demographics_scope = default_scopes(source.oneroster_version)

    def path(name: str) -> str:
        return source.endpoints.get(name, name)

    def collection(name: str) -> EndpointCheck:
        scope = demographics_scope if name == "demographics" else core_scope
        pull = client.collection(path(name), page_size=reader.page_size(name))
        return reader.paged(name, pull, ONEROSTER_FEEDS[name], scope=scope)[0]

    def nested(school: str | None) -> EndpointCheck:
        if school is None:
            return EndpointCheck("schools/{id}/students", "skipped", (), False,
                                 detail="skipped: no school was readable to ask about")
        name = f"schools/{school}/students"
        pull = client.collection(f"{path('schools')}/{quote(school, safe='')}/students", page_size=PROBE_ROWS)
        check = reader.paged(name, pull, (), scope=roster_scope)[0]
        if check.outcome != "failing":
            return check
        return dataclasses.replace(check, detail=f"{check.detail} The sync reads courses, classes, students and "
                                   "enrollments whole and splits them by school instead: nothing to fix, but "
                                   "each such read then fails or succeeds for every school at once.")

    schools_check, records = reader.paged("schools", client.collection(path("schools")), (), whole=True,
                                          scope=core_scope)
    schools = {_text(r["sourcedId"]): {_text(r["sourcedId"]), _text(r.get("identifier"))}
               for r in records if isinstance(r, dict) and r.get("sourcedId")}
    others = [name for name in ONEROSTER_PROBES if name != "schools"]
    found = reader.all([partial(collection, name) for name in others] + [partial(nested, next(iter(schools), None))])
    checks = dict(zip(others, found))
    checks["schools"] = schools_check
    return [checks[name] for name in ONEROSTER_PROBES] + [found[-1]], _seen(schools_check, schools)


def _sms_checks(reader: _Reader) -> tuple[list[EndpointCheck], Schools | None]:
    source, client = reader.source, reader.client
    paths = source.endpoints

    def listing(name: str) -> tuple[EndpointCheck, list]:
        return reader.paged(name, client.listing(name, page_size=reader.page_size(name)), SMS_FEEDS.get(name, ()))

    def item(name: str, ids: Mapping[str, object]) -> EndpointCheck:
        """One call of a per-student (or per-school) endpoint, with the first id of its kind."""
        feeds = SMS_FEEDS.get(name, ())
        needed = set(_PLACEHOLDER.findall(paths[name]))
        if any(ids.get(key) is None for key in needed):
            return EndpointCheck(name, "skipped", feeds, reader.core(feeds),
                                 detail="skipped: no student or school was readable to ask about")
        label = f"{name} (student {ids['NameId']})" if needed - {"SchoolId"} else f"{name} (school {ids['SchoolId']})"
        path = _PLACEHOLDER.sub(lambda m: quote(str(ids[m.group(1)]), safe=""), paths[name].strip("/"))
        started = time.perf_counter()
        try:
            response = client.http.get_json(f"{client.base}/{path}")
        except SourceError as exc:
            return dataclasses.replace(reader.failed(name, exc, feeds, _ms(time.perf_counter() - started)),
                                       endpoint=label)
        rows = len(response.body) if isinstance(response.body, list) else 1
        return _answered(label, feeds, reader.core(feeds), PullStats(label, pages=1, rows=rows,
                                                                     seconds=response.elapsed_s))

    schools_check, records = reader.paged("schools", client.listing("schools"), SMS_FEEDS["schools"], whole=True)
    schools = {_text(r["SchoolId"]): {_text(r["SchoolId"]), _text(r.get("SchoolCode"))}
               for r in records if isinstance(r, dict) and r.get("SchoolId") is not None}
    students_check, students = listing("students")
    ids = {"SchoolId": next(iter(schools), None),
           "NameId": next((r["NameId"] for r in students if isinstance(r, dict) and r.get("NameId")), None)}
    others = [name for name in paths if name not in ("schools", "students")]
    found = reader.all([partial(item, name, ids) if _PLACEHOLDER.search(paths[name]) else
                        (lambda name=name: listing(name)[0]) for name in others])
    checks = {"schools": schools_check, "students": students_check, **dict(zip(others, found))}
    return [checks[name] for name in paths if name in checks], _seen(schools_check, schools)


# --- CSV bundles ---------------------------------------------------------------------------------

def _check_bundle(source: CsvBundleSource, known_schools: Collection[str] | None) -> SourceReport:
    report = SourceReport(source.name, source.app, str(source.path), AccessCheck(False, "bundle_unreadable", ""))
    started = time.perf_counter()
    try:
        bundle = CsvBundle(source.path)
        files = bundle.files()
    except SourceError as exc:
        return dataclasses.replace(report, access=AccessCheck(False, "bundle_unreadable", str(exc)))
    listed = [file for file in files if file.processing != "absent"]
    access = AccessCheck(True, None, f"opened a OneRoster {bundle.version} bundle whose manifest lists "
                         f"{len(listed)} files", latency_ms=_ms(time.perf_counter() - started))
    shown = [file for file in files if file.processing != "absent" or file.lands or file.read_with]
    checks = [_bundle_file(source, bundle, file) for file in shown]
    schools = None
    orgs = next(file for file in files if file.name == "orgs.csv")
    if orgs.readable:
        try:
            schools = {sis_id: {sis_id, code} for sis_id, code in bundle.schools().items()}
        except SourceError:
            schools = None
    coverage = _coverage(source, schools, known_schools, sees="the bundle holds")
    return dataclasses.replace(report, access=access, endpoints=tuple(checks), schools=coverage)


def _bundle_file(source: CsvBundleSource, bundle: CsvBundle, file: BundleFile) -> EndpointCheck:
    """One file, as the bundle's line for it says: not provided (failing only when the sync cannot do
    without it), unreadable, not read by the sync, or read whole — its rows and those that cannot be."""
    feeds = file.lands
    needed = [entity for entity in feeds if entity in CORE_ENTITIES and entity in source.entities]
    core = bool(needed)
    if file.processing == "absent":
        if needed:
            return EndpointCheck(file.name, "failing", feeds, core, detail=(
                f"not provided (the manifest marks it absent), and the sync needs it for {', '.join(needed)}: "
                "ask for a bundle that carries it, or leave those entities out of the source's entities"))
        gone = (f"{', '.join(feeds)} will be recorded as absent, not extracted" if feeds
                else f"read with {file.read_with} when provided")
        return EndpointCheck(file.name, "skipped", feeds, core, detail=f"not provided: {gone}")
    if file.problem:
        return EndpointCheck(file.name, "failing", feeds, core, detail=f"cannot be read: {file.problem}")
    if not (feeds or file.read_with):
        return EndpointCheck(file.name, "skipped", feeds, core, detail=str(file).split(": ", 1)[1])
    started = time.perf_counter()
    try:
        rows, broken = bundle.count(file.name)
    except SourceError as exc:
        return EndpointCheck(file.name, "failing", feeds, core, latency_ms=_ms(time.perf_counter() - started),
                             detail=str(exc))
    ms = _ms(time.perf_counter() - started)
    if rows == 0 and not broken:
        return EndpointCheck(file.name, "empty", feeds, core, rows=0, total=0, latency_ms=ms,
                             detail="holds no rows; syncing it would find nothing")
    detail = f"{rows:,} rows read, {ms} ms" + (f" (read with {file.read_with})" if file.read_with else "")
    if broken:
        detail += (f"; {len(broken)} that cannot be read: " + "; ".join(str(issue) for issue in broken[:3])
                   + ("; ..." if len(broken) > 3 else ""))
    return EndpointCheck(file.name, "reachable", feeds, core, rows=rows, total=rows, latency_ms=ms, detail=detail)


# --- shared ----------------------------------------------------------------------------------------

def _answered(name: str, feeds: tuple[str, ...], core: bool, stats: PullStats, *, whole: bool = False) -> EndpointCheck:
    """An endpoint that answered 200: reachable, or empty (``whole``: every page was read)."""
    latency = _ms(stats.seconds)
    if stats.rows == 0:
        return EndpointCheck(name, "empty", feeds, core, rows=0, total=stats.total, latency_ms=latency,
                             detail="answered with no rows; syncing it would find nothing")
    of = f" of {stats.total}" if stats.total is not None and stats.total != stats.rows else ""
    rows = f"{stats.rows}{of} row{'' if stats.rows == 1 and not of else 's'}"
    where = ", all read" if whole else " on the first page"
    return EndpointCheck(name, "reachable", feeds, core, rows=stats.rows, total=stats.total, latency_ms=latency,
                         clamp=stats.clamped_limit, sort_refused=stats.sort_dropped,
                         detail=f"{rows}{where}, {latency} ms")


def _forbidden(name: str, feeds: tuple[str, ...], scope: str | None, exc: ForbiddenError) -> str:
    lacks = f"the credential lacks the scope {scope}" if scope else "the credential may not read it"
    if not feeds and "/" in name:
        return (f"{lacks}: per-school reads fall back to the district-wide collections, filtered by school "
                "(slower for a large district); nothing to fix unless you want them per school.")
    if not feeds:
        return f"{lacks}; the sync does not read it."
    said = f' (the server said: "{exc.said.text}")' if exc.said and exc.said.text else ""
    ask = f"grant {scope}" if scope else "give this credential access"
    return (f"{lacks}{said}: {', '.join(feeds)} cannot be synced; ask your Skyward administrator to {ask}, "
            "or leave them out of the source's entities.")


def _seen(check: EndpointCheck, schools: Schools) -> Schools | None:
    """The schools seen, when the schools endpoint answered (else nothing can be compared)."""
    return schools if check.outcome in ("reachable", "empty") else None


def _coverage(source: Source, seen: Schools | None, known: Collection[str] | None, sees: str) -> SchoolCoverage | None:
    """Schools seen vs expected: by the explicit mapping, else by the previous sync (when known).

    A mapping key matches a school by its source id or its code (OneRoster ``identifier``, SMS
    ``SchoolCode``), whichever the district wrote.
    """
    if seen is None:
        return None
    mapping = source.advanced.schools_mapping
    if mapping.mode == "explicit":
        expected, basis = tuple(mapping.schools), "the mapping expects"
    elif known:
        expected, basis = tuple(sorted(known)), "the previous sync saw"
    else:
        return SchoolCoverage(len(seen), (), (), "", sees)
    ids = set().union(*seen.values())
    return SchoolCoverage(len(seen), expected, tuple(key for key in expected if key.strip() not in ids), basis, sees)


def _location(source: ApiSource) -> str:
    try:
        return source.api_url
    except ConfigError:
        return "the embedded simulator (not running)"


def _short(scope: str) -> str:
    """``roster.readonly`` for ``https://purl.imsglobal.org/spec/or/v1p1/scope/roster.readonly``."""
    return scope.rstrip("/").rsplit("/", 1)[-1]


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def _ms(seconds: float) -> int:
    return max(round(seconds * 1000), 0)
