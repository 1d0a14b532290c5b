"""What Test Connection found for a source, and how it reads: a terminal report, markdown, metadata.

:class:`SourceReport` holds the findings of :func:`~passport_pipeline.connection_check.check_source`:
how access went (:class:`AccessCheck`), each endpoint (:class:`EndpointCheck`) and the schools
seen (:class:`SchoolCoverage`). From those it derives whether the source is usable, what blocks
it and what deserves a warning, and renders them for a district admin: :func:`format_report`
for the command line, :meth:`SourceReport.to_markdown` and :meth:`SourceReport.to_metadata`
for Dagster.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal


AccessProblem = Literal[
    "missing_credentials", "wrong_credentials", "inactive", "not_yet_effective", "expired", "invalid_scope",
    "token_url_unreachable", "token_url_wrong", "server_error", "refused", "configuration", "bundle_unreadable",
]
Outcome = Literal["reachable", "empty", "forbidden", "failing", "skipped", "rate_limited"]
_LABELS = {"reachable": "ok", "empty": "EMPTY", "forbidden": "FORBIDDEN", "failing": "FAILING", "skipped": "skipped",
           "rate_limited": "RATE LIMIT"}
_SYNCABLE = ("reachable", "empty", "rate_limited")
"""Outcomes a sync can run with: a rate limit longer than a check waits is waited out by the sync."""


@dataclass(frozen=True)
class AccessCheck:
    """Authentication (API sources) or opening the bundle (CSV): ``problem`` says what went wrong."""

    ok: bool
    problem: AccessProblem | None
    detail: str
    latency_ms: int | None = None
    granted_scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class EndpointCheck:
    """One endpoint (or CSV file) read once: what came back, and what it means."""

    endpoint: str
    outcome: Outcome
    feeds: tuple[str, ...]
    """Canonical entities the sync takes from this endpoint."""
    core: bool
    """The sync cannot produce a roster without it."""
    rows: int | None = None
    """Rows on the first page (every page for ``schools``; for CSV files, of the file's entity)."""
    total: int | None = None
    """The server's total (``X-Total-Count``), or a CSV file's data lines."""
    latency_ms: int | None = None
    status: int | None = None
    missing_scope: str | None = None
    clamp: int | None = None
    """Rows per page the server sent instead of the page size asked."""
    sort_refused: bool = False
    detail: str = ""


@dataclass(frozen=True)
class SchoolCoverage:
    """Schools the source shows against those expected (explicit mapping, or the previous sync)."""

    seen: int
    expected: tuple[str, ...]
    missing: tuple[str, ...]
    basis: str
    """``the mapping expects`` | ``the previous sync saw`` | empty when nothing is expected."""
    sees: str
    """``this credential sees`` | ``the bundle holds``."""


@dataclass(frozen=True)
class SourceReport:
    """Everything Test Connection found about one source."""

    source: str
    app: str
    location: str
    access: AccessCheck
    endpoints: tuple[EndpointCheck, ...] = ()
    schools: SchoolCoverage | None = None

    @property
    def usable(self) -> bool:
        """Authenticated, and every core endpoint answered (or asked to wait a while): a sync can run."""
        return not self.blockers

    @property
    def blockers(self) -> list[str]:
        """Why a sync cannot run, one short reason each (empty when usable)."""
        if not self.access.ok:
            return ["the bundle cannot be read" if self.app == "oneroster_csv" else "it cannot authenticate"]
        return [f"{check.endpoint} is {check.outcome}" for check in self.endpoints
                if check.core and check.outcome not in _SYNCABLE]

    @property
    def warnings(self) -> list[str]:
        """What a sync could run with but a person should know."""
        found = []
        for check in self.endpoints:
            if check.outcome in ("empty", "rate_limited") or (
                    not check.core and check.outcome in ("forbidden", "failing")):
                found.append(f"{check.endpoint}: {check.detail}")
            if check.sort_refused:
                found.append(f"{check.endpoint}: the server refused sort=sourcedId; paging runs unsorted, so rows "
                             "changing during a sync may be missed until the next full sync.")
        if self.schools and self.schools.missing:
            found.append(self.schools_sentence())
        return found

    @property
    def page_size_clamp(self) -> int | None:
        clamps = [check.clamp for check in self.endpoints if check.clamp]
        return min(clamps) if clamps else None

    def paging_sentence(self) -> str | None:
        clamp = self.page_size_clamp
        if clamp is None:
            return None
        return f"the server returns at most {clamp} records per page; paging adapts, nothing to do."

    def schools_sentence(self) -> str | None:
        coverage = self.schools
        if coverage is None:
            return None
        if not coverage.basis:
            return f"{coverage.sees} {coverage.seen} school{'s' if coverage.seen != 1 else ''}."
        expected = len(coverage.expected)
        if not coverage.missing:
            return f"{coverage.sees} all {expected} schools {coverage.basis}."
        why = ("the export may cover only some schools: check how it is produced" if self.app == "oneroster_csv"
               else "a Qmlativ Integration Access record may restrict schools (its OneRoster configuration): ask "
                    "your Skyward administrator to include them, or take them out of schools_mapping")
        return (f"{coverage.sees} {expected - len(coverage.missing)} of the {expected} schools {coverage.basis}: "
                f"missing {', '.join(coverage.missing)}; {why}.")

    def verdict(self) -> str:
        if not self.usable:
            return "NOT USABLE: " + "; ".join(self.blockers) + "."
        count = len(self.warnings)
        return "usable" + (f", with {count} warning{'s' if count > 1 else ''}." if count else ".")

    def redacted(self, redact: Callable[[str], str]) -> SourceReport:
        """This report with ``redact`` (:func:`passport_pipeline.redaction.scrub`) applied wherever
        the text may hold a secret."""
        access = dataclasses.replace(self.access, detail=redact(self.access.detail))
        endpoints = tuple(dataclasses.replace(c, detail=redact(c.detail)) for c in self.endpoints)
        return dataclasses.replace(self, access=access, endpoints=endpoints)

    def text(self) -> str:
        """The report as the command line prints it."""
        step = "Bundle" if self.app == "oneroster_csv" else "Authentication"
        lines = [f"Source '{self.source}' ({self.app}) at {self.location}",
                 f"  {step}: " + (f"ok, {self.access.detail}" if self.access.ok else f"FAILED. {self.access.detail}")]
        if self.endpoints:
            width = max(len(check.endpoint) for check in self.endpoints)
            lines.append("  Endpoints:")
            lines += [f"    {_LABELS[c.outcome]:<10} {c.endpoint:<{width}}  {c.detail}" for c in self.endpoints]
        for label, sentence in (("Paging", self.paging_sentence()), ("Schools", self.schools_sentence())):
            if sentence:
                lines.append(f"  {label}: {sentence}")
        lines.append(f"  Result: {self.verdict()}")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """The report as markdown (a Dagster materialization or asset check description)."""
        step = "Bundle" if self.app == "oneroster_csv" else "Authentication"
        parts = [f"### {self.source} ({self.app}): {self.verdict()}", "",
                 f"**{step}:** " + ("ok, " if self.access.ok else "failed. ") + _cell(self.access.detail)]
        if self.endpoints:
            parts += ["", "| Endpoint | Result | Rows | Total | Latency (ms) | Details |", "|---|---|---|---|---|---|"]
            parts += [f"| {_cell(c.endpoint)} | {c.outcome} | {_blank(c.rows)} | {_blank(c.total)} | "
                      f"{_blank(c.latency_ms)} | {_cell(c.detail)} |" for c in self.endpoints]
        for label, sentence in (("Paging", self.paging_sentence()), ("Schools", self.schools_sentence())):
            if sentence:
                parts += ["", f"**{label}:** {sentence}"]
        if self.warnings:
            parts += ["", "**Warnings:**", *(f"- {_cell(w)}" for w in self.warnings)]
        return "\n".join(parts)

    def to_metadata(self) -> dict[str, str | int | bool]:
        """Simple values for Dagster metadata; absent facts are left out."""
        counts = {outcome: sum(c.outcome == outcome for c in self.endpoints) for outcome in _LABELS}
        found: dict[str, str | int | bool | None] = {
            "usable": self.usable, "verdict": self.verdict(), "app": self.app, "location": self.location,
            "access": "ok" if self.access.ok else self.access.problem, "access_detail": self.access.detail,
            "access_latency_ms": self.access.latency_ms,
            **{f"endpoints_{outcome}": count for outcome, count in counts.items()},
            "page_size_clamp": self.page_size_clamp, "schools": self.schools_sentence(),
            "warnings": len(self.warnings),
            **{f"endpoint {c.endpoint}": f"{c.outcome}: {c.detail}" for c in self.endpoints},
        }
        return {key: value for key, value in found.items() if value is not None}


def format_report(reports: Sequence[SourceReport]) -> str:
    """Every source's report, then how many are usable: what ``test-connection`` prints."""
    usable = sum(report.usable for report in reports)
    blocks = [report.text() for report in reports]
    return "\n\n".join([*blocks, f"{usable} of {len(reports)} source{'s' if len(reports) != 1 else ''} usable."])


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _blank(value: int | None) -> str:
    return "" if value is None else str(value)
