"""OneRoster's ``filter`` parameter, turned into SQL over the district store.

``filter=<field><op>'<value>'[ AND|OR <clause>]``: the seven operators of the spec, at most
two clauses joined by upper-case ``AND`` or ``OR``. Values become query parameters, never SQL
text. How each kind of field compares is a choice the spec leaves open; :mod:`.oneroster`
lists those choices.
"""

from __future__ import annotations

import datetime as dt
import re

from passport_pipeline.simulator.oneroster_fields import Entity, Field


class FilterError(ValueError):
    """A filter the server refuses (400 ``invalid_filter_field``); the message says why."""


_FIELD_OP = r"([A-Za-z][\w.]*)\s*(!=|>=|<=|=|>|<|~)\s*'"
_CLAUSE = rf"\s*{_FIELD_OP}(.*?)'"
_FILTER = re.compile(rf"{_CLAUSE}(?:\s+(AND|OR)\s+{_CLAUSE})?\s*", re.S)
_JOINED_CLAUSE = re.compile(rf"'\s+\w+\s+{_FIELD_OP}")  # a value hiding "' XOR name='..." or a 3rd clause
_OPERATORS = {
    "text": {"=", "!=", ">", ">=", "<", "<=", "~"},
    "date": {"=", "!=", ">", ">=", "<", "<="},
    "timestamp": {"=", "!=", ">", ">=", "<", "<="},
    "boolean": {"=", "!="},
    "list": {"=", "!=", "~"},
}


def filter_sql(entity: Entity, text: str | None) -> tuple[list[str], dict[str, object]]:
    """The WHERE conditions (none or one) and their parameters for a ``filter`` value."""
    if text is None:
        return [], {}
    match = _FILTER.fullmatch(text)
    if match is None:
        raise FilterError(f"malformed filter {text!r}: use field<op>'value'")
    first, joiner, second = match.groups()[0:3], match.group(4), match.groups()[4:7]
    clauses = [first] if joiner is None else [first, second]
    if any(_JOINED_CLAUSE.search(value) for _, _, value in clauses):
        raise FilterError(f"malformed filter {text!r}: join at most two clauses with AND or OR")
    sql, params = [], {}
    for i, (name, op, value) in enumerate(clauses):
        found = entity.filter_field(name)
        if found is None:
            raise FilterError(f"cannot filter by unknown field {name!r}")
        if op not in _OPERATORS[found.kind]:
            raise FilterError(f"operator {op} does not apply to {name}")
        params[f"f{i}"] = _filter_value(found, name, value)
        sql.append(_comparison(found, op, f"$f{i}"))
    return [f"({f' {joiner} '.join(sql)})"], params


def _filter_value(found: Field, name: str, value: str) -> object:
    try:
        if found.kind == "date":
            return dt.date.fromisoformat(value)
        if found.kind == "timestamp":
            moment = dt.datetime.fromisoformat(value)
            return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment
    except ValueError:
        raise FilterError(f"{name} needs a {found.kind} value, got {value!r}") from None
    if found.kind == "boolean":
        if value not in ("true", "false"):
            raise FilterError(f"{name} needs 'true' or 'false', got {value!r}")
        return value == "true"
    return value


def _comparison(found: Field, op: str, param: str) -> str:
    key = found.key
    if found.kind == "list":
        return {
            "=": f"list_contains({key}, {param})",
            "!=": f"NOT coalesce(list_contains({key}, {param}), false)",
            "~": f"len(list_filter({key}, lambda v: contains(lower(v), lower({param})))) > 0",
        }[op]
    if op == "~":
        return f"contains(lower({key}), lower({param}))"
    if op == "!=":
        return f"{key} IS DISTINCT FROM {param}"
    return f"{key} {op} {param}"
