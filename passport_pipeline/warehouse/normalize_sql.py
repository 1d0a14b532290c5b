"""Source records to canonical rows in DuckDB SQL: what the OneRoster and SMS mappings share.

Extraction hands DuckDB each page as JSON text (see :mod:`.landing`), so Python touches a
record only to decode the page, never to normalize it. The tests hold an independent Python
oracle of the same rules (``passport_pipeline_tests/oracle``), land every entity both ways and
compare: values as sent, JSON booleans ``"true"``/``"false"``, numbers as Python writes them,
GUIDRefs as their ``sourcedId``, a broken record quarantined with the same reason.

A :class:`SqlMapping` describes one source record type: the ``fields`` read from each record
(DuckDB parses each record once into them), values ``derived`` once per record, the
``checks`` that quarantine it, and the ``rows`` each canonical entity gets from it. A field's
kind also says how a OneRoster CSV file carries it (:class:`Carried`), so the CSV landing
(:mod:`.csv_landing`) builds the same fields from a file's columns and the rest of the mapping
serves API pages and CSV files alike.

Expressions see the record's JSON text as ``record``, its fields as ``f."<name>"``, derived
values by name, and in :class:`Rows` with ``each`` one element as ``item`` (its fields as
``i.<name>``).

Where JSON leaves the meaning open, DuckDB's reading differs from Python's: ``NaN``,
``Infinity`` and numbers too large for a float land as sent (Python writes ``nan``, ``inf``);
a float inside an object or list that lands as text keeps DuckDB's digits (``1e-7`` for
Python's ``1e-07``); of a key repeated in one record DuckDB reads the first (Python the
last); and a contact whose relationships are text but not JSON is quarantined as unreadable
without the position Python's parser names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

TEXT = "VARCHAR"
"""A field read as its text: the strings as sent, ``true``/``false``, numbers as Python writes them."""
RAW = "JSON"
"""A field read as JSON, for references, lists, truthiness and what else needs its type."""
REF = {"sourcedId": TEXT}
"""A field read as a GUIDRef, for :func:`ref_field` (faster than :data:`RAW` when usually sent)."""
REFS = [REF]
"""A field read as a list of GUIDRefs, for :func:`refs_field`."""

WHITESPACE = "".join(c for c in map(chr, range(0x110000)) if c.isspace())
"""What Python's ``str.strip()`` removes."""


@dataclass(frozen=True)
class Joined:
    """Rows of another file of a CSV bundle that belong to the record, as a JSON list of items: the
    rows of ``file`` whose column ``on`` names the record's ``sourcedId``, each as an object of
    ``item``'s fields (carried like the record's), in the order of their own ``sourcedId``."""

    file: str
    on: str
    item: Mapping[str, object]


@dataclass(frozen=True)
class Carried:
    """A field's ``kind``, and how a OneRoster CSV file carries it when not as a column named like it.

    ``csv`` is one of: ``text`` (a column of the field's name, or ``header``), ``ref`` (an id in
    ``<name>SourcedId``), ``refs`` (ids, comma-separated, in ``<singular>SourcedIds``), ``codes``
    (a comma-separated list), ``names`` (a list of names: a comma followed by a space stays in the
    name), ``user_ids`` (``{type:identifier}`` items, comma-separated), or the rows of another file
    (:class:`Joined`). Plain :data:`TEXT`, :data:`RAW`, :data:`REF` and :data:`REFS` fields are
    carried as ``text``, ``text``, ``ref`` and ``refs``; a nested object's fields as
    ``<name>.<field>`` columns (``metadata.skyward.stateId``).
    """

    kind: object
    csv: str | Joined = "text"
    header: str | None = None


@dataclass(frozen=True)
class Rows:
    """How one canonical entity's rows come from a record (columns not named are NULL)."""

    columns: Mapping[str, str]
    when: str = "TRUE"
    each: str | None = None
    """A list expression: one row per element (``item``) instead of one per record."""
    item: Mapping[str, str] = field(default_factory=dict)
    """The fields read from each element (``i.<name>``)."""
    payload: str = "record"


