"""Filter conditions, rules and entity filters compile to DuckDB predicates with values as parameters."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from passport_pipeline.config.rules import Condition, EntityFilter, FilterRule
from passport_pipeline.rules.conditions import condition_sql, filter_sql, rule_sql

TODAY = dt.date(2026, 3, 15)
HOSTILE = "'; DROP TABLE students; --"

ROWS = [
    # sis_id, family_name, grades, birth_date
    ("1", "O'Brien", ["09", " 10 "], "2010-01-31"),
    ("2", "  o'BRIEN\t", ["11"], " 2026-03-14T23:59:59.000Z "),
    ("3", "", [], "2026-03-15"),
    ("4", None, None, None),
    ("5", "100%_Ünïcode", ["KG", None], "2026-03-16"),
    ("6", "100a Ünïcode", ["  "], "not a date"),
    ("7", HOSTILE, [HOSTILE], "2026-02-30"),
    ("8", " \t\n", ["09", "09"], "2030-12-01 08:00:00"),
]


@pytest.fixture(scope="module")
def con():
    con = duckdb.connect()
    con.execute("CREATE TABLE students (sis_id VARCHAR, family_name VARCHAR, grades VARCHAR[], birth_date VARCHAR)")
    con.executemany("INSERT INTO students VALUES (?, ?, ?, ?)", ROWS)
    return con


def kept(con, predicate: str, params: dict) -> list[str]:
    assert HOSTILE not in predicate and "%_" not in predicate, "config values must travel as parameters"
    sql = f"SELECT sis_id, {predicate} FROM students ORDER BY sis_id"
    results = con.execute(sql, params).fetchall()
    assert all(holds is not None for _, holds in results), "a predicate is never NULL"
    return [sis_id for sis_id, holds in results if holds]


def holds(con, attribute: str, operator: str, value=None) -> list[str]:
    params: dict = {}
    condition = Condition(attribute=attribute, operator=operator, value=value)
    return kept(con, condition_sql(condition, "students", params, TODAY), params)


def test_equals_ignores_case_and_surrounding_blanks_on_both_sides(con):
    assert holds(con, "family_name", "equals", " o'brien ") == ["1", "2"]
    assert holds(con, "family_name", "equals", "100%_ünÏcode") == ["5"]
    assert holds(con, "family_name", "equals", HOSTILE) == ["7"]


def test_equals_empty_text_matches_blank_but_never_null(con):
    assert holds(con, "family_name", "equals", "") == ["3", "8"]


def test_not_equals_is_the_opposite_and_holds_for_null(con):
    assert holds(con, "family_name", "not_equals", "O'BRIEN") == ["3", "4", "5", "6", "7", "8"]


def test_contains_takes_percent_and_underscore_literally(con):
    assert holds(con, "family_name", "contains", "0%_Ü") == ["5"]
    assert holds(con, "family_name", "contains", "'bri") == ["1", "2"]
    assert holds(con, "family_name", "contains", "DROP TABLE") == ["7"]


def test_does_not_contain_holds_for_null(con):
    assert holds(con, "family_name", "does_not_contain", "ünï") == ["1", "2", "3", "4", "7", "8"]


def test_in_list_normalizes_every_value(con):
    assert holds(con, "family_name", "in_list", [" O'BRIEN", HOSTILE]) == ["1", "2", "7"]
    assert holds(con, "family_name", "in_list", ["", "nobody"]) == ["3", "8"]


def test_is_empty_text_means_null_or_only_blanks(con):
    assert holds(con, "family_name", "is_empty") == ["3", "4", "8"]
    assert holds(con, "family_name", "is_not_empty") == ["1", "2", "5", "6", "7"]


def test_is_empty_list_means_null_or_no_element_with_a_value(con):
    assert holds(con, "grades", "is_empty") == ["3", "4", "6"], "['  '] holds no value, as data requirements see it"
    assert holds(con, "grades", "is_not_empty") == ["1", "2", "5", "7", "8"]


def test_list_text_comparisons_hold_when_any_element_does(con):
    assert holds(con, "grades", "equals", "10") == ["1"]
    assert holds(con, "grades", "equals", "kg") == ["5"]
    assert holds(con, "grades", "equals", "") == ["6"]
    assert holds(con, "grades", "contains", "0") == ["1", "8"]
    assert holds(con, "grades", "in_list", ["11", HOSTILE]) == ["2", "7"]


def test_list_negations_hold_when_no_element_matches(con):
    assert holds(con, "grades", "not_equals", "09") == ["2", "3", "4", "5", "6", "7"]
    assert holds(con, "grades", "does_not_contain", "1") == ["3", "4", "5", "6", "7", "8"]


def test_dates_read_iso_dates_and_timestamps_and_nothing_else(con):
    assert holds(con, "birth_date", "before", "2026-03-15") == ["1", "2"]
    assert holds(con, "birth_date", "after", " 2026-03-15 ") == ["5", "8"]


def test_past_and_future_are_relative_to_today_which_is_neither(con):
    assert holds(con, "birth_date", "is_past") == ["1", "2"]
    assert holds(con, "birth_date", "is_future") == ["5", "8"]


@pytest.mark.parametrize(("operator", "value", "holding"), [
    ("before", "2026-01-01", ["2025-12-31"]),
    ("after", "2026-01-01", ["2026-01-02"]),
    ("is_past", None, ["2026-03-14T10:00:00Z"]),
    ("is_future", None, ["2026-03-16"]),
])
def test_dates_on_a_list_hold_when_any_element_does(con, operator, value, holding):
    params: dict = {}
    sql = condition_sql(Condition(attribute="grades", operator=operator, value=value), "students", params, TODAY)
    same_day = value or TODAY.isoformat()
    for grades, expected in ((["x", *holding], True), (["x", same_day, HOSTILE, None], False), ([], False)):
        assert con.execute(f"SELECT {sql} FROM (SELECT $grades::VARCHAR[] AS grades)",
                           {**params, "grades": grades}).fetchone() == (expected,)


def test_a_rule_needs_all_its_conditions(con):
    rule = FilterRule(when=[Condition(attribute="family_name", operator="contains", value="brien"),
                            Condition(attribute="grades", operator="equals", value="11")])
    params: dict = {}
    assert kept(con, rule_sql(rule, "students", params, TODAY), params) == ["2"]


def test_an_entity_filter_keeps_what_any_rule_matches(con):
    entity_filter = EntityFilter(rules=[
        FilterRule(name="irish", when=[Condition(attribute="family_name", operator="equals", value="o'brien")]),
        FilterRule(name="kindergarten", when=[Condition(attribute="grades", operator="in_list", value=["KG"])]),
    ])
    params: dict = {}
    assert kept(con, filter_sql(entity_filter, "students", params, TODAY), params) == ["1", "2", "5"]


def test_no_rules_keep_everything(con):
    assert filter_sql(EntityFilter(), "students", {}, TODAY) == "TRUE"
    assert filter_sql(None, "students", {}, TODAY) == "TRUE"


def test_parameters_of_several_conditions_never_collide(con):
    params: dict = {"stage0": "the caller's"}
    first = condition_sql(Condition(attribute="family_name", operator="equals", value="O'Brien"), "students", params, TODAY)
    second = condition_sql(Condition(attribute="grades", operator="in_list", value=["KG"]), "students", params, TODAY)
    assert params["stage0"] == "the caller's"
    params.pop("stage0")
    assert kept(con, f"({first} OR {second})", params) == ["1", "2", "5"]
