"""No secret leaves the process: each is registered where it is learned, and every exit scrubs it.

A secret travels in more shapes than the one it was read in: an HTTP Basic header carries base64
of ``client_id:secret``, a form or a URL carries it percent-encoded, a JSON or HTML body escaped.
A server that echoes a request in its error (some gateways do) hands any of these back, and from
there it would reach a message, the warehouse, Dagster's logs or the terminal. So:

- :func:`remember` registers a secret — a client secret with its client id, every token issued,
  anything read from a credential variable — once, where the process learns it;
- :func:`scrub` replaces every registered secret, in every shape above, by ``***``.

The exits call :func:`scrub`: source errors are scrubbed as they are made (and a server's error
body before it is read), the warehouse scrubs what it stores of them, the Dagster steps' logs and
events pass :mod:`passport_pipeline.defs.scrubbed`, and the CLI writes through
:func:`scrubbed_stdio`. A secret once learned is scrubbed until the process ends.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import re
import sys
import threading
from collections.abc import Iterator
from typing import TextIO
from urllib.parse import quote, quote_plus

MASK = "***"
SHORTEST = 4
"""Shorter values are not secrets worth the name, and scrubbing them would maul ordinary text."""
SHORTEST_PARTIAL = 8
"""A base64 run found inside a longer blob is scrubbed only from this length on (see :func:`encodings`)."""

_PERCENT = re.compile("%[0-9A-F]{2}")
_lock = threading.Lock()
_forms: set[str] = set()
_pattern: re.Pattern[str] | None = None


def remember(secret: str | None, *, client_id: str | None = None) -> None:
    """Register ``secret`` (with the ``client_id`` it is sent with in HTTP Basic, if any) for
    :func:`scrub`. Call it where the secret is learned; registering again changes nothing."""
    global _pattern
    if not secret or len(secret) < SHORTEST:
        return
    shapes = encodings(secret, client_id)
    with _lock:
        if shapes <= _forms:
            return
        _forms.update(shapes)
        ordered = sorted(_forms, key=len, reverse=True)  # the longest shape wins where shapes overlap
        _pattern = re.compile("|".join(map(re.escape, ordered)))


def scrub(text: str) -> str:
    """``text`` with every registered secret, in every shape it could travel in, as ``***``."""
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(MASK, text)


def encodings(secret: str, client_id: str | None = None) -> set[str]:
    """The shapes ``secret`` can travel in: as is; percent-encoded (URL path and query, forms; hex
    digits in either case); JSON-escaped (once, or twice for JSON quoted in JSON) and HTML-escaped;
    base64 of ``client_id:secret`` as HTTP Basic sends it (standard and URL-safe alphabets, padded
    or not); and the run of base64 characters that only the secret's bytes determine, at each of
    the three alignments, so that it is found inside any base64 blob (another id, a whole form)."""
    escaped = json.dumps(secret)[1:-1]
    quoted = {quote(secret, safe=""), quote(secret), quote_plus(secret)}
    shapes = {secret, *quoted, *(_PERCENT.sub(lambda digits: digits[0].lower(), q) for q in quoted), escaped,
              json.dumps(escaped)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], html.escape(secret),
              html.escape(secret, quote=False)}
    for charset in _charsets(secret):  # HTTP Basic is UTF-8 or, as requests sends it, Latin-1
        raw = secret.encode(charset)
        if client_id is not None:
            basic = f"{client_id}:".encode(charset, "replace") + raw
            for encoded in (base64.b64encode(basic).decode(), base64.urlsafe_b64encode(basic).decode()):
                shapes |= {encoded, encoded.rstrip("=")}
        for offset in range(3):
            start, end = -(-8 * offset // 6), 8 * (offset + len(raw)) // 6
            for encode in (base64.b64encode, base64.urlsafe_b64encode):
                run = encode(bytes(offset) + raw).decode()[start:end]
                if len(run) >= SHORTEST_PARTIAL:
                    shapes.add(run)
    return {shape for shape in shapes if len(shape) >= SHORTEST}


def _charsets(secret: str) -> list[str]:
    try:
        secret.encode("latin-1")
    except UnicodeEncodeError:
        return ["utf-8"]
    return ["utf-8", "latin-1"]


class ScrubbedStream:
    """A text stream that writes ``stream`` scrubbed, a line at a time (a secret is never split
    between two writes of one line); everything else is ``stream``'s."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            lines = (self._pending + text).split("\n")
            self._pending = lines.pop()
            if lines:
                self.stream.write(scrub("\n".join(lines) + "\n"))
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self.stream.write(scrub(self._pending))
                self._pending = ""
        self.stream.flush()

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


@contextlib.contextmanager
def scrubbed_stdio() -> Iterator[None]:
    """``sys.stdout`` and ``sys.stderr`` scrubbed while inside (usable as a decorator): what a command
    prints, logs or reports in a traceback shows no secret."""
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = ScrubbedStream(out), ScrubbedStream(err)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        sys.stdout, sys.stderr = out, err
