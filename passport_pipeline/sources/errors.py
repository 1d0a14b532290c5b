"""Why a source request failed, in words a district admin can act on.

Every exception here carries a message that names what was asked (method and endpoint path,
never a query string, a token or a secret), what the server answered (status and its own
description) and what to check. Callers show ``str(error)`` as is: a message is scrubbed of every
secret the process knows as it is made, and a server's error body before it is read
(:mod:`passport_pipeline.redaction`), so a server echoing a request's credentials leaks nothing.

Servers describe errors in several shapes: OneRoster's imsx status body (``imsx_CodeMinor``
spelled with varying capitalization), OAuth's ``{"error", "error_description"}``, ASP.NET's
``{"Message"}`` (Skyward SMS), or an HTML gateway page. :func:`describe_error` reads them all.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from passport_pipeline.redaction import scrub


class SourceError(Exception):
    """A source could not be read; ``str()`` is the admin-readable explanation."""

    def __init__(self, message: str, *, status: int | None = None, endpoint: str | None = None,
                 said: ErrorDescription | None = None) -> None:
        super().__init__(scrub(message))
        self.status = status
        self.endpoint = endpoint
        self.said = said
        """The server's own words (secrets redacted), where a caller words its own message."""


class ConnectionFailed(SourceError):
    """The server could not be reached, or did not answer in time, even after retries."""


class AuthenticationError(SourceError):
    """The credentials were refused: by the token URL, or by the API even with a fresh token."""


class ForbiddenError(SourceError):
    """The credential lacks a scope (or a permission) this endpoint needs."""

    def __init__(self, message: str, *, status: int | None = None, endpoint: str | None = None,
                 scope: str | None = None) -> None:
        super().__init__(message, status=status, endpoint=endpoint)
        self.scope = scope


class NotFoundError(SourceError):
    """The endpoint or the object does not exist on this server."""


class RequestRejected(SourceError):
    """The server refused the request itself (400, 422...): a bad parameter, filter or path."""


class ServerError(SourceError):
    """The server kept failing (429 or 5xx) after every retry."""


class RateLimited(ServerError):
    """A 429 asking to wait longer than the client is willing to (``rate_limit_patience_s``)."""

    def __init__(self, message: str, *, wait_s: float, endpoint: str | None = None,
                 said: ErrorDescription | None = None) -> None:
        super().__init__(message, status=429, endpoint=endpoint, said=said)
        self.wait_s = wait_s
        """What the server's ``Retry-After`` asked, in seconds."""


class BadResponse(SourceError):
    """The server answered 200 with a body we cannot use (cut-off JSON, unexpected shape)."""


class WrongKind(BadResponse):
    """A collection page that is not what the endpoint serves: another collection's wrapper, a
    bare list, or records of another kind. Servers that lack an endpoint have been seen answering
    it with some other collection; taking those rows would land them as the wrong entity.

    ``expected`` is the OneRoster type asked for (``courses``); ``received`` what came instead
    (a wrapper key, ``"a bare list"``, or the type the records look like), when known.
    """

    def __init__(self, message: str, *, endpoint: str, expected: str, received: str | None = None) -> None:
        super().__init__(message, endpoint=endpoint)
        self.expected = expected
        self.received = received


class ShortRead(SourceError):
    """A read ended holding fewer distinct rows than the server's own count: it is incomplete,
    even though every page answered 200. ``rows`` were received; ``total`` is the server's count."""

    def __init__(self, message: str, *, endpoint: str, rows: int, total: int) -> None:
        super().__init__(message, endpoint=endpoint)
        self.rows = rows
        self.total = total


@dataclass(frozen=True)
class ErrorDescription:
    """What an error body says: a machine code (``codeMinor`` / OAuth ``error``) and prose."""

    code: str | None
    text: str | None

    def __str__(self) -> str:
        if self.code and self.text and self.code != self.text:
            return f"{self.code}: {self.text}"
        return self.code or self.text or "no description"


def describe_error(body: bytes | str) -> ErrorDescription:
    """Read an error body in any shape servers use; fall back to a short excerpt of the text.
    The body is scrubbed of secrets first: a server may echo the request's credentials."""
    text = scrub(body.decode("utf-8", "replace") if isinstance(body, bytes) else body)
    try:
        parsed = json.loads(text)
    except ValueError:
        return ErrorDescription(None, _excerpt(text))
    if not isinstance(parsed, dict):
        return ErrorDescription(None, _excerpt(text))
    fields = {key.lower(): value for key, value in parsed.items()}
    if "imsx_codemajor" in fields or "imsx_description" in fields or "imsx_codeminor" in fields:
        return ErrorDescription(_imsx_code_minor(fields.get("imsx_codeminor")),
                                _as_text(fields.get("imsx_description")))
    error = fields.get("error")
    if isinstance(error, dict):
        inner = {key.lower(): value for key, value in error.items()}
        return ErrorDescription(_as_text(inner.get("code")), _as_text(inner.get("message")))
    if error is not None or "error_description" in fields:
        return ErrorDescription(_as_text(error), _as_text(fields.get("error_description")))
    message = fields.get("message") or fields.get("messagedetail")
    if message is not None:
        return ErrorDescription(None, _as_text(message))
    return ErrorDescription(None, _excerpt(text))


def _imsx_code_minor(value: object) -> str | None:
    """The first ``imsx_codeMinorFieldValue`` of an ``imsx_CodeMinor`` block, any capitalization."""
    if not isinstance(value, dict):
        return _as_text(value)
    block = {key.lower(): v for key, v in value.items()}
    entries = block.get("imsx_codeminorfield")
    for entry in entries if isinstance(entries, list) else [entries]:
        if isinstance(entry, dict):
            found = {key.lower(): v for key, v in entry.items()}.get("imsx_codeminorfieldvalue")
            if found:
                return _as_text(found)
    return None


def _as_text(value: object) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _excerpt(text: str, limit: int = 200) -> str | None:
    """A gateway page or plain text, squeezed to one short line (HTML tags dropped)."""
    squeezed = " ".join(re.sub(r"<[^>]*>", " ", text).split())
    if not squeezed:
        return None
    return squeezed if len(squeezed) <= limit else squeezed[: limit - 1] + "…"


_SCOPE = re.compile(r"(https?://\S+?/scope/[\w.-]+)|\bscope[:\s]+['\"]?([\w.:/-]+)", re.IGNORECASE)


def missing_scope(description: ErrorDescription) -> str | None:
    """The scope a 403 says is missing, when the server names it."""
    match = _SCOPE.search(description.text or "")
    if match is None:
        return None
    return (match.group(1) or match.group(2)).rstrip(".'\"")


def shown_url(url: str) -> str:
    """A URL as messages show it: no query string, no user info."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, "", ""))