_FOUND = {"a number": "IN ('BIGINT', 'UBIGINT', 'DOUBLE')", "a boolean": "= 'BOOLEAN'",
          "an object": "= 'OBJECT'", "an array": "= 'ARRAY'"}
"""A JSON type in words -> the test of ``json_type``'s answer for it."""


@dataclass(frozen=True)
class TypeChecks:
    """Quarantine checks of the JSON types where an id, a reference or a name belongs, and the one
    derived value they read (``json_type`` of every such field, one parse of the record).

    Read as text, an object, list or number where a name or id belongs turns silently into text
    (``{"first":"Ana"}`` as a given name, ``12345`` as a sourcedId): such a record is quarantined
    naming the field and the type found. ``ids``: an id is text, or also a number when
    ``numeric_ids`` (SMS native ids are numbers); ``refs``: a GUIDRef (an object, or a bare id as
    text) whose ``sourcedId`` is text; ``names``: a name or title is no object or list."""

    ids: Sequence[str] = ()
    refs: Sequence[str] = ()
    names: Sequence[str] = ()
    numeric_ids: bool = False

    def fields(self) -> list[tuple[str, str, list[str]]]:
        """``(label, JSON path, types refused)``, in the order checked."""
        scalars = ["a number", "a boolean", "an object", "an array"]
        id_refused = scalars[1:] if self.numeric_ids else scalars
        found = [(name, f"$.{json.dumps(name)}", id_refused) for name in self.ids]
        for name in self.refs:
            found.append((name, f"$.{json.dumps(name)}", ["a number", "a boolean", "an array"]))
            found.append((f"{name}.sourcedId", f"$.{json.dumps(name)}.sourcedId", scalars))
        return found + [(name, f"$.{json.dumps(name)}", ["an object", "an array"]) for name in self.names]

    @property
    def derived(self) -> dict[str, str]:
        paths = ", ".join(literal(path) for _, path, _ in self.fields())
        return {"json_types": f"json_type(record, [{paths}])"} if paths else {}

    @property
    def checks(self) -> tuple[tuple[str, str], ...]:
        wanted = {name: "text or a number" if self.numeric_ids else "text" for name in self.ids}
        wanted.update(dict.fromkeys(self.refs, "a reference"))
        return tuple((f"json_types[{n}] {_FOUND[refused]}", f"{label} is {refused}, not {wanted.get(label, 'text')}")
                     for n, (label, _, refusals) in enumerate(self.fields(), start=1) for refused in refusals)


@dataclass(frozen=True)
class SqlMapping:
    """One source record type (OneRoster ``users``, SMS ``sections``...) to canonical rows."""

    fields: Mapping[str, object]
    """Record key -> :data:`TEXT`, :data:`RAW`, :data:`REF`, :data:`REFS`, a :class:`Carried` one of
    them, or the fields of a nested object."""
    rows: Mapping[str, Rows]
    checks: Sequence[tuple[str, str]] = ()
    """``(condition, reason)``: the first true one quarantines the record, in the Python order."""
    derived: Mapping[str, str] = field(default_factory=dict)
    """Name -> expression, computed once per record in order (each may use the ones before)."""
    types: TypeChecks = TypeChecks()
    """Where an id, a reference or a name belongs: checked before ``checks`` in a JSON record (a CSV
    row's fields are text by construction)."""


def structure(fields: Mapping[str, object]) -> str:
    """A SQL literal of the ``from_json`` structure of an object of ``fields``."""
    return literal(json.dumps(_shape(fields), separators=(",", ":")))


def _shape(fields: Mapping[str, object]) -> dict:
    return {name: _kind(kind) for name, kind in fields.items()}


def _kind(kind: object) -> object:
    if isinstance(kind, Carried):
        return _kind(kind.kind)
    if isinstance(kind, str):
        return kind
    return [_kind(kind[0])] if isinstance(kind, list) else _shape(kind)


def key(name: str) -> str:
    """A field of the record, as the mapping's ``fields`` read it."""
    return f'f."{name}"'


def literal(value: str) -> str:
    """A SQL string literal of one of this module's constants (never of source data)."""
    return "'" + value.replace("'", "''") + "'"


def text(value: str) -> str:
    """``normalize.text`` of a JSON value."""
    return f"from_json({value}, '\"VARCHAR\"')"


