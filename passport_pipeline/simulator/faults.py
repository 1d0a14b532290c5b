"""Misbehaviour on demand: the quirks of real Skyward servers, switched on per test or demo.

Every fault is off by default. :class:`Faults` is the setting (given at start, or changed on
a running server through ``/admin/faults``); :class:`FaultPlan` turns it into one decision per
data request. Decisions are seeded and made under a lock, so the same settings and the same
request sequence misbehave the same way every time. Admin endpoints never see faults; data
endpoints of both APIs (OneRoster and SMS native) do, and token endpoints only ``echo_credentials``.

The nested and short faults are OneRoster only, and are no random decision: the server passes
them to the OneRoster engine with each request, which routes and pages by them (see
``OneRosterRequest``), so every request to the same path misbehaves alike.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Faults(BaseModel):
    """Which quirks the simulator shows; the defaults describe a well-behaved server."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    """Seeds the random decisions (rate limiting, bad JSON)."""
    latency_ms: int = Field(0, ge=0)
    """Added to every data response."""
    rate_limit_share: float = Field(0.0, ge=0, le=1)
    """Share of data requests answered 429 with ``Retry-After``."""
    retry_after_seconds: int = Field(1, ge=0)
    burst_every: int = Field(0, ge=0)
    """After every ``burst_every`` data requests come ``burst_length`` failing ones (0 = off)."""
    burst_length: int = Field(1, ge=1)
    burst_status: list[int] = Field(default_factory=lambda: [503])
    """Statuses of failing responses, used in turn: e.g. ``[503, 502, 504, 500]``."""
    token_ttl_seconds: int | None = Field(None, ge=0)
    """Lifetime of tokens issued from now on (overrides the server setting)."""
    expired_token_status: int = 401
    """How an expired token is answered: 401, 403 or even 500, as real servers do."""
    clamp_limit: int | None = Field(None, ge=1)
    """Page size cap applied silently, whatever ``limit`` asks for."""
    non_spec_wrappers: bool = False
    """OneRoster collections wrapped under the endpoint's name (``students``) not the spec's."""
    overlap_rows: int = Field(0, ge=0)
    """Rows of one page repeated at the start of the next (paging while data changes)."""
    bad_json_share: float = Field(0.0, ge=0, le=1)
    """Share of 200 page responses whose body is cut off mid-document."""
    empty_endpoints: list[str] = Field(default_factory=list)
    """Collections (``students``, ``guardians``…) answered 200 with zero rows."""
    plain_errors: bool = False
    """Error bodies as ``{"error": "..."}`` instead of the API's own error shape."""
    nested_not_found: bool = False
    """Every nested OneRoster ``schools/{id}/...`` path answers 404 ``unknownobject``, as a
    server that does not implement them."""
    nested_as_schools: bool = False
    """Every nested OneRoster ``schools/{id}/...`` path answers 200 with what ``schools`` would
    answer for the same ``limit``/``offset`` (its rows, count and links), under the key
    ``schools``, as one real server does."""
    nested_students_from_enrollments: bool = False
    """``schools/{id}/students`` serves the students with an enrollment at the school, not
    those whose orgs include it: a student with no enrollment is in no school's list, though
    ``/students`` has them."""
    short_endpoints: list[str] = Field(default_factory=list)
    """OneRoster collections that stop after their first ``short_rows`` rows (no ``next`` link,
    then empty pages) while ``X-Total-Count`` keeps the true total, as a server that stops early."""
    short_rows: int = Field(10, ge=0)
    echo_credentials: bool = False
    """Error answers repeat the request's credentials, as a debugging gateway does: a refused token
    request its ``Authorization`` header (HTTP Basic, base64 of ``client_id:secret``) and form body
    (the SMS password grant's holds the secret), a data request's errors its ``Authorization: Bearer``
    header. What a client makes of such an answer must not show them."""
    hostile_records: dict[str, list[str]] = Field(default_factory=dict)
    """Endpoint (``students``, ``guardians``…) -> raw JSON texts of records appended to the first page
    of every read of it, as sent: lone surrogate escapes, deep nesting and repeated keys survive."""

    @model_validator(mode="after")
    def _check_statuses(self) -> Faults:
        if self.expired_token_status not in (401, 403, 500):
            raise ValueError("expired_token_status must be 401, 403 or 500")
        if not self.burst_status:
            raise ValueError("burst_status needs at least one status")
        bad = [s for s in self.burst_status if not 400 <= s <= 599]
        if bad:
            raise ValueError(f"burst_status must be HTTP error statuses (400-599), got {bad}")
        if self.nested_not_found and self.nested_as_schools:
            raise ValueError("nested_not_found and nested_as_schools exclude each other: switch on one")
        return self


@dataclass(frozen=True)
class Decision:
    """What to do to one data request: wait, fail it, or corrupt its body."""

    latency_seconds: float = 0.0
    status: int | None = None
    """When set, answer with this error status instead of serving the request."""
    retry_after_seconds: int | None = None
    bad_json: bool = False
    """When true, a 200 page is cut off (see :func:`corrupt`)."""


class FaultPlan:
    """The current faults and the state behind their decisions; safe to share across threads."""

    def __init__(self, faults: Faults | None = None) -> None:
        self._lock = threading.Lock()
        self.replace(faults or Faults())

    @property
    def faults(self) -> Faults:
        return self._faults

    def replace(self, faults: Faults) -> None:
        """Switch to new settings, restarting counters and the random sequence."""
        with self._lock:
            self._faults = faults
            self._random = random.Random(faults.seed)
            self._requests = 0
            self._failures = 0

    def decide(self) -> Decision:
        """Decide the fate of the next data request."""
        with self._lock:
            f = self._faults
            position = self._requests
            self._requests += 1
            rate_limited = self._random.random() < f.rate_limit_share
            bad_json = self._random.random() < f.bad_json_share
            latency = f.latency_ms / 1000
            if f.burst_every and position % (f.burst_every + f.burst_length) >= f.burst_every:
                status = f.burst_status[self._failures % len(f.burst_status)]
                self._failures += 1
                return Decision(latency, status)
            if rate_limited:
                return Decision(latency, 429, retry_after_seconds=f.retry_after_seconds)
            return Decision(latency, bad_json=bad_json)


def with_records(body: bytes, records: list[str]) -> bytes:
    """A page body with ``records`` (raw JSON texts) appended to its list of records (its last list)."""
    end = body.rindex(b"]")
    before = body[:end].rstrip()
    separator = b"" if before.endswith(b"[") else b","
    return before + separator + ",".join(records).encode() + body[end:]


def corrupt(body: bytes) -> bytes:
    """Cut a JSON body off mid-document, as a dropped connection behind a proxy does."""
    return body[: max(1, len(body) // 2)]
