"""Attribute mapping expressions compile to DuckDB SQL with every config value as a parameter."""

from __future__ import annotations

import json

import duckdb
import pytest

from passport_pipeline.config.rules import Expression
from passport_pipeline.rules.expressions import effective_mapping, to_sql, uses_payload

HOSTILE = "O'Brien\"; DROP TABLE t; -- ü"


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("CREATE TABLE t (id INT, given_name VARCHAR, email VARCHAR, grades VARCHAR[], birth_date VARCHAR,"
                " payload JSON)")
    rows = [
        (1, "  Ann\t", " Ann@Example.COM ", ["09"], "09/30/2012",
         {"a": {"b/c": HOSTILE}, "metadata": {"k": ["1", "2"], "n": "seven"}, "~x": "tilde"}),
        (2, None, "", None, "not a date", {"metadata": {"k": "one"}}),
        (3, "   ", None, [], "2012-02-30", {}),
    ]
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", [(*r[:-1], json.dumps(r[-1])) for r in rows])
    return con


def evaluate(con, spec, kind="VARCHAR", entity="students"):
    params: dict = {}
    sql = to_sql(Expression.model_validate(spec), entity, params, kind)
    assert HOSTILE not in sql and "%m/" not in sql, "config values must travel as parameters"
    return [value for (value,) in con.execute(f"SELECT {sql} FROM t ORDER BY id", params).fetchall()]


def test_attribute_as_sent(con):
    assert evaluate(con, {"attribute": "given_name"}) == ["  Ann\t", None, "   "]


def test_trim_lower_upper(con):
    assert evaluate(con, {"trim": {"attribute": "given_name"}}) == ["Ann", None, ""]
    assert evaluate(con, {"lower": {"trim": {"attribute": "email"}}}) == ["ann@example.com", "", None]
    assert evaluate(con, {"upper": {"attribute": "given_name"}}) == ["  ANN\t", None, "   "]


def test_constant_and_concat(con):
    assert evaluate(con, {"value": HOSTILE}) == [HOSTILE] * 3
    spec = {"concat": [{"trim": {"attribute": "given_name"}}, {"value": "'"}, {"attribute": "payload.a.b/c"}]}
    assert evaluate(con, spec) == ["Ann'" + HOSTILE, "'", "'"]
    assert evaluate(con, {"concat": [{"attribute": "given_name"}, {"attribute": "email"}]})[1] is None


def test_coalesce_skips_empty_values(con):
    spec = {"coalesce": [{"attribute": "email"}, {"attribute": "given_name"}, {"value": "none"}]}
    assert evaluate(con, spec) == [" Ann@Example.COM ", "none", "none"]


def test_regex_replace_and_default(con):
    spec = {"regex_replace": {"of": {"attribute": "email"}, "pattern": "[@.]", "replacement": "'"}}
    assert evaluate(con, spec) == [" Ann'Example'COM ", "", None]
    assert evaluate(con, {"default": {"of": {"attribute": "given_name"}, "value": "?"}}) == ["  Ann\t", "?", "?"]


def test_date_reads_each_format_and_keeps_what_it_cannot_read(con):
    spec = {"date": {"of": {"attribute": "birth_date"}, "format": ["%m/%d/%Y", "%Y-%m-%d"]}}
    assert evaluate(con, spec) == ["2012-09-30", "not a date", "2012-02-30"]


def test_payload_and_metadata_paths(con):
    assert evaluate(con, {"attribute": "metadata.n"}) == ["seven", None, None]
    assert evaluate(con, {"attribute": "payload.~x"}) == ["tilde", None, None]
    assert evaluate(con, {"attribute": "payload.a.b/c"}) == [HOSTILE, None, None]


def test_list_targets(con):
    assert evaluate(con, {"attribute": "grades"}, "VARCHAR[]") == [["09"], None, []]
    assert evaluate(con, {"attribute": "metadata.k"}, "VARCHAR[]") == [["1", "2"], ["one"], None]
    assert evaluate(con, {"trim": {"attribute": "email"}}, "VARCHAR[]") == [["Ann@Example.COM"], None, None]


def test_effective_mapping_defaults_and_overrides():
    mapping = effective_mapping("students")
    assert "sis_id" not in mapping and "school_sis_ids" not in mapping
    assert mapping["grades"].attribute == "grades"
    assert mapping["given_name"].trim.attribute == "given_name"
    assert mapping["email"].lower.trim.attribute == "email"
    override = Expression.model_validate({"attribute": "metadata.mail"})
    assert effective_mapping("students", {"email": override})["email"] is override
    assert uses_payload(override) and not any(uses_payload(e) for e in mapping.values())


def test_translate_replaces_listed_codes_and_keeps_the_others(con):
    spec = {"translate": {"of": {"attribute": "given_name"}, "values": {"Ann": HOSTILE, "": "blank"}}}
    assert evaluate(con, spec) == [HOSTILE, None, "blank"]


def test_each_app_has_its_own_defaults():
    sms = effective_mapping("demographics", app="skyward_sms")
    assert sms["sex"].translate.values == {"M": "male", "F": "female", "X": "other"}
    assert sms["birth_date"].date.format == ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]
    assert effective_mapping("demographics", app="skyward_oneroster")["sex"].attribute == "sex"
    override = Expression.model_validate({"attribute": "sex"})
    assert effective_mapping("demographics", {"sex": override}, app="skyward_sms")["sex"] is override
