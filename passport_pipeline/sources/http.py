"""The one HTTP policy every source client uses: timeouts, retries, token refresh, JSON bodies.

- Every request has a connect and a read timeout.
- 429, 500, 502, 503, 504, dropped connections and timeouts are retried up to ``max_retries``
  times, waiting ``Retry-After`` (seconds or an HTTP date, capped by ``retry_after_max_s``)
  when the server sends one, else exponential backoff with jitter. A client with
  ``rate_limit_patience_s`` set (Test Connection) raises :class:`RateLimited` instead of waiting
  out a longer ``Retry-After``.
- An auth failure — 401, or a 403/500 whose body says the token expired or is invalid — drops
  the token and retries the same request once with a new one; a second failure in a row is an
  :class:`AuthenticationError`. A 403 that is not about the token is a missing scope:
  :class:`ForbiddenError`, naming the scope when the server does.
- A 200 whose body is not JSON (cut off by a proxy) is retried like a transient failure; one
  nested too deep for Python is read record by record (:mod:`.page_json`).
- At most ``max_concurrency`` requests are in flight at once, across threads; each thread
  has its own ``requests.Session``.

``sleep`` and the jitter's ``rng`` are injectable, so tests run without waiting.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import requests

from passport_pipeline.sources.auth import BearerTokens
from passport_pipeline.sources.errors import (
    AuthenticationError,
    BadResponse,
    ConnectionFailed,
    ErrorDescription,
    ForbiddenError,
    NotFoundError,
    RateLimited,
    RequestRejected,
    ServerError,
    SourceError,
    describe_error,
    missing_scope,
    shown_url,
)
from passport_pipeline.sources.page_json import read_body
from passport_pipeline.sources.settings import ClientSettings

Grant = Literal["client_credentials", "password"]

RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
_TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
              requests.exceptions.ContentDecodingError)
_AUTH_WORDS = ("expired", "invalid_token", "invalid token", "unauthorisedrequest",
               "unauthorizedrequest", "access token is invalid")
USER_AGENT = "passport-pipeline (roster sync)"


@dataclass(frozen=True)
class JsonResponse:
    """A successful response: its parsed body, headers (case-insensitive) and latency."""

    url: str
    status: int
    headers: Mapping[str, str]
    body: object
    elapsed_s: float
    content: bytes = b""
    """The body as sent, for a consumer that reads the JSON itself (see :class:`.paging.SentPage`); empty
    when only its records could be read (see :mod:`.page_json`)."""


class HttpClient:
    """Requests to one source under the policy above; share one per source across threads."""

    def __init__(
        self,
        settings: ClientSettings,
        *,
        grant: Grant | None = "client_credentials",
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clock = clock
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._in_flight = threading.BoundedSemaphore(settings.max_concurrency)
        self.requests = 0
        self.retries = 0
        self.tokens: BearerTokens | None = None
        if grant == "client_credentials":
            self.tokens = BearerTokens.client_credentials(self.post_form, settings, clock=clock)
        elif grant == "password":
            self.tokens = BearerTokens.password(self.post_form, settings, clock=clock)

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every thread's session."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    def get_json(self, url: str, params: Mapping[str, object] | None = None) -> JsonResponse:
        """GET ``url`` with a bearer token and return its JSON body, or raise a :class:`SourceError`."""
        started = self._clock()
        attempt = 0
        may_refresh = True
        while True:
            token = self.tokens.token() if self.tokens else None
            headers = {"Accept": "application/json"}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            try:
                response = self._send("GET", url, params=params, headers=headers)
            except _TRANSIENT as exc:
                attempt = self._pause_or_raise(attempt, None, lambda: self._unreachable(url, exc, attempt))
                may_refresh = True
                continue
            status = response.status_code
            if 200 <= status < 300:
                try:
                    body, content = read_body(response.content)
                except ValueError:
                    attempt = self._pause_or_raise(attempt, None, lambda: self._not_json(url, status, attempt))
                    may_refresh = True
                    continue
                return JsonResponse(response.url, status, response.headers, body, self._clock() - started, content)
            said = describe_error(response.content)
            if _is_auth_failure(status, response.content):
                if self.tokens is None or not may_refresh:
                    raise self._unauthorized(url, status, said)
                self.tokens.invalidate(token)
                may_refresh = False
                continue
            if status in RETRIED_STATUSES:
                attempt = self._pause_or_raise(
                    attempt, response, lambda: self._kept_failing(url, status, said, attempt, started))
                may_refresh = True
                continue
            raise self._refused(url, status, said)

    def post_form(self, url: str, form: Mapping[str, str], basic_auth: tuple[str, str]) -> requests.Response:
        """POST a form with HTTP Basic auth (token requests), retrying transient failures.

        Returns any final response, errors included: the caller knows what they mean.
        """
        attempt = 0
        started = self._clock()
        while True:
            try:
                response = self._send("POST", url, data=dict(form), auth=basic_auth,
                                      headers={"Accept": "application/json"})
            except _TRANSIENT as exc:
                attempt = self._pause_or_raise(attempt, None, lambda: self._unreachable(url, exc, attempt))
                continue
            if response.status_code in RETRIED_STATUSES:
                said = describe_error(response.content)
                attempt = self._pause_or_raise(
                    attempt, response,
                    lambda: self._kept_failing(url, response.status_code, said, attempt, started, "POST"))
                continue
            return response

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None or session not in self._sessions:
            session = requests.Session()
            session.verify = self.settings.verify_tls
            session.headers["User-Agent"] = USER_AGENT
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def _send(self, method: str, url: str, **kwargs) -> requests.Response:
        timeout = (self.settings.connect_timeout_s, self.settings.read_timeout_s)
        session = self._session()
        with self._in_flight:
            with self._lock:
                self.requests += 1
            try:
                return session.request(method, url, timeout=timeout, **kwargs)
            except requests.exceptions.SSLError as exc:
                raise ConnectionFailed(
                    f"The TLS connection to {shown_url(url)} failed ({_reason(exc)}). Fix the server's "
                    "certificate, or for a self-hosted server you trust set verify_tls to false.",
                    endpoint=urlsplit(url).path,
                ) from None

    def _pause_or_raise(self, attempt: int, response: requests.Response | None,
                        error: Callable[[], SourceError]) -> int:
        """Sleep before the next attempt, or raise ``error()`` when retries are used up."""
        if attempt >= self.settings.max_retries:
            raise error()
        retry_after = retry_after_seconds(response.headers.get("Retry-After")) if response is not None else None
        patience = self.settings.rate_limit_patience_s
        if retry_after is not None and patience is not None and retry_after > patience and response.status_code == 429:
            raise self._rate_limited(response, retry_after)
        if retry_after is not None:
            delay = min(retry_after, self.settings.retry_after_max_s)
        else:
            ceiling = min(self.settings.backoff_max_s, self.settings.backoff_base_s * 2 ** attempt)
            delay = ceiling / 2 + self._rng.uniform(0, ceiling / 2)
        with self._lock:
            self.retries += 1
        self._sleep(delay)
        return attempt + 1

    def _rate_limited(self, response: requests.Response, wait_s: float) -> RateLimited:
        method, path = response.request.method, urlsplit(response.url).path
        said = describe_error(response.content)
        return RateLimited(f"{method} {path} is rate limited (429 {said}): the server asks to wait {wait_s:.0f} s.",
                           wait_s=wait_s, endpoint=path, said=said)

    def _unreachable(self, url: str, exc: Exception, attempt: int) -> ConnectionFailed:
        if isinstance(exc, requests.ReadTimeout):
            why = (f"no answer within the read timeout of {self.settings.read_timeout_s:g} s; if the "
                   "server is just slow, raise read_timeout_s")
        elif isinstance(exc, requests.ConnectTimeout):
            why = f"no connection within {self.settings.connect_timeout_s:g} s"
        else:
            why = _reason(exc)
        return ConnectionFailed(
            f"Could not reach {shown_url(url)} ({why}) after {attempt + 1} attempts: check "
            "the URL and that the server is reachable from this machine.",
            endpoint=urlsplit(url).path,
        )

    def _not_json(self, url: str, status: int, attempt: int) -> BadResponse:
        return BadResponse(
            f"{shown_url(url)} answered {status} with a body that is not valid JSON, {attempt + 1} times "
            "in a row: the response was cut off or is not an API answer; check the base URL and base "
            "path, and any proxy in between.",
            status=status, endpoint=urlsplit(url).path,
        )

    def _kept_failing(self, url: str, status: int, said: ErrorDescription, attempt: int,
                      started: float, method: str = "GET") -> ServerError:
        return ServerError(
            f"{method} {urlsplit(url).path} kept failing with {status} ({said}) "
            f"after {attempt + 1} attempts over {self._clock() - started:.0f} s: the server is busy or "
            "down; try again later, or raise http.max_retries.",
            status=status, endpoint=urlsplit(url).path,
        )

    def _unauthorized(self, url: str, status: int, said: ErrorDescription) -> AuthenticationError:
        hint = self.settings.credential_hint()
        return AuthenticationError(
            f"GET {urlsplit(url).path} was refused as unauthorized ({status} {said}) "
            f"even with a newly issued token: check {hint}, that the credential is active, and that it "
            "is granted the configured scopes.",
            status=status, endpoint=urlsplit(url).path,
        )

    def _refused(self, url: str, status: int, said: ErrorDescription) -> SourceError:
        path = urlsplit(url).path
        words = str(said)
        if status == 403:
            scope = missing_scope(said)
            what = (f"the credential lacks the scope {scope}: ask the SIS administrator to grant it "
                    "and add it to the source's scopes" if scope else
                    "the credential may not read it: ask the SIS administrator for access")
            return ForbiddenError(f"GET {path} is forbidden (403 {words}): {what}, or turn this entity off.",
                                  status=status, endpoint=path, scope=scope)
        if status == 404:
            return NotFoundError(
                f"GET {path} was not found (404 {words}): check the base URL, base path, version and "
                "endpoint path settings.", status=status, endpoint=path)
        return RequestRejected(
            f"GET {path} was rejected ({status} {words}): the server does not accept a parameter we "
            "sent (filter, sort, limit); check the source's version and endpoint settings.",
            status=status, endpoint=path)


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """A ``Retry-After`` header as seconds to wait: ``"120"`` or an HTTP date; None if absent or bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


def _is_auth_failure(status: int, body: bytes) -> bool:
    """401, or a 403/500 whose body says the token expired or is invalid."""
    if status == 401:
        return True
    if status not in (403, 500):
        return False
    text = body[:2000].decode("utf-8", "replace").lower()
    return any(word in text for word in _AUTH_WORDS)


def _reason(exc: Exception) -> str:
    """The innermost cause of a requests exception, e.g. "Connection refused"."""
    text = str(exc)
    for marker in ("] ", "Errno"):
        if marker in text:
            text = text.rsplit(marker, 1)[-1]
    return text.strip(" ')\"(") or type(exc).__name__
