"""The oracle's shared part: source records to canonical records, in Python.

A canonical record is a dict with exactly the columns of its entity
(``ENTITIES[name].all_columns``) plus ``payload``, the source record as compact JSON so that
attribute mapping can reach any source field later (``metadata`` included). Values stay as
the source sent them — strings, or lists of strings; nothing trimmed — except that JSON
booleans become ``"true"``/``"false"``, numbers their decimal text, and references (GUIDRefs)
the id they point to.

A structurally broken record (not an object, no id, unreadable) is not an exception: it
becomes a :class:`Quarantined` item with the reason and the raw text, and the page goes on.
:mod:`.oneroster` and :mod:`.sms` hold the per-API mappings.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from json import encoder as _encoder
from dataclasses import dataclass, field

from passport_pipeline.entities import ENTITIES

BLANK: dict[str, dict[str, None]] = {
    name: dict.fromkeys([*entity.all_columns, "payload"]) for name, entity in ENTITIES.items()
}
"""Per entity, a record with every column set to None: copy it, then fill in what the source has."""

_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _unserializable(value: object) -> object:
    raise TypeError(f"{type(value).__name__} is not JSON")


_c_encoder = _encoder.c_make_encoder and _encoder.c_make_encoder(
    None, _unserializable, _encoder.encode_basestring, None, ":", ",", False, False, True)
"""The C encoder ``json.dumps`` builds on every call, built once: payloads cost half as much."""


@dataclass(frozen=True)
class Quarantined:
    """A record that could not be normalized: where it came from, why, and its raw text."""

    endpoint: str
    reason: str
    raw: str


@dataclass
class Normalized:
    """Canonical records of one page, by entity, and the records quarantined from it."""

    rows: dict[str, list[dict]] = field(default_factory=dict)
    quarantined: list[Quarantined] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self.rows.items()}


class Broken(Exception):
    """Raised by a record mapping when the record cannot become a canonical record."""


RecordMapping = Callable[[dict], Iterable[tuple[str, dict]]]
"""One source record -> ``(entity, canonical record)`` pairs."""


def normalize_records(endpoint: str, records: Iterable[object], mapping: RecordMapping) -> Normalized:
    """Apply ``mapping`` to each record, quarantining the ones it cannot read."""
    out = Normalized()
    rows = out.rows
    for record in records:
        if not isinstance(record, dict):
            out.quarantined.append(Quarantined(endpoint, "not a JSON object", raw_text(record)))
            continue
        try:
            produced = list(mapping(record))
        except Broken as exc:
            out.quarantined.append(Quarantined(endpoint, str(exc), raw_text(record)))
            continue
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
            out.quarantined.append(
                Quarantined(endpoint, f"unreadable record ({type(exc).__name__}: {exc})", raw_text(record)))
            continue
        for entity, row in produced:
            rows.setdefault(entity, []).append(row)
    return out


def checked(mapping: RecordMapping, ids: Iterable[str] = (), refs: Iterable[str] = (), names: Iterable[str] = (),
            *, numeric_ids: bool = False) -> RecordMapping:
    """``mapping`` after the type checks: an id that is not text (nor a number, with ``numeric_ids``),
    a reference that is not an object or text or whose ``sourcedId`` is not text, a name that is an
    object or list -- each :class:`Broken`, naming the field and the type found."""
    def check(record: dict) -> Iterable[tuple[str, dict]]:
        found: list[tuple[str, object, tuple[type, ...], str]] = []
        found += [(name, record.get(name), (str, int, float) if numeric_ids else (str,),
                   "text or a number" if numeric_ids else "text") for name in ids]
        for name in refs:
            value = record.get(name)
            found.append((name, value, (str, dict), "a reference"))
            inner = value.get("sourcedId") if isinstance(value, dict) else None
            found.append((f"{name}.sourcedId", inner, (str,), "text"))
        found += [(name, record.get(name), (str, int, float, bool), "text") for name in names]
        for label, value, allowed, wanted in found:
            refused = not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed)
            if value is not None and refused:
                raise Broken(f"{label} is {_a_type(value)}, not {wanted}")
        return mapping(record)
    return check


def _a_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "an object" if isinstance(value, dict) else "an array"


def payload(record: object) -> str:
    """The source record as compact JSON text."""
    return "".join(_c_encoder(record, 0)) if _c_encoder else _compact(record)


def raw_text(record: object) -> str:
    try:
        return _compact(record)
    except (TypeError, ValueError):
        return repr(record)


def required_id(record: dict, key: str) -> str:
    """The record's id under ``key`` as text, or :class:`Broken` when it has none."""
    value = text(record.get(key))
    if value is None or not value.strip():
        raise Broken(f"no {key}")
    return value


def text(value: object) -> str | None:
    """A scalar as the source's text: strings as sent, booleans ``"true"``/``"false"``."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return _compact(value)


def texts(value: object) -> list[str] | None:
    """A list of scalars as a list of text (a lone scalar becomes a one-element list)."""
    if value is None:
        return None
    if isinstance(value, list):
        return [text(item) for item in value if item is not None]
    return [text(value)]


def ref(value: object) -> str | None:
    """The id a reference points to: a GUIDRef's ``sourcedId``, or a bare id."""
    if isinstance(value, dict):
        return text(value.get("sourcedId"))
    return text(value)


def refs(value: object) -> list[str] | None:
    """The ids of a list of references."""
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    return [found for found in map(ref, items) if found is not None]


def unique(values: Iterable[str | None]) -> list[str]:
    """Values in first-seen order, without repeats or Nones."""
    return list(dict.fromkeys(v for v in values if v is not None))
