"""The sync rules of a source, as written in ``passport.yaml`` (DESIGN.md §3).

Three sections beside ``advanced`` in each source, each keyed by entity:

- ``attributes``: attribute mapping. A Passport attribute is fed by an :class:`Expression`: a
  source attribute (a canonical column, ``payload.<path>`` or ``metadata.<path>``), a constant
  (``{value: ...}``), or an operation on expressions (``trim``, ``lower``, ``upper``,
  ``concat``, ``coalesce``, ``regex_replace``, ``default``, ``date``, ``translate``).
- ``filters``: :class:`EntityFilter`, include-only rules (a record is kept if any rule matches;
  a rule is an AND of :class:`Condition`), and whether the decision carries to linked records.
- ``requirements``: per attribute ``include`` | ``report_if_missing`` | ``skip_if_missing`` |
  ``mask``.

The checks that need the entity (which attributes exist, which are lists, which cannot be
remapped) are :func:`rules_problems`, run by the source; :mod:`passport_pipeline.rules` turns
the rules into SQL.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal, Optional

import duckdb
from pydantic import BeforeValidator, Field, field_validator

from passport_pipeline.config.errors import Loc, one_of, problem, shown
from passport_pipeline.config.settings import Settings
from passport_pipeline.entities import ENTITIES, TEXT_LIST, links

PAYLOAD_PREFIXES = ("payload.", "metadata.")
"""Source attributes outside the canonical columns: a path into the raw payload, or its metadata."""

OPERATIONS = ("value", "trim", "lower", "upper", "concat", "coalesce", "regex_replace", "default", "date", "translate")


def _attribute_shorthand(value: Any) -> Any:
    """``email`` in the file means ``{attribute: email}``."""
    return {"attribute": value} if isinstance(value, str | int | float) and not isinstance(value, bool) else value


class RegexReplace(Settings):
    """``regex_replace: {of: phone, pattern: "[^0-9]", replacement: ""}``."""

    of: Expr
    pattern: str
    replacement: str = ""

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            duckdb.execute("SELECT regexp_replace('', ?, '')", [value])
        except duckdb.Error as error:
            reason = str(error).splitlines()[-1].strip()
            raise problem(f"{shown(value)} is not a valid regular expression ({reason})") from None
        return value


class Default(Settings):
    """``default: {of: nickname, value: "none"}``: the value when the attribute is empty."""

    of: Expr
    value: str


class DateParse(Settings):
    """``date: {of: dob, format: "%m/%d/%Y"}``: a date read with one of the formats, as ISO text."""

    of: Expr
    format: list[str] = Field(min_length=1)

    @field_validator("format", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("format")
    @classmethod
    def _has_codes(cls, formats: list[str]) -> list[str]:
        for text in formats:
            if "%" not in text:
                raise problem(f"{shown(text)} has no % codes: write the layout, e.g. '%m/%d/%Y' for 09/30/2012")
        return formats


class Translate(Settings):
    """``translate: {of: sex, values: {M: male, F: female}}``: source codes to Passport values;
    a value not listed is kept as it is (so the format check can report it)."""

    of: Expr
    values: dict[str, str] = Field(min_length=1)


class Expression(Settings):
    """One way to compute a Passport attribute: exactly one of the keys below.

    ``attribute`` names a source attribute; ``value`` is a constant; the others operate on
    expressions: ``trim``/``lower``/``upper`` (one), ``concat``/``coalesce`` (a list; coalesce
    takes the first non-empty), ``regex_replace``, ``default``, ``date`` and ``translate``
    (sections above).
    """

    attribute: Optional[str] = None
    value: Optional[str] = None
    trim: Optional[Expr] = None
    lower: Optional[Expr] = None
    upper: Optional[Expr] = None
    concat: Optional[list[Expr]] = Field(None, min_length=1)
    coalesce: Optional[list[Expr]] = Field(None, min_length=2)
    regex_replace: Optional[RegexReplace] = None
    default: Optional[Default] = None
    date: Optional[DateParse] = None
    translate: Optional[Translate] = None

    def _rule_problems(self):
        given = [name for name in ("attribute", *OPERATIONS) if getattr(self, name) is not None]
        if len(given) != 1:
            told = "none" if not given else ", ".join(given)
            return [((), f"give exactly one of attribute, {', '.join(OPERATIONS)} (given: {told})", None)]
        return []

    @property
    def operation(self) -> str:
        """The one key given."""
        return next(name for name in ("attribute", *OPERATIONS) if getattr(self, name) is not None)

    @property
    def operands(self) -> list[tuple[Loc, Expression]]:
        """The nested expressions, with their key path below this one."""
        op, arg = self.operation, getattr(self, self.operation)
        if op in ("trim", "lower", "upper"):
            return [((op,), arg)]
        if op in ("concat", "coalesce"):
            return [((op, i), e) for i, e in enumerate(arg)]
        if op in ("regex_replace", "default", "date", "translate"):
            return [((op, "of"), arg.of)]
        return []


Expr = Annotated[Expression, BeforeValidator(_attribute_shorthand)]
RegexReplace.model_rebuild()
Default.model_rebuild()
DateParse.model_rebuild()
Translate.model_rebuild()
Expression.model_rebuild()


Operator = Literal[
    "equals", "not_equals", "contains", "does_not_contain", "is_empty", "is_not_empty",
    "before", "after", "is_past", "is_future", "in_list",
]
NO_VALUE = frozenset({"is_empty", "is_not_empty", "is_past", "is_future"})
DATE_VALUE = frozenset({"before", "after"})


class Condition(Settings):
    """``{attribute: grades, operator: in_list, value: ["09", "10"]}``: one test of a record.

    Text comparisons ignore case and surrounding spaces; on a list attribute (grades, schools)
    a condition holds when any element satisfies it (``not_equals`` and ``does_not_contain``:
    when none does). ``before``/``after`` take a date (YYYY-MM-DD); ``is_past``/``is_future``
    compare with the day of the sync.
    """

    attribute: str
    operator: Operator
    value: Optional[str | list[str]] = None

    def _rule_problems(self):
        op, value = self.operator, self.value
        if op in NO_VALUE:
            return [] if value is None else [(("value",), f"'{op}' takes no value: remove it", value)]
        if value is None:
            example = '["09", "10"]' if op == "in_list" else "2026-09-01" if op in DATE_VALUE else '"active"'
            return [(("value",), f"missing: '{op}' needs a value, e.g. value: {example}", None)]
        if op == "in_list":
            if not isinstance(value, list) or not value:
                return [(("value",), f"{shown(value)}: 'in_list' needs a list, e.g. [\"09\", \"10\"]", value)]
            return []
        if isinstance(value, list):
            return [(("value",), f"'{op}' compares with one value, not a list (use in_list for several)", value)]
        if op in DATE_VALUE:
            try:
                dt.date.fromisoformat(value.strip())
            except ValueError:
                return [(("value",), f"{shown(value)} is not a date: write it as YYYY-MM-DD", value)]
        return []


class FilterRule(Settings):
    """A named AND of conditions; a record matching every condition is kept."""

    name: str = ""
    when: list[Condition] = Field(min_length=1)


class EntityFilter(Settings):
    """Include-only filter of one entity: kept if any rule matches (no rules: all kept)."""

    rules: list[FilterRule] = Field(default_factory=list)
    include_linked: bool = True
    """Carry the decision to linked records: a dropped student drops its enrollments and contact
    links, a dropped class its enrollments; a kept class keeps its enrollments."""


Requirement = Literal["include", "report_if_missing", "skip_if_missing", "mask"]


def mappable(entity: str) -> dict[str, str]:
    """Attributes attribute mapping may feed: every column but ids and references."""
    return {c: kind for c, kind in ENTITIES[entity].all_columns.items() if c != "sis_id" and c not in links(entity)}


def expression_kind(expression: Expression, entity: str) -> str:
    """``TEXT_LIST`` when the expression yields a list (a list column as is), else text."""
    if expression.operation == "attribute" and ENTITIES[entity].all_columns.get(expression.attribute) == TEXT_LIST:
        return TEXT_LIST
    return "VARCHAR"


def rules_problems(attributes: Mapping, filters: Mapping, requirements: Mapping) -> list[tuple[Loc, str, Any]]:
    """What is wrong in a source's rules, as ``(key path, message, value)`` from the source."""
    found: list[tuple[Loc, str, Any]] = []
    for section, given in (("attributes", attributes), ("filters", filters), ("requirements", requirements)):
        for entity in given:
            if entity not in ENTITIES:
                found.append(((section, entity), f"unknown entity {shown(entity)}: {one_of(list(ENTITIES), entity)}", entity))
    for entity, targets in attributes.items():
        if entity in ENTITIES:
            found += [(("attributes", entity, *loc), why, value) for loc, why, value in _mapping_problems(entity, targets)]
    for entity, entity_filter in filters.items():
        if entity in ENTITIES:
            for r, rule in enumerate(entity_filter.rules):
                for c, condition in enumerate(rule.when):
                    why = _attribute_problem(condition.attribute, entity, canonical_only=True)
                    if why:
                        found.append((("filters", entity, "rules", r, "when", c, "attribute"), why, condition.attribute))
    for entity, attrs in requirements.items():
        if entity in ENTITIES:
            for attribute, requirement in attrs.items():
                why = _attribute_problem(attribute, entity, canonical_only=True)
                if not why and requirement == "mask" and attribute not in mappable(entity):
                    why = f"'{attribute}' is how {entity} records are identified and linked: it cannot be masked"
                if why:
                    found.append((("requirements", entity, attribute), why, attribute))
    return found


