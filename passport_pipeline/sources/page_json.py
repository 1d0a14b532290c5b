"""A page's JSON body, read record by record when Python cannot read it whole.

Python's JSON parser recurses: a record nested a few thousand levels deep raises
``RecursionError`` and, left alone, took the whole read (and every later sync) down with it.
Raising the recursion limit would only move the crash into the C stack. Instead, when — and
only when — a body fails for depth, it is split without recursion into its top-level parts
(the items of a bare list, or of the wrapper's lists) and each record is parsed on its own: a
record still too deep stays an :class:`UnreadableRecord`, which the landing quarantines, and
the rest of the page reads as usual.
"""

from __future__ import annotations

import json
import re

_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},:]', re.DOTALL)
"""Strings whole (their brackets and commas are text), and the structural characters."""


class UnreadableRecord(str):
    """A record of a page that Python cannot parse (nested too deep): its JSON text as sent."""

    reason = ("nested too deep to read (deeper than the JSON parser goes): the server must send "
              "this record with less nesting")


def read_body(content: bytes) -> tuple[object, bytes]:
    """``(body, content)`` of a response: parsed whole, else record by record (``content`` then
    empty, so no consumer reads the body whole again). Raises ``ValueError`` when it is not JSON."""
    try:
        return json.loads(content), content
    except RecursionError:
        return _record_by_record(content.decode("utf-8")), b""


def _record_by_record(text: str) -> object:
    start, end = _span(text)
    if text[start] == "[":
        return [_record(text[a:b]) for a, b in _parts(text, start, end)]
    if text[start] != "{":
        raise ValueError("a body nested too deep that is neither a list nor an object")
    body = {}
    for a, b in _parts(text, start, end):
        colon = next(m for m in _TOKENS.finditer(text, a, b) if m.group() == ":").end()
        key = json.loads(text[a:colon - 1])
        value_start, value_end = _span(text, colon, b)
        if text[value_start] == "[":
            body[key] = [_record(text[x:y]) for x, y in _parts(text, value_start, value_end)]
        else:
            body[key] = _whole(text[value_start:value_end])
    return body


def _record(text: str) -> object:
    try:
        return json.loads(text)
    except RecursionError:
        return UnreadableRecord(text.strip())


def _whole(text: str) -> object:
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("a part of the body other than its records is nested too deep") from None


def _span(text: str, start: int = 0, end: int | None = None) -> tuple[int, int]:
    """The stripped bounds of ``text[start:end]``."""
    end = len(text) if end is None else end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start == end:
        raise ValueError("an empty JSON value")
    return start, end


def _parts(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The bounds of the items (or ``key: value`` members) of the list or object ``text[start:end]``."""
    closing = {"[": "]", "{": "}"}[text[start]]
    if text[end - 1] != closing:
        raise ValueError("a JSON list or object that is cut off")
    parts, depth, begun = [], 0, start + 1
    for token in _TOKENS.finditer(text, start + 1, end - 1):
        kind = token.group()
        if kind in "[{":
            depth += 1
        elif kind in "]}":
            depth -= 1
        elif kind == "," and depth == 0:
            parts.append(_span(text, begun, token.start()))
            begun = token.end()
    if depth != 0:
        raise ValueError("unbalanced brackets")
    if text[begun:end - 1].strip():
        parts.append(_span(text, begun, end - 1))
    elif parts:
        raise ValueError("a trailing comma")
    return parts
