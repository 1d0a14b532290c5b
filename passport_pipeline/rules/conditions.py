"""Filter rules (``passport.yaml`` ``filters``, :mod:`passport_pipeline.config.rules`) as SQL predicates.

:func:`filter_sql` turns an entity's rules into one DuckDB predicate over the columns of its
stage table: a record is kept if any rule matches, a rule matching when all its conditions
hold. Every value from the config becomes a named parameter in ``params``, never text in the
SQL, and every predicate is TRUE or FALSE, never NULL, so it can be negated and combined safely.

What a condition means:

- text comparisons (``equals``, ``not_equals``, ``contains``, ``does_not_contain``, ``in_list``)
  ignore case and surrounding blanks on both sides; ``contains`` takes ``%`` and ``_`` literally;
- ``is_empty``: NULL, blank text, or a list with no non-blank element (as data requirements
  see a missing value); ``is_not_empty`` the opposite;
- ``before``/``after`` a date, ``is_past``/``is_future`` relative to the day of the sync: the
  attribute is read as an ISO date or timestamp; a value that is no date satisfies none of them;
- on a list attribute a condition holds when any element satisfies it, except ``not_equals`` and
  ``does_not_contain``, which hold when no element does;
- NULL never equals or contains anything, so ``not_equals`` and ``does_not_contain`` hold for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from passport_pipeline.config.rules import Condition, EntityFilter, FilterRule
from passport_pipeline.entities import ENTITIES, TEXT_LIST
from passport_pipeline.rules.expressions import BLANKS
from passport_pipeline.warehouse.sql import ident, param

NEGATIONS = {"not_equals": "equals", "does_not_contain": "contains", "is_not_empty": "is_empty"}
"""Operators that hold exactly when another one does not."""


def filter_sql(entity_filter: EntityFilter | None, entity: str, params: dict, today: dt.date) -> str:
    """Whether a record of ``entity`` is kept by its filter: any rule matches (no rules: TRUE)."""
    rules = entity_filter.rules if entity_filter else []
    if not rules:
        return "TRUE"
    return "(" + " OR ".join(rule_sql(rule, entity, params, today) for rule in rules) + ")"


def rule_sql(rule: FilterRule, entity: str, params: dict, today: dt.date) -> str:
    """Whether a record matches ``rule``: all its conditions hold."""
    return "(" + " AND ".join(condition_sql(condition, entity, params, today) for condition in rule.when) + ")"


def condition_sql(condition: Condition, entity: str, params: dict, today: dt.date) -> str:
    """Whether ``condition`` holds for a record of ``entity`` (TRUE or FALSE, never NULL)."""
    column = ident(condition.attribute)
    is_list = ENTITIES[entity].all_columns[condition.attribute] == TEXT_LIST
    operator = NEGATIONS.get(condition.operator, condition.operator)
    if operator == "is_empty":
        blanks = param(params, BLANKS)
        empty = (f"len(list_filter({column}, lambda element: trim(element, {blanks}) <> '')) = 0" if is_list
                 else f"trim({column}, {blanks}) = ''")
        holds = f"({column} IS NULL OR {empty})"
    else:
        test = _value_test(operator, condition.value, params, today)
        if is_list:
            holds = f"coalesce(list_bool_or(list_transform({column}, lambda element: {test('element')})), false)"
        else:
            holds = f"coalesce({test(column)}, false)"
    return f"(NOT {holds})" if condition.operator in NEGATIONS else holds


def _value_test(operator: str, value, params: dict, today: dt.date) -> Callable[[str], str]:
    """How ``operator`` tests one text value (NULL when it cannot tell), given the SQL of that value."""
    blanks = param(params, BLANKS)

    def text(sql: str) -> str:
        return f"lower(trim({sql}, {blanks}))"

    if operator == "equals":
        wanted = text(param(params, value))
        return lambda sql: f"{text(sql)} = {wanted}"
    if operator == "contains":
        wanted = text(param(params, value))
        return lambda sql: f"contains({text(sql)}, {wanted})"
    if operator == "in_list":
        wanted = f"list_transform({param(params, list(value))}, lambda wanted: {text('wanted')})"
        return lambda sql: f"list_contains({wanted}, {text(sql)})"
    day = today if operator in ("is_past", "is_future") else dt.date.fromisoformat(value.strip())
    comparison = "<" if operator in ("before", "is_past") else ">"
    reference = param(params, day)
    return lambda sql: f"try_cast(trim({sql}, {blanks}) AS DATE) {comparison} {reference}"
