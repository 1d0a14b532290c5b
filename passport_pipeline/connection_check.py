"""Test Connection: can this source be synced, and if not, what should a district admin fix?

For one configured source, :func:`check_source` opens its client, gets in
(:meth:`~passport_pipeline.sources.reads.SourceClient.authenticate`: a token, or the bundle
opened) and takes each of the client's probes (:class:`~passport_pipeline.sources.reads.Probe`):
every endpoint or file the sync reads, in the client's order. It returns a
:class:`~passport_pipeline.connection_report.SourceReport`:

- **access**: a token was obtained (or the bundle opened), or why not — a wrong client
  id/secret, an inactive, not-yet-effective or expired credential record (in the server's own
  words), an unset secret variable (named), a token URL that is unreachable or wrong, a refused
  scope, a bundle that cannot be opened;
- **endpoints**: each probe reachable (rows, the source's total, latency), empty (a warning),
  forbidden (naming the missing scope), failing (status and the source's words, and what the
  sync does instead when the client says), not provided (failing only when the sync needs what
  it feeds), or skipped when there was nothing to ask about;
- **paging**: what a server's page-size clamp or refused sort means;
- **schools**: the schools the source shows (the probe read whole for them) against those the
  explicit schools mapping expects (or, in auto mode, those the previous sync saw, when the
  caller passes them), so a credential restricted to some schools is told apart from a wrong secret.

Which endpoints, scopes and ids a source has is the client's to say; what each outcome means
for a sync, and its words, are said here. The report is scrubbed of secrets once more.

A check retries as the sync does (the source's ``http.max_retries``; one HTTP policy), so it calls
a source unusable only when the sync would give up too, but it stays quick: it waits at most
1 s between retries of a failure, and waits out a rate limit's ``Retry-After`` only up to
:data:`CHECK_PATIENCE_S`. A longer one is reported as a rate limit, a warning: the sync waits it
out. So one request of a check waits at most ``max_retries`` x 5 s.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

import duckdb

from passport_pipeline.config import ApiSource, ConfigError, PassportConfig, Source
from passport_pipeline.connection_report import (
    AccessCheck,
    EndpointCheck,
    SchoolCoverage,
    SourceReport,
    format_report,
)
from passport_pipeline.redaction import scrub
from passport_pipeline.sources import (
    AuthenticationError,
    BadResponse,
    ConnectionFailed,
    ForbiddenError,
    NotFoundError,
    RateLimited,
    SourceError,
)
from passport_pipeline.sources.connect import open_client
from passport_pipeline.sources.reads import Access, Probe, Sample, SourceClient
from passport_pipeline.sources.settings import ClientSettings
from passport_pipeline.warehouse.raw import raw_table

__all__ = ["SourceReport", "check_source", "check_sources", "format_report", "previous_schools"]

CORE_ENTITIES = ("schools", "students", "staff", "classes", "enrollments")
"""Without these a sync cannot produce a roster (as far as the source extracts them)."""

CHECK_PATIENCE_S = 5.0
"""The longest ``Retry-After`` a check waits out; a longer one is reported, not waited."""

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
    report = SourceReport(source.name, source.app, source.location, AccessCheck(False, "configuration", ""))
    started = time.perf_counter()
    try:
        client = open_client(source, env, tuned=_quick)
    except ConfigError as exc:
        problem = "missing_credentials" if "environment variable" in str(exc) else "configuration"
        detail = "; ".join(exc.problems) or exc.summary
        return dataclasses.replace(report, access=AccessCheck(False, problem, detail[:1].upper() + detail[1:]))
    except SourceError as exc:
        return dataclasses.replace(report, access=AccessCheck(False, "bundle_unreadable", str(exc)))
    with closing(client):
        access, opened = _authenticate(source, client, started)
        report = dataclasses.replace(report, access=access)
        if opened is not None:
            checks, schools = _Prober(source, client, opened.granted).run()
            coverage = _coverage(source, schools, known_schools, sees=opened.sees)
            report = dataclasses.replace(report, endpoints=tuple(checks), schools=coverage)
        return report.redacted(scrub)


def previous_schools(con: duckdb.DuckDBPyConnection, source: str) -> set[str] | None:
    """The school ids the last extractions of ``source`` landed in the warehouse; None if none did."""
    try:
        rows = con.execute(f"SELECT DISTINCT sis_id FROM {raw_table(source, 'schools')} "
                           "WHERE coalesce(org_type, 'school') = 'school' AND sis_id IS NOT NULL").fetchall()
    except duckdb.CatalogException:
        return None
    return {sis_id for (sis_id,) in rows} or None


def _quick(settings: ClientSettings) -> ClientSettings:
    """The sync's retries, with short waits: backoff capped at 1 s, rate limits waited up to
    :data:`CHECK_PATIENCE_S` (a longer one raises :class:`RateLimited`)."""
    return dataclasses.replace(settings, backoff_max_s=min(settings.backoff_max_s, 1.0),
                               rate_limit_patience_s=CHECK_PATIENCE_S)


# --- access --------------------------------------------------------------------------------------

def _authenticate(source: Source, client: SourceClient, started: float) -> tuple[AccessCheck, Access | None]:
    """How getting in went, and what the client got (None when it did not)."""
    try:
        opened = client.authenticate()
    except AuthenticationError as exc:
        return _refusal(source, client.credential, exc), None
    except ConnectionFailed as exc:
        return AccessCheck(False, "token_url_unreachable", f"{exc} (setting: token_url)"), None
    except BadResponse as exc:
        return AccessCheck(False, "token_url_wrong", f"{exc} (setting: token_url)"), None
    except SourceError as exc:
        return AccessCheck(False, "server_error", str(exc)), None
    ms = _ms(time.perf_counter() - started)
    detail = "; ".join([f"{opened.done} in {ms} ms", *opened.facts])
    if opened.granted:
        detail += "; scopes granted: " + ", ".join(sorted(_short(s) for s in opened.granted))
        refused = sorted(_short(s) for s in set(opened.requested) - opened.granted)
        if refused:
            detail += "; requested but not granted: " + ", ".join(refused)
    return AccessCheck(True, None, detail, latency_ms=ms, granted_scopes=tuple(sorted(opened.granted))), opened


def _refusal(source: Source, record: str, exc: AuthenticationError) -> AccessCheck:
    """A refused token request, told apart by what the server said (``record``: what the server's
    administrators call the credential's record)."""
    words = (exc.said.text or str(exc.said)) if exc.said else ""
    quoted = f' The server said: "{words}".' if words else ""
    text = words.lower()
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


# --- probes --------------------------------------------------------------------------------------

class _Prober:
    """A client's probes taken, each turned into an :class:`EndpointCheck`: first those that keep
    ids for later ones, one after another, then the rest side by side; reported in the client's order."""

    def __init__(self, source: Source, client: SourceClient, granted: frozenset[str]) -> None:
        self.source = source
        self.client = client
        self.granted = granted
        self.limited: set[str] = set()
        """Ids not kept because the probe that keeps them was rate limited."""

    def run(self) -> tuple[list[EndpointCheck], Schools | None]:
        probes = self.client.probes()
        ids: dict[str, str] = {}
        taken: dict[int, tuple[EndpointCheck, list]] = {}
        for index, probe in enumerate(probes):
            if probe.keeps:
                taken[index] = self.take(probe, ids)
                ids.update(_first_ids(probe, records=taken[index][1]))
                if taken[index][0].outcome == "rate_limited":
                    self.limited.update(name for name, _ in probe.keeps)
        rest = [index for index in range(len(probes)) if index not in taken]
        workers = max(min(self.client.max_concurrency, len(rest)), 1)
        with ThreadPoolExecutor(workers, thread_name_prefix="test-connection") as pool:
            taken.update(zip(rest, pool.map(lambda index: self.take(probes[index], ids), rest)))
        schools = [_seen(probe, *taken[index]) for index, probe in enumerate(probes) if probe.schools]
        return [taken[index][0] for index in range(len(probes))], (schools[0] if schools else None)

    def core(self, feeds: tuple[str, ...]) -> bool:
        return any(entity in CORE_ENTITIES and entity in self.source.entities for entity in feeds)

    def take(self, probe: Probe, ids: Mapping[str, str]) -> tuple[EndpointCheck, list]:
        """One probe as a check, with the records it read."""
        core = self.core(probe.feeds)
        if probe.absent:
            return self.not_provided(probe), []
        if probe.skip is not None:
            return EndpointCheck(probe.name, "skipped", probe.feeds, core, detail=probe.skip), []
        missing = [need for need in probe.needs if ids.get(need) is None]
        if set(missing) & self.limited:
            return EndpointCheck(probe.name, "rate_limited", probe.feeds, core, detail=(
                f"not asked: the read that finds a {' or '.join(missing)} to ask about was rate limited")), []
        if missing:
            return EndpointCheck(probe.name, "skipped", probe.feeds, core, detail=(
                f"skipped: no {' or '.join(probe.needs)} was readable to ask about")), []
        shown = probe.shown.format_map(ids) if probe.needs else probe.name
        started = time.perf_counter()
        try:
            sample = self.client.sample(probe, ids)
        except SourceError as exc:
            return self.failed(probe, shown, exc, _ms(time.perf_counter() - started)), []
        return _answered(probe, shown, core, sample, _ms(time.perf_counter() - started)), sample.records

    def failed(self, probe: Probe, shown: str, exc: SourceError, latency_ms: int) -> EndpointCheck:
        core = self.core(probe.feeds)
        if isinstance(exc, RateLimited):
            retries = self.source.http.max_retries if isinstance(self.source, ApiSource) else 0
            return EndpointCheck(shown, "rate_limited", probe.feeds, core, latency_ms=latency_ms, status=exc.status,
                                 detail=f"{exc} The sync waits it out, retrying up to {retries} times "
                                        f"(http.max_retries); Test Connection waits at most {CHECK_PATIENCE_S:g} s.")
        if isinstance(exc, ForbiddenError):
            missing = exc.scope or (probe.scope if probe.scope and probe.scope not in self.granted else None)
            return EndpointCheck(shown, "forbidden", probe.feeds, core, latency_ms=latency_ms, status=exc.status,
                                 missing_scope=missing, detail=_forbidden(probe, missing, exc))
        hint = f" (setting: {probe.setting})" if probe.setting and isinstance(exc, NotFoundError) else ""
        instead = f" {probe.instead}" if probe.instead else ""
        return EndpointCheck(shown, "failing", probe.feeds, core, latency_ms=latency_ms, status=exc.status,
                             detail=f"{exc}{hint}{instead}")

    def not_provided(self, probe: Probe) -> EndpointCheck:
        """A probe of something the source does not provide: failing only when the sync needs it."""
        feeds = probe.feeds
        needed = [entity for entity in feeds if entity in CORE_ENTITIES and entity in self.source.entities]
        if needed:
            return EndpointCheck(probe.name, "failing", feeds, True, detail=(
                f"not provided (the manifest marks it absent), and the sync needs it for {', '.join(needed)}: "
                "ask for a bundle that carries it, or leave those entities out of the source's entities"))
        extracted = [entity for entity in feeds if entity in self.source.entities]
        if extracted:
            gone = f"{', '.join(extracted)} will be recorded as absent, not extracted"
        elif feeds:
            gone = f"the source's entities leave out {', '.join(feeds)}, so the sync does not read it"
        else:
            gone = f"{probe.note or 'nothing the sync reads'} when provided"
        return EndpointCheck(probe.name, "skipped", feeds, False, detail=f"not provided: {gone}")


def _answered(probe: Probe, shown: str, core: bool, sample: Sample, latency: int) -> EndpointCheck:
    """A probe that was read: reachable, or empty (nothing in it, nothing unreadable either)."""
    feeds, rows, total = probe.feeds, sample.rows, sample.total
    if rows == 0 and not sample.unreadable:
        said = "holds no rows" if probe.whole else "answered with no rows"
        return EndpointCheck(shown, "empty", feeds, core, rows=0, total=total, latency_ms=latency,
                             detail=f"{said}; syncing it would find nothing")
    plural = "" if rows == 1 and (total is None or total == rows) else "s"
    if probe.whole:
        of = f" of {total:,}" if total is not None and total != rows else ""
        detail = f"{rows:,}{of} row{plural} read, {latency} ms"
    else:
        of = f" of {total}" if total is not None and total != rows else ""
        detail = f"{rows}{of} row{plural} on the first page, {latency} ms"
    detail += f" ({probe.note})" if probe.note else ""
    if sample.unreadable:
        shown_rows = "; ".join(str(row) for row in sample.unreadable[:3])
        detail += (f"; {len(sample.unreadable)} that cannot be read: {shown_rows}"
                   + ("; ..." if len(sample.unreadable) > 3 else ""))
    return EndpointCheck(shown, "reachable", feeds, core, rows=rows, total=total, latency_ms=latency,
                         clamp=sample.clamp, sort_refused=sample.sort_refused, detail=detail)


def _forbidden(probe: Probe, scope: str | None, exc: ForbiddenError) -> str:
    lacks = f"the credential lacks the scope {scope}" if scope else "the credential may not read it"
    if probe.instead:
        return f"{lacks}. {probe.instead}"
    if not probe.feeds:
        return f"{lacks}; the sync does not read it."
    said = f' (the server said: "{exc.said.text}")' if exc.said and exc.said.text else ""
    ask = f"grant {scope}" if scope else "give this credential access"
    return (f"{lacks}{said}: {', '.join(probe.feeds)} cannot be synced; ask your Skyward administrator to {ask}, "
            "or leave them out of the source's entities.")


def _first_ids(probe: Probe, records: list) -> dict[str, str]:
    """The ids ``probe`` keeps for later probes: each from the first of its records that has one."""
    found = {}
    for name, key in probe.keeps:
        value = next((r[key] for r in records if isinstance(r, dict) and r.get(key) not in (None, "")), None)
        if value is not None:
            found[name] = _text(value)
    return found


def _seen(probe: Probe, check: EndpointCheck, records: list) -> Schools | None:
    """The schools the probe read, when it answered (else nothing can be compared)."""
    if check.outcome not in ("reachable", "empty"):
        return None
    key, code = probe.schools
    return {_text(r[key]): {_text(r[key]), _text(r.get(code))}
            for r in records if isinstance(r, dict) and r.get(key) not in (None, "")}


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


def _short(scope: str) -> str:
    """``roster.readonly`` for ``https://purl.imsglobal.org/spec/or/v1p1/scope/roster.readonly``."""
    return scope.rstrip("/").rsplit("/", 1)[-1]


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def _ms(seconds: float) -> int:
    return max(round(seconds * 1000), 0)