def source_attributes(attributes: Mapping[str, Mapping[str, Expression]]) -> Iterator[tuple[Loc, str, str]]:
    """Every source attribute the attribute mapping reads: ``(key path, entity, attribute)``."""
    for entity, targets in attributes.items():
        for target, expression in targets.items():
            yield from ((("attributes", entity, target, *loc), entity, name) for loc, name in _read(expression))


def _read(expression: Expression) -> Iterator[tuple[Loc, str]]:
    if expression.operation == "attribute":
        yield (), expression.attribute
    for loc, operand in expression.operands:
        yield from (((*loc, *inner), name) for inner, name in _read(operand))


def _mapping_problems(entity: str, targets: Mapping[str, Expression]) -> Iterator[tuple[Loc, str, Any]]:
    allowed = mappable(entity)
    for target, expression in targets.items():
        if target not in allowed:
            if target in ENTITIES[entity].all_columns:
                why = f"'{target}' is how {entity} records are identified and linked: it cannot be remapped"
            else:
                why = f"unknown {entity} attribute {shown(target)}: {one_of(list(allowed), target)}"
            yield (target,), why, target
            continue
        yield from (((target, *loc), why, value) for loc, why, value in _expression_problems(expression, entity))
        if expression_kind(expression, entity) == TEXT_LIST and allowed[target] != TEXT_LIST:
            yield (target,), f"'{expression.attribute}' is a list: '{target}' takes one value", expression.attribute


def _expression_problems(expression: Expression, entity: str) -> Iterator[tuple[Loc, str, Any]]:
    if expression.operation == "attribute":
        why = _attribute_problem(expression.attribute, entity, canonical_only=False)
        if why:
            yield (), why, expression.attribute
        return
    for loc, operand in expression.operands:
        yield from (((*loc, *inner), why, value) for inner, why, value in _expression_problems(operand, entity))
        if expression_kind(operand, entity) == TEXT_LIST:
            why = f"'{operand.attribute}' is a list: '{expression.operation}' works on one value"
            yield loc, why, operand.attribute


def _attribute_problem(name: str, entity: str, canonical_only: bool) -> str | None:
    columns = list(ENTITIES[entity].all_columns)
    if name in columns:
        return None
    if not canonical_only and name.startswith(PAYLOAD_PREFIXES):
        path = name.split(".", 1)[1]
        return None if re.fullmatch(r"[^.\s]+(\.[^.\s]+)*", path) else f"{shown(name)} is not a path: write payload.a.b"
    where = "" if canonical_only else " (or payload.<path>, metadata.<path>)"
    return f"unknown {entity} attribute {shown(name)}: {one_of(columns, name)}{where}"
