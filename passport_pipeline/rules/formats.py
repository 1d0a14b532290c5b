"""Format checks: what a well-formed value of each canonical attribute looks like, and where not.

The checks are pandera models of the canonical entities (one :class:`pandera.DataFrameModel` per
entity, every column nullable text), so they read as the specification of the roster's formats:
e-mail shape, ISO dates that exist, CEDS grade codes, years and the OneRoster
enumerations. Missing values (NULL or blank) are not format errors: data requirements handle them.

Entity tables never move into pandas. :func:`format_findings` asks DuckDB for the distinct trimmed
values of each checked column (each element of a list column), validates them in chunks of
:data:`VALUES_PER_CHUNK` with the model's column schema, keeps the failing (attribute, value,
problem) in a temporary table, and returns the queries that join them back to the records: one
finding per record and attribute. :func:`date_order_findings` is the one check across columns (an
end before its start), plain SQL.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera import extensions
from pandera.config import ValidationDepth, config_context
from pandera.typing import Series

from passport_pipeline.entities import ENTITIES, TEXT_LIST
from passport_pipeline.rules.expressions import BLANKS
from passport_pipeline.rules.issues import ERROR
from passport_pipeline.warehouse.sql import ident

VALUES_PER_CHUNK = 100_000
"""Distinct values validated at once: the memory the format checks need, whatever the district."""

SHOWN_CHARS = 100
"""A value shown in an issue message is cut to this many characters."""

STATUSES = ["active", "tobedeleted"]
BOOLEANS = ["true", "false"]
GRADES = ["IT", "PR", "PK", "TK", "KG", *(f"{n:02d}" for n in range(1, 14)), "PS", "UG", "Other"]
"""CEDS grade levels, as OneRoster uses them (13 is CEDS's grade 13; kindergarten is KG)."""
ORG_TYPES = ["district", "school", "department", "local", "state", "national"]
TERM_TYPES = ["schoolYear", "semester", "term", "gradingPeriod"]
CLASS_TYPES = ["homeroom", "scheduled"]
STAFF_ROLES = ["teacher", "administrator", "aide", "counselor", "principal", "proctor",
               "siteAdministrator", "districtAdministrator", "systemAdministrator"]
"""OneRoster 1.1 and 1.2 roles of staff members."""
CONTACT_ROLES = ["parent", "guardian", "relative"]
ENROLLMENT_ROLES = ["student", "teacher", "administrator", "aide", "proctor"]
SEXES = ["male", "female", "other", "unspecified"]

_UTF8 = ("\u00a1-\u167f\u1681-\u1fff\u200b-\u2027\u202a-\u202e\u2030-\u205e\u2060-\u2fff"
         "\u3001-\ud7ff\ue000-\ufefe\uff00-\U0010ffff")
"""Ranges of a character class: the characters beyond ASCII (RFC 6531's UTF8-non-ascii), but not
control characters or spaces (no-break, ideographic...), which are no part of an address. The
string holds the characters themselves, not escapes, so Python's and DuckDB's (RE2) regular
expressions read it alike."""
_LABEL = rf"[A-Za-z0-9{_UTF8}](?:[A-Za-z0-9{_UTF8}-]{{0,61}}[A-Za-z0-9{_UTF8}])?"
EMAIL = rf"[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~{_UTF8}-]+@{_LABEL}(?:\.{_LABEL})+"
"""An e-mail address as web forms accept it (HTML's rule), with a dot in the domain, and
internationalized (RFC 6531): UTF-8 in the local part (``andrés.allen@example.org``) and in the
domain's labels (``用户@例子.广告``)."""
YEAR = r"[0-9]{4}"
_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"


@extensions.register_check_method(statistics=["allowed"])
def one_of(values: pd.Series, *, allowed: list[str]) -> pd.Series:
    """The value is one of ``allowed`` (exactly: case counts)."""
    return values.isin(allowed)


@extensions.register_check_method(statistics=["pattern", "meaning"])
def matches(values: pd.Series, *, pattern: str, meaning: str) -> pd.Series:
    """The whole value matches the regular expression ``pattern`` (``meaning`` says it in words)."""
    return _full_match(values, pattern)


@extensions.register_check_method(statistics=["earliest", "latest"])
def iso_date(values: pd.Series, *, earliest: str | None = None, latest: str | None = None) -> pd.Series:
    """A day that exists, written YYYY-MM-DD, from ``earliest`` to ``latest`` (``today``: the day
    of the check) when given."""
    days = pd.to_datetime(values.where(_full_match(values, _DATE)), format="%Y-%m-%d", errors="coerce")
    valid = days.notna()
    if earliest:
        valid &= days >= pd.Timestamp(earliest)
    if latest:
        valid &= days <= (pd.Timestamp.today().normalize() if latest == "today" else pd.Timestamp(latest))
    return valid


def _full_match(values: pd.Series, pattern: str) -> pd.Series:
    return values.str.fullmatch(pattern).fillna(False).astype(bool)


def text(**checks: Any) -> Any:
    """A column of nullable text, with the registered ``checks``."""
    return pa.Field(nullable=True, **checks)


def flag() -> Any:
    """A column of ``true`` / ``false``."""
    return text(one_of=BOOLEANS)


def date(**bounds: str) -> Any:
    """A column of dates (YYYY-MM-DD), within ``bounds`` (``earliest``, ``latest``) when given."""
    return text(iso_date=bounds)


BIRTH_DATES = {"earliest": "1900-01-01", "latest": "today"}
"""A birth date before 1900 or in the future is a typo."""


class Record(pa.DataFrameModel):
    """What every record has: a status. (``date_last_modified`` is the source's bookkeeping, not
    roster data: delta extraction reads it leniently, so it is not checked here.)"""

    status: Series[str] = text(one_of=STATUSES)


class Person(Record):
    """Students, staff and contacts: an e-mail address and whether the account is enabled."""

    email: Series[str] = text(matches={"pattern": EMAIL, "meaning": "an e-mail address"})
    enabled_user: Series[str] = flag()


class Schools(Record):
    org_type: Series[str] = text(one_of=ORG_TYPES)


class Terms(Record):
    term_type: Series[str] = text(one_of=TERM_TYPES)
    start_date: Series[str] = date()
    end_date: Series[str] = date()
    school_year: Series[str] = text(matches={"pattern": YEAR, "meaning": "a year (YYYY)"})


class Courses(Record):
    grades: Series[str] = text(one_of=GRADES)


class Classes(Record):
    class_type: Series[str] = text(one_of=CLASS_TYPES)
    grades: Series[str] = text(one_of=GRADES)


class Students(Person):
    grades: Series[str] = text(one_of=GRADES)
    grad_year: Series[str] = text(matches={"pattern": YEAR, "meaning": "a year (YYYY)"})
    birth_date: Series[str] = date(**BIRTH_DATES)


class Staff(Person):
    role: Series[str] = text(one_of=STAFF_ROLES)


class Contacts(Person):
    role: Series[str] = text(one_of=CONTACT_ROLES)


class StudentContacts(Record):
    emergency_contact: Series[str] = flag()
    custodial: Series[str] = flag()
    pickup_allowed: Series[str] = flag()


class Enrollments(Record):
    role: Series[str] = text(one_of=ENROLLMENT_ROLES)
    primary: Series[str] = flag()
    begin_date: Series[str] = date()
    end_date: Series[str] = date()


class Demographics(Record):
    birth_date: Series[str] = date(**BIRTH_DATES)
    sex: Series[str] = text(one_of=SEXES)
    american_indian_or_alaska_native: Series[str] = flag()
    asian: Series[str] = flag()
    black_or_african_american: Series[str] = flag()
    native_hawaiian_or_other_pacific_islander: Series[str] = flag()
    white: Series[str] = flag()
    demographic_race_two_or_more_races: Series[str] = flag()
    hispanic_or_latino_ethnicity: Series[str] = flag()


MODELS: dict[str, type[pa.DataFrameModel]] = {
    "schools": Schools, "terms": Terms, "courses": Courses, "classes": Classes,
    "students": Students, "staff": Staff, "contacts": Contacts,
    "student_contacts": StudentContacts, "enrollments": Enrollments, "demographics": Demographics,
}
"""The format model of each entity."""

DATE_ORDER = {"terms": ("start_date", "end_date"), "enrollments": ("begin_date", "end_date")}
"""Per entity, the (start, end) dates an end may not precede."""


def problem(check: pa.Check) -> str:
    """What a value failing ``check`` is not, in words for an admin."""
    stats = check.statistics
    if check.name == "one_of":
        return "is not one of " + ", ".join(stats["allowed"])
    if check.name == "matches":
        return f"is not {stats['meaning']}"
    if check.name == "iso_date":
        span = f" from {stats['earliest']} to {stats['latest']}" if stats.get("earliest") else ""
        return f"is not a date written YYYY-MM-DD{span}"
    raise ValueError(f"no words for check {check.name!r}")


def quoted(sql: str) -> str:
    """SQL showing the text ``sql`` in quotes, cut to :data:`SHOWN_CHARS` characters."""
    return (f"('''' || left({sql}, {SHOWN_CHARS})"
            f" || CASE WHEN length({sql}) > {SHOWN_CHARS} THEN '…' ELSE '' END || '''')")


def format_findings(con, entity: str, records: str) -> list[tuple[str, dict]]:
    """Validate the values of ``records`` (a quoted table of ``entity``) on the writing cursor
    ``con``; return ``(select, params)`` queries of findings ``(record_id, attribute, rule,
    severity, message)``, rule ``format``, severity Error. Uses temporary tables ``_format_*``."""
    schema = MODELS[entity].to_schema()
    kinds = ENTITIES[entity].all_columns
    params = {"blanks": BLANKS, **{f"a{i}": name for i, name in enumerate(schema.columns)}}
    distinct = " UNION ALL ".join(
        f"SELECT DISTINCT $a{i} AS attribute, trim(v, $blanks) AS value FROM"
        f" (SELECT {'unnest(' + ident(name) + ')' if kinds[name] == TEXT_LIST else ident(name)} AS v FROM {records})"
        f" WHERE trim(v, $blanks) <> ''"
        for i, name in enumerate(schema.columns))
    con.execute(f"CREATE OR REPLACE TEMP TABLE _format_values AS SELECT row_number() OVER () AS n, * FROM ({distinct})",
                params)
    con.execute("CREATE OR REPLACE TEMP TABLE _format_failures (attribute VARCHAR, value VARCHAR, problem VARCHAR)")
    (total,) = con.execute("SELECT count(*) FROM _format_values").fetchone()
    for start in range(0, total, VALUES_PER_CHUNK):
        chunk = con.execute("SELECT attribute, value FROM _format_values WHERE n > $start AND n <= $end",
                            {"start": start, "end": start + VALUES_PER_CHUNK}).df()
        failures = [_failures(schema.columns[name], values) for name, values in chunk.groupby("attribute")["value"]]
        failures = [found for found in failures if len(found)]
        if failures:
            con.register("_failed_chunk", pd.concat(failures, ignore_index=True))
            con.execute("INSERT INTO _format_failures SELECT attribute, value, problem FROM _failed_chunk")
            con.unregister("_failed_chunk")
    failing = [name for (name,) in con.execute("SELECT DISTINCT attribute FROM _format_failures ORDER BY 1").fetchall()]
    return [_join_back(name, kinds[name], records) for name in failing]


def _failures(column: pa.Column, values: pd.Series) -> pd.DataFrame:
    """The failing values of one column's chunk: ``attribute, value, problem`` (first failed check)."""
    values = values.reset_index(drop=True)
    try:
        with config_context(validation_depth=ValidationDepth.DATA_ONLY):  # VARCHAR values: their type is known
            column.validate(values.to_frame(column.name), lazy=True)
        return pd.DataFrame()
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases.dropna(subset=["check_number", "index"]).sort_values("check_number")
        cases = cases.drop_duplicates("index")
        return pd.DataFrame({
            "attribute": column.name,
            "value": values.loc[cases["index"].astype(int)].to_numpy(),
            "problem": [problem(column.checks[int(n)]) for n in cases["check_number"]],
        })


def _join_back(name: str, kind: str, records: str) -> tuple[str, dict]:
    column, params = ident(name), {"attribute": name, "blanks": BLANKS, "rule": "format", "severity": ERROR}
    message = f"$attribute || ' ' || {quoted('f.value')} || ' ' || f.problem || ': the record is kept'"
    if kind != TEXT_LIST:
        return (f"SELECT r.sis_id, $attribute, $rule, $severity, {message} FROM {records} AS r"
                f" JOIN _format_failures AS f ON f.attribute = $attribute AND f.value = trim(r.{column}, $blanks)",
                params)
    first = f"$attribute || ' ' || {quoted('min(f.value)')} || ' ' || arg_min(f.problem, f.value)"
    more = "CASE WHEN count(*) > 1 THEN ' (and ' || (count(*) - 1) || ' more)' ELSE '' END"
    return (f"SELECT r.sis_id, $attribute, $rule, $severity, {first} || {more} || ': the record is kept'"
            f" FROM (SELECT sis_id, unnest({column}) AS v FROM {records}) AS r"
            f" JOIN _format_failures AS f ON f.attribute = $attribute AND f.value = trim(r.v, $blanks)"
            f" GROUP BY r.sis_id", params)


def date_order_findings(entity: str, records: str) -> list[tuple[str, dict]]:
    """Findings (rule ``date_order``, Error) of records of ``entity`` that end before they start."""
    if entity not in DATE_ORDER:
        return []
    start, end = DATE_ORDER[entity]
    params = {"start": start, "end": end, "blanks": BLANKS, "rule": "date_order", "severity": ERROR}
    start_day, end_day = (f"TRY_CAST(trim({ident(c)}, $blanks) AS DATE)" for c in (start, end))
    return [(f"SELECT sis_id, $end, $rule, $severity, $end || ' ' || {quoted(ident(end))} || ' is before '"
             f" || $start || ' ' || {quoted(ident(start))} || ': the record is kept'"
             f" FROM {records} WHERE {end_day} < {start_day}", params)]
