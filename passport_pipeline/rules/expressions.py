"""Attribute mapping expressions (``passport.yaml``, :mod:`passport_pipeline.config.rules`) as SQL.

:func:`to_sql` turns an :class:`Expression` into a DuckDB expression over a raw table's columns;
every value from the config (constants, paths, patterns, formats) becomes a named parameter in
``params``, never text in the SQL. :func:`effective_mapping` is the mapping in effect for an
entity: the sensible default for every attribute (and its app), overridden by what the source
configures.

What the operations mean, on text (a source attribute that is missing gives NULL):

- ``trim`` removes surrounding spaces, tabs and line breaks; ``lower``/``upper`` change case;
- ``concat`` joins its parts, a missing part counting as empty (all empty gives NULL);
- ``coalesce`` takes the first part that is not empty (empty: NULL or only spaces);
- ``regex_replace`` replaces every match of ``pattern``; ``default`` gives ``value`` when empty;
- ``date`` reads the text with the first matching ``format`` and writes YYYY-MM-DD; text that
  matches none is kept as it is, so the format check reports it instead of losing it;
- ``translate`` replaces a code (compared without surrounding blanks) by its value; a code not
  listed is kept as it is, for the same reason.
"""

from __future__ import annotations

from passport_pipeline.config.rules import Expression, expression_kind, mappable
from passport_pipeline.entities import TEXT_LIST
from passport_pipeline.warehouse.sql import ident, param

BLANKS = " \t\r\n\u00a0"
"""What ``trim`` removes, and what an otherwise empty value may hold."""

DEFAULT_MAPPING: dict[str, Expression] = {
    **{name: Expression(trim=Expression(attribute=name))
       for name in ("given_name", "family_name", "middle_name", "preferred_first_name")},
    "email": Expression(lower=Expression(trim=Expression(attribute="email"))),
}
"""Beyond taking each attribute as the source sent it: names trimmed, e-mail trimmed and lower case.
The source clients already bring each app's records to the canonical columns, values as sent."""


def _sms_date(name: str) -> Expression:
    return Expression.model_validate({"date": {"of": name, "format": ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]}})


APP_MAPPING: dict[str, dict[str, dict[str, Expression]]] = {
    "skyward_sms": {
        "students": {"birth_date": _sms_date("birth_date")},
        "demographics": {
            "birth_date": _sms_date("birth_date"),
            "sex": Expression.model_validate(
                {"translate": {"of": "sex", "values": {"M": "male", "F": "female", "X": "other"}}}),
        },
        "terms": {"start_date": _sms_date("start_date"), "end_date": _sms_date("end_date")},
        "enrollments": {"begin_date": _sms_date("begin_date"), "end_date": _sms_date("end_date")},
    },
}
"""What an app sends differently: SMS 2.0's native API writes dates as ``2026-08-24T00:00:00`` and
sex as a one-letter code."""


def effective_mapping(entity: str, configured: dict[str, Expression] | None = None,
                      app: str = "") -> dict[str, Expression]:
    """Every mappable attribute of ``entity`` -> the expression that feeds it: the default, the
    app's own default, then what the source configures."""
    mapping = {name: DEFAULT_MAPPING.get(name, Expression(attribute=name)) for name in mappable(entity)}
    mapping.update(APP_MAPPING.get(app, {}).get(entity, {}))
    mapping.update(configured or {})
    return mapping


def to_sql(expression: Expression, entity: str, params: dict, target_kind: str = "VARCHAR") -> str:
    """``expression`` as SQL over ``entity``'s raw columns, adding its values to ``params``.

    For a list target (``VARCHAR[]``), a text expression becomes a one-element list and a payload
    path holding a JSON array becomes a list.
    """
    if target_kind == TEXT_LIST:
        if expression.operation == "attribute" and expression.attribute.startswith(("payload.", "metadata.")):
            path = param(params, _pointer(expression.attribute))
            kind = f"coalesce(json_type(payload, {path}), 'NULL')"
            return (f"CASE {kind} WHEN 'ARRAY' THEN CAST(json_extract(payload, {path}) AS VARCHAR[])"
                    f" WHEN 'NULL' THEN NULL ELSE [json_extract_string(payload, {path})] END")
        if expression_kind(expression, entity) == TEXT_LIST:
            return ident(expression.attribute)
        text = _non_empty(_text(expression, entity, params), params)
        return f"CASE WHEN ({text}) IS NULL THEN NULL ELSE [({text})] END"
    return _text(expression, entity, params)


def uses_payload(expression: Expression) -> bool:
    """Whether the expression reads the raw payload (so the stage must read that column)."""
    if expression.operation == "attribute":
        return expression.attribute.startswith(("payload.", "metadata."))
    return any(uses_payload(operand) for _, operand in expression.operands)


def _text(expression: Expression, entity: str, params: dict) -> str:
    op, arg = expression.operation, getattr(expression, expression.operation)
    if op == "attribute":
        if arg.startswith(("payload.", "metadata.")):
            return f"json_extract_string(payload, {param(params, _pointer(arg))})"
        return ident(arg)
    if op == "value":
        return f"CAST({param(params, arg)} AS VARCHAR)"
    if op in ("trim", "lower", "upper"):
        inner = _text(arg, entity, params)
        return f"trim({inner}, {param(params, BLANKS)})" if op == "trim" else f"{op}({inner})"
    if op == "concat":
        parts = ", ".join(_text(part, entity, params) for part in arg)
        return f"nullif(concat({parts}), '')"
    if op == "coalesce":
        return "coalesce(" + ", ".join(_non_empty(_text(part, entity, params), params) for part in arg) + ")"
    if op == "regex_replace":
        of = _text(arg.of, entity, params)
        return f"regexp_replace({of}, {param(params, arg.pattern)}, {param(params, arg.replacement)}, 'g')"
    if op == "default":
        return f"coalesce({_non_empty(_text(arg.of, entity, params), params)}, CAST({param(params, arg.value)} AS VARCHAR))"
    if op == "translate":
        of = _text(arg.of, entity, params)
        codes, values = param(params, list(arg.values)), param(params, list(arg.values.values()))
        found = f"list_extract(CAST({values} AS VARCHAR[]), list_position(CAST({codes} AS VARCHAR[]), trim({of}, {param(params, BLANKS)})))"
        return f"coalesce({found}, {of})"
    if op == "date":
        of = _text(arg.of, entity, params)
        formats = param(params, list(arg.format))
        blanks = param(params, BLANKS)
        return (f"coalesce(strftime(CAST(try_strptime(trim({of}, {blanks}), CAST({formats} AS VARCHAR[])) AS DATE),"
                f" '%Y-%m-%d'), {of})")
    raise ValueError(f"unknown operation {op!r}")  # unreachable: the config allows only the above


def _non_empty(sql: str, params: dict) -> str:
    return f"CASE WHEN trim({sql}, {param(params, BLANKS)}) = '' THEN NULL ELSE {sql} END"


def _pointer(attribute: str) -> str:
    """``payload.a.b`` / ``metadata.x`` as a JSON pointer (``/a/b``, ``/metadata/x``), any key safe."""
    head, path = attribute.split(".", 1)
    keys = (["metadata"] if head == "metadata" else []) + path.split(".")
    return "".join("/" + key.replace("~", "~0").replace("/", "~1") for key in keys)
