"""One simulated day in a district store: its clock, and the moves every change is made of.

A :class:`Day` knows the simulated date and time, draws deterministically from the day's seed,
and offers the moves that the daily churn and the events share: pick rows, retire rows
(``tobedeleted`` first, purged for real some days later), withdraw students, seat a student
where a classmate sits, add students with their families, hire staff, give a person a new
sourced id. Everything runs as SQL over the store; Python holds only ids of rows that change.

New rows take numbers from the ``next_<table>`` meta keys, so a number is never reused even
after the row that had it was purged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import numpy as np
import pandas as pd

from passport_pipeline.simulator import store
from passport_pipeline.simulator.school_calendar import simulated_now
from passport_pipeline.simulator.people import Style, district_style, draw_families, draw_staff
from passport_pipeline.simulator.rows import (
    CONTACT_ROLES, STAFF, id_sql, insert, number_sql, sourced_id, user_prefix_sql,
)

PURGE_AFTER_DAYS = 3
"""Rows ``tobedeleted`` for more than this many simulated days are removed for good."""

ACTIVE_STUDENTS = "SELECT * FROM users WHERE role = 'student' AND status = 'active'"
ACTIVE_STAFF = f"SELECT * FROM users WHERE {STAFF} AND status = 'active'"
ACTIVE_CONTACTS = f"SELECT * FROM users WHERE role IN {CONTACT_ROLES} AND status = 'active'"


@dataclass
class Day:
    """The simulated day being written: date, seed-derived randomness and the store."""

    con: duckdb.DuckDBPyConnection
    seed: int
    salt: str
    today: date

    def __post_init__(self):
        self.rng = np.random.default_rng(int(hashlib.md5(self.salt.encode()).hexdigest(), 16))
        self.next_numbers: dict[str, int] = {}

    @property
    def now(self) -> datetime:
        return simulated_now(self.today)

    @property
    def style(self) -> Style:
        return district_style(self.seed)

    def stamp(self, n: int) -> np.ndarray:
        """``date_last_modified`` of n rows changed today."""
        return np.full(n, np.datetime64(self.now, "s"))

    def _execute(self, query: str, params: dict) -> duckdb.DuckDBPyConnection:
        values = {"today": self.today, "now": self.now, "salt": self.salt, **params}
        return self.con.execute(query, {k: v for k, v in values.items() if f"${k}" in query})

    def sql(self, query: str, **params) -> list[tuple]:
        """Run ``query`` with the day's ``$today``, ``$now`` and ``$salt`` where it uses them;
        return all its rows (fetching all frees the connection for the next statement)."""
        return self._execute(query, params).fetchall()

    def frame(self, query: str, **params) -> pd.DataFrame:
        """Run ``query`` like :meth:`sql`; return its rows as a DataFrame."""
        return self._execute(query, params).df()

    def row(self, query: str, **params) -> tuple | None:
        """The first row of ``query``."""
        rows = self.sql(query, **params)
        return rows[0] if rows else None

    def value(self, query: str, **params):
        """The single value ``query`` returns."""
        return self.row(query, **params)[0]

    def keep(self, name: str, frame: pd.DataFrame) -> None:
        """Store a small frame (ids of what changes) as temp table ``name``."""
        self.con.register("_frame", frame)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _frame")
        self.con.unregister("_frame")

    def take(self, table: str, n: int) -> int:
        """Reserve ``n`` new numbers for ``table``; return the first."""
        if table not in self.next_numbers:
            stored = int(store.meta(self.con).get(f"next_{table}", 0))
            largest = self.value(f"SELECT max({number_sql('sourced_id')}) FROM {table}")
            self.next_numbers[table] = max(stored, (largest or 0) + 1)
        first = self.next_numbers[table]
        self.next_numbers[table] += n
        store.set_meta(self.con, **{f"next_{table}": self.next_numbers[table]})
        return first

    def pick(self, purpose: str, rows: str, k: int, **params) -> list[str]:
        """``k`` sourced ids drawn from the query ``rows``, the same ones for the same day."""
        if k <= 0:
            return []
        query = f"SELECT sourced_id FROM ({rows}) ORDER BY md5($pick || sourced_id) LIMIT $k"
        picked = self.sql(query, pick=f"{self.salt}:{purpose}:", k=k, **params)
        return [r[0] for r in picked]

    def count(self, share: float, rows: str) -> int:
        """How many of the rows of ``rows`` a share means today (rounded at random, fairly)."""
        total = self.value(f"SELECT count(*) FROM ({rows})")
        expected = share * total
        return int(expected) + int(self.rng.random() < expected - int(expected))

    def retire(self, table: str, where: str, **params) -> int:
        """Mark the active rows of ``table`` matching ``where`` tobedeleted, as of today."""
        return self.value(
            f"""UPDATE {table} SET status = 'tobedeleted', deleted_on = $today,
                       date_last_modified = $now
                WHERE status = 'active' AND ({where})""", **params,
        )

    def purge(self) -> dict[str, int]:
        """Remove rows that have been tobedeleted for more than :data:`PURGE_AFTER_DAYS` days."""
        purged = {
            table: self.value(
                f"DELETE FROM {table} WHERE status = 'tobedeleted' AND deleted_on < $cutoff",
                cutoff=date.fromordinal(self.today.toordinal() - PURGE_AFTER_DAYS),
            )
            for table in store.ENTITY_TABLES
        }
        purged["student_contacts"] = self.value(
            """DELETE FROM student_contacts WHERE student_id NOT IN (SELECT sourced_id FROM users)
               OR contact_id NOT IN (SELECT sourced_id FROM users)"""
        )
        return purged

    def withdraw_students(self, ids: list[str]) -> dict[str, int]:
        """Students leave: they, their enrollments and demographics go tobedeleted, and so do
        contacts left without an active student."""
        self.keep("_gone", pd.DataFrame({"id": ids}, dtype=object))
        gone = "sourced_id IN (SELECT id FROM _gone)"
        result = {
            "students": self.retire("users", gone),
            "enrollments": self.retire("enrollments", "user_id IN (SELECT id FROM _gone)"),
        }
        self.retire("demographics", gone)
        self.sql(
            """CREATE OR REPLACE TEMP TABLE _orphans AS
               SELECT sc.contact_id AS id FROM student_contacts sc
               LEFT JOIN users st ON st.sourced_id = sc.student_id AND st.status = 'active'
               WHERE sc.contact_id IN (SELECT contact_id FROM student_contacts
                                       WHERE student_id IN (SELECT id FROM _gone))
               GROUP BY sc.contact_id HAVING count(st.sourced_id) = 0"""
        )
        result["contacts"] = self.retire("users", "sourced_id IN (SELECT id FROM _orphans)")
        return result

    def templates(self, who: pd.DataFrame) -> pd.DataFrame:
        """For each ``user_id, school_id, grade`` a classmate-to-be: a random active, enrolled
        student of that grade at that school (``template_id``; missing when there is none)."""
        self.keep("_who", who[["user_id", "school_id", "grade"]])
        return self.frame(
            f"""
            WITH candidates AS (
                SELECT sourced_id AS template_id, primary_org_id AS school_id, grades[1] AS grade,
                       row_number() OVER (PARTITION BY primary_org_id, grades[1]
                                          ORDER BY md5($salt || sourced_id)) AS rn,
                       count(*) OVER (PARTITION BY primary_org_id, grades[1]) AS n
                FROM ({ACTIVE_STUDENTS})
                WHERE sourced_id NOT IN (SELECT user_id FROM _who)
                  AND sourced_id IN (SELECT user_id FROM enrollments
                                     WHERE status = 'active' AND role = 'student')),
            wanted AS (
                SELECT w.user_id, w.school_id, w.grade,
                       1 + md5_number($salt || w.user_id) % c.n AS rn
                FROM _who w JOIN (SELECT DISTINCT school_id, grade, n FROM candidates) c
                  USING (school_id, grade))
            SELECT w.user_id, w.school_id, c.template_id
            FROM wanted w JOIN candidates c USING (school_id, grade, rn)
            ORDER BY w.user_id"""
        )

    def seat_like(self, pairs: pd.DataFrame) -> int:
        """Enroll each ``user_id`` in the ongoing classes its ``template_id`` takes at
        ``school_id``, from today on. Returns the enrollments added."""
        self.keep("_pairs", pairs[["user_id", "template_id", "school_id"]])
        self.sql(
            """CREATE OR REPLACE TEMP TABLE _seats AS
               SELECT p.user_id, e.class_id, e.school_id,
                      greatest(e.begin_date, $today) AS begin_date, e.end_date
               FROM _pairs p JOIN enrollments e
                 ON e.user_id = p.template_id AND e.school_id = p.school_id
               WHERE e.status = 'active' AND e.role = 'student'
                 AND (e.end_date IS NULL OR e.end_date >= $today)"""
        )
        return self.add_enrollments("_seats", role="student")

    def add_enrollments(self, seats: str, role: str) -> int:
        """Insert enrollments for temp table ``seats`` (user_id, class_id, school_id, begin_date,
        end_date, and ``primary`` for teachers)."""
        n = self.value(f"SELECT count(*) FROM {seats}")
        first = self.take("enrollments", n)
        primary = '"primary"' if role == "teacher" else "false"
        number = "$first - 1 + row_number() OVER (ORDER BY user_id, class_id)"
        self.sql(
            f"""INSERT INTO enrollments BY NAME
                SELECT {id_sql('enr', number)} AS sourced_id, $now AS date_last_modified,
                       user_id, class_id, school_id, '{role}' AS role, {primary} AS "primary",
                       begin_date, end_date
                FROM {seats}""",
            first=first,
        )
        return n

    def add_students(self, school_nos: np.ndarray, grades) -> tuple[pd.DataFrame, int]:
        """New students (with new families and demographics) at the given schools and grades.

        Returns ``user_id, school_id, grade`` of the students, and how many contacts came along.
        """
        n = len(grades)
        first = self.take("users", 0)
        start_year = self.today.year if self.today.month >= 7 else self.today.year - 1
        people = draw_families(self.rng, self.style, student_nos=first + np.arange(n),
                               grades=np.asarray(grades, dtype=object), org_nos=school_nos,
                               first_contact_no=first + n, start_year=start_year, stamp=self.stamp)
        self.take("users", len(people["users"]))
        for table, frame in people.items():
            insert(self.con, table, frame)
        students = people["users"].iloc[:n]
        return pd.DataFrame({
            "user_id": [sourced_id("stu", no) for no in students["no"]],
            "school_id": [sourced_id("org", no) for no in students["org_no"]],
            "grade": students["grade"].to_numpy(),
        }), len(people["users"]) - n

    def hire(self, roles: list[str], org_ids: list[list[str]]) -> list[str]:
        """New staff members with the given roles and schools; returns their sourced ids."""
        n = len(roles)
        first = self.take("users", n)
        org_nos = [[int(o.strip().split("-")[1]) for o in orgs] for orgs in org_ids]
        frame = draw_staff(
            self.rng, self.style, nos=first + np.arange(n), roles=np.array(roles, dtype=object),
            org_nos=np.array([o[0] for o in org_nos]),
            org2_nos=np.array([o[1] if len(o) > 1 else None for o in org_nos], dtype=object),
            stamp=self.stamp,
        )
        insert(self.con, "users", frame)
        return [sourced_id("stf", no) for no in frame["no"]]

    def renumber(self, user_id: str) -> str:
        """Give a person a new sourced id and native id; every reference follows."""
        prefix = self.value(
            f"SELECT {user_prefix_sql('role')} FROM users WHERE sourced_id = $id", id=user_id)
        number = self.take("users", 1)
        new_id = sourced_id(prefix, number)
        params = {"old": user_id, "new": new_id}
        self.sql("""UPDATE users SET sourced_id = $new, native_id = $no, date_last_modified = $now
                    WHERE sourced_id = $old""", no=number, **params)
        self.sql("""UPDATE demographics SET sourced_id = $new, date_last_modified = $now
                    WHERE sourced_id = $old""", **params)
        self.sql("""UPDATE enrollments SET user_id = $new, date_last_modified = $now
                    WHERE user_id = $old""", **params)
        for column in ("student_id", "contact_id"):
            self.sql(f"""UPDATE student_contacts SET {column} = $new, date_last_modified = $now
                         WHERE {column} = $old""", **params)
        return new_id