def texts(value: str) -> str:
    """``normalize.texts``: a list's non-null items as text; a lone scalar as a one-item list."""
    return (f"CASE WHEN {value} IS NULL OR {value} = 'null' THEN NULL"
            f" WHEN left({value}, 1) = '[' THEN list_filter(from_json({value}, '[\"VARCHAR\"]'), lambda t: t IS NOT NULL)"
            f" ELSE [{text(value)}] END")


def ref(value: str) -> str:
    """``normalize.ref``: a GUIDRef's ``sourcedId``, else the value's text."""
    return (f"CASE WHEN left({value}, 1) = '{{' THEN from_json({value}, '{{\"sourcedId\":\"VARCHAR\"}}').sourcedId"
            f" ELSE {text(value)} END")


def refs(value: str) -> str:
    """``normalize.refs``: the ids of a list of references (a lone reference: a list of one)."""
    return (f"CASE WHEN {value} IS NULL OR {value} = 'null' THEN NULL"
            f" ELSE list_filter(list_transform({elements(value)}, lambda r: {ref('r')}), lambda r: r IS NOT NULL) END")


def ref_field(name: str) -> str:
    """``normalize.ref`` of a :data:`REF` field: its ``sourcedId``, else read again from the record
    (a ``CASE``, not ``coalesce``, which would read every record again)."""
    found = f"{key(name)}.sourcedId"
    return f"CASE WHEN {found} IS NOT NULL THEN {found} ELSE {ref(field_of('record', name))} END"


def refs_field(name: str) -> str:
    """``normalize.refs`` of a :data:`REFS` field: the ``sourcedId``\\ s of a list of GUIDRefs, else
    (missing, or not only GUIDRefs) the field read again from the record."""
    refs_read = key(name)
    return (f"CASE WHEN {refs_read} IS NOT NULL AND NOT list_contains(list_transform({refs_read}, lambda g: g IS NULL), true)"
            f" THEN list_filter(list_transform({refs_read}, lambda g: g.sourcedId), lambda g: g IS NOT NULL)"
            f" ELSE {refs(field_of('record', name))} END")


def elements(value: str) -> str:
    """A JSON value's elements when it is a list, else the value alone (JSON nulls as SQL NULLs)."""
    return f"CASE WHEN left({value}, 1) = '[' THEN from_json({value}, '[\"JSON\"]') ELSE [{value}] END"


def json_list(value: str) -> str:
    """A JSON list's elements; NULL when the value is not a list."""
    return f"CASE WHEN left({value}, 1) = '[' THEN from_json({value}, '[\"JSON\"]') END"


def unique(values: str) -> str:
    """``normalize.unique``: a list in first-seen order without repeats or NULLs."""
    return f"list_filter({values}, lambda u, n: u IS NOT NULL AND list_position({values}, u) = n)"


def truthy(value: str) -> str:
    """Whether a JSON value is true to Python (not missing, null, false, zero, or empty)."""
    return (f"coalesce({value} NOT IN ('null', 'false', '\"\"', '[]', '{{}}', '0', '-0', '0.0', '-0.0'), false)")


_SPACE = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in WHITESPACE) + "]"
"""A regular expression of one whitespace character (regexps are faster than ``trim`` with a set)."""


def stripped(value: str) -> str:
    """``str.strip()`` of a text."""
    return f"regexp_replace({value}, {literal(f'^{_SPACE}+|{_SPACE}+$')}, '', 'g')"


def blank(value: str) -> str:
    """Whether a text is missing or only whitespace (``required_id``'s test)."""
    return f"coalesce(regexp_full_match({value}, {literal(_SPACE + '*')}), true)"


def is_object(value: str) -> str:
    """Whether a JSON value is an object."""
    return f"coalesce(left({value}, 1) = '{{', false)"


def field_of(value: str, name: str) -> str:
    """The JSON of ``value``'s key ``name`` (SQL NULL when missing)."""
    return f"json_extract({value}, {literal('$.' + json.dumps(name))})"


def either(first: str, second: str) -> str:
    """Python's ``first or second`` of two JSON values."""
    return f"CASE WHEN {truthy(first)} THEN {first} ELSE {second} END"
