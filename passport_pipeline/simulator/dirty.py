"""Dirty data on demand: the flaws real Skyward districts serve, each as a share of rows.

A generated district is clean; :func:`apply_dirty_data` then damages a deterministic share of
rows per knob, in SQL, so it costs the same at any size. Which rows are hit depends only on the
seed and the row's id (an md5 of both), never on the wall clock or on thread scheduling.

What each knob does:

- ``padded_ids``: users' and classes' sourced ids get a leading or trailing space; every
  reference (enrollments, student_contacts, demographics) carries the padded id, so the data is
  still consistent — only an exact-match join on trimmed ids would break.
- ``padded_names``: given and family names get leading/trailing spaces.
- ``missing_emails``: e-mail set to NULL (any role).
- ``duplicate_staff``: a staff member appears a second time under a new sourced id and native
  id: same name, e-mail, identifier, state id and schools, no enrollments.
- ``nameless_users``: neither given nor family name (any role).
- ``duplicate_people``: a student appears a second time under a new sourced id, native id,
  student number and e-mail; same name, birth date and state id, with a demographics row and no
  enrollments or contacts.
- ``bad_dates``: dates are DATE columns, so a bad date is an impossible one rather than an
  unparsable one: a student's birth date (users and demographics) before 1900 or after 2080,
  and an enrollment whose end date is before its begin date.
- ``invalid_grades``: a student's grade becomes ``13``, ``K`` or ``Grade <n>``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from passport_pipeline.simulator.rows import STAFF, id_sql, number_sql

Share = Annotated[float, Field(ge=0.0, le=1.0)]


class DirtyData(BaseModel):
    """Shares (0..1) of rows to damage per kind of flaw; all zero means clean data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    padded_ids: Share = 0.0
    padded_names: Share = 0.0
    missing_emails: Share = 0.0
    duplicate_staff: Share = 0.0
    nameless_users: Share = 0.0
    duplicate_people: Share = 0.0
    bad_dates: Share = 0.0
    invalid_grades: Share = 0.0

    @classmethod
    def demo(cls) -> DirtyData:
        """Small shares of every flaw, as the demo district serves them."""
        return cls(padded_ids=0.005, padded_names=0.01, missing_emails=0.02,
                   duplicate_staff=0.01, nameless_users=0.002, duplicate_people=0.003,
                   bad_dates=0.002, invalid_grades=0.003)

    @property
    def is_clean(self) -> bool:
        return not any(self.model_dump().values())

    def key(self) -> str:
        """A short stable hash of the knobs (``clean`` when all are zero), for file names."""
        if self.is_clean:
            return "clean"
        text = json.dumps(self.model_dump(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]


def _picked(column: str = "sourced_id") -> str:
    """SQL predicate: this row is in the knob's share (parameters ``$salt`` and ``$cut``)."""
    return f"md5_number($salt || {column}) % 1000000 < $cut"


_NEXT = "$next + row_number() OVER (ORDER BY sourced_id)"
_FLAWS = {
    "duplicate_staff": [f"""
        INSERT INTO users
        SELECT * REPLACE ({id_sql('stf', _NEXT)} AS sourced_id, {_NEXT} AS native_id)
        FROM users WHERE {STAFF} AND {_picked()}"""],
    "duplicate_people": [f"""
        CREATE OR REPLACE TEMP TABLE _twins AS
        SELECT sourced_id AS original, {_NEXT} AS no
        FROM users WHERE role = 'student' AND {_picked()}""", f"""
        INSERT INTO users
        SELECT u.* REPLACE ({id_sql('stu', 't.no')} AS sourced_id, t.no AS native_id,
                            CAST(1000000 + t.no AS VARCHAR) AS identifier,
                            regexp_replace(u.username, '[0-9]+$', CAST(t.no AS VARCHAR))
                                AS username,
                            regexp_replace(u.email, '[0-9]+@', t.no || '@') AS email)
        FROM users u JOIN _twins t ON u.sourced_id = t.original""", f"""
        INSERT INTO demographics
        SELECT d.* REPLACE ({id_sql('stu', 't.no')} AS sourced_id)
        FROM demographics d JOIN _twins t ON d.sourced_id = t.original""",
        "DROP TABLE _twins"],
    "nameless_users": [f"""
        UPDATE users SET given_name = NULL, family_name = NULL WHERE {_picked()}"""],
    "padded_names": [f"""
        UPDATE users SET given_name = ' ' || given_name, family_name = family_name || '  '
        WHERE {_picked()}"""],
    "missing_emails": [f"UPDATE users SET email = NULL WHERE {_picked()}"],
    "invalid_grades": [f"""
        UPDATE users SET grades = [CASE md5_number('g' || sourced_id) % 3
                                   WHEN 0 THEN '13' WHEN 1 THEN 'K'
                                   ELSE 'Grade ' || ltrim(grades[1], '0') END]
        WHERE role = 'student' AND {_picked()}"""],
    "bad_dates": [f"""
        CREATE OR REPLACE TEMP TABLE _bad AS
        SELECT sourced_id, CASE WHEN md5_number('d' || sourced_id) % 2 = 0
                                THEN birth_date - INTERVAL 130 YEAR
                                ELSE birth_date + INTERVAL 80 YEAR END AS birth_date
        FROM users WHERE role = 'student' AND {_picked()}""",
        """UPDATE users SET birth_date = b.birth_date FROM _bad b
           WHERE users.sourced_id = b.sourced_id""",
        """UPDATE demographics SET birth_date = b.birth_date FROM _bad b
           WHERE demographics.sourced_id = b.sourced_id""",
        f"""UPDATE enrollments SET end_date = begin_date - INTERVAL 30 DAY
            WHERE begin_date IS NOT NULL AND {_picked()}""",
        "DROP TABLE _bad"],
    "padded_ids": [f"""
        CREATE OR REPLACE TEMP TABLE _pad AS
        SELECT sourced_id AS old, CASE WHEN md5_number('p' || sourced_id) % 2 = 0
                                       THEN ' ' || sourced_id ELSE sourced_id || ' ' END AS new
        FROM (SELECT sourced_id FROM users UNION ALL SELECT sourced_id FROM classes)
        WHERE {_picked()}""",
        "UPDATE users SET sourced_id = p.new FROM _pad p WHERE users.sourced_id = p.old",
        "UPDATE classes SET sourced_id = p.new FROM _pad p WHERE classes.sourced_id = p.old",
        """UPDATE demographics SET sourced_id = p.new FROM _pad p
           WHERE demographics.sourced_id = p.old""",
        "UPDATE enrollments SET user_id = p.new FROM _pad p WHERE enrollments.user_id = p.old",
        "UPDATE enrollments SET class_id = p.new FROM _pad p WHERE enrollments.class_id = p.old",
        "UPDATE student_contacts SET student_id = p.new FROM _pad p WHERE student_id = p.old",
        "UPDATE student_contacts SET contact_id = p.new FROM _pad p WHERE contact_id = p.old",
        "DROP TABLE _pad"],
}
"""Per knob, the statements that apply it; duplicates first, padded ids last so that every
reference follows the final id."""


def apply_dirty_data(con: duckdb.DuckDBPyConnection, dirty: DirtyData, seed: int) -> None:
    """Damage the district in ``con`` as ``dirty`` asks (nothing when it is clean)."""
    for knob, statements in _FLAWS.items():
        share = getattr(dirty, knob)
        if not share:
            continue
        next_no = con.execute(f"SELECT max({number_sql('sourced_id')}) FROM users").fetchall()[0][0]
        values = {"salt": f"{seed}:{knob}:", "cut": round(share * 1_000_000), "next": next_no}
        for sql in statements:
            used = {k: v for k, v in values.items() if f"${k}" in sql}
            con.execute(sql, used)
