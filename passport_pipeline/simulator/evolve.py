"""The district's next day: the clock moves one day, and the roster changes as districts do.

:func:`next_day` advances the simulated clock by a day (or to the next term, on a term
rollover), purges rows that have been ``tobedeleted`` for more than three days, applies the
requested events (see :mod:`.events`), then the daily churn: new students with their families
and seats in existing classes, updates of realistic fields, withdrawals, and staff hired and
leaving in proportion. Every change bumps ``date_last_modified`` to the new simulated ``now``;
every removal shows first as ``tobedeleted`` with ``deleted_on``. It is set-based SQL over the
store: an ordinary day at a million students takes about ten seconds, a new school year about a
minute, before :func:`store.finalize` rewrites the tables.

Randomness comes from ``NextDay.seed``, or by default from the store's seed and the day number,
so replaying the same days on the same district gives the same district.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
from faker.providers.internet.en_US import Provider as InternetProvider
from pydantic import BaseModel, ConfigDict, Field

from passport_pipeline.simulator import store
from passport_pipeline.simulator.day import ACTIVE_CONTACTS, ACTIVE_STAFF, ACTIVE_STUDENTS, Day
from passport_pipeline.simulator.dirty import Share
from passport_pipeline.simulator.events import Event, apply_event, leave_staff
from passport_pipeline.simulator.people import GRADES, names
from passport_pipeline.simulator.rows import refresh_contact_orgs

__all__ = ["Event", "NextDay", "next_day"]

TOUCHED_STUDENTS = """SELECT sourced_id FROM users
                      WHERE role = 'student' AND date_last_modified = $dlm"""
"""Students changed today: their contacts' schools may have changed too."""


class NextDay(BaseModel):
    """What tomorrow brings: shares of students created, updated and withdrawn (staff and
    contacts move in proportion), and events, applied first, in order."""

    model_config = ConfigDict(extra="forbid")

    creates: Share = 0.01
    updates: Share = 0.02
    withdrawals: Share = 0.005
    seed: int | None = Field(None, description="default: derived from the store's seed and day")
    events: list[Event] = []


def next_day(con: duckdb.DuckDBPyConnection, change: NextDay = NextDay()) -> dict:
    """Write the district's next day into the store ``con``; return what happened.

    All or nothing: an event that cannot happen (say, closing the only school of its level)
    raises ``ValueError`` and leaves the store as it was.

    The summary has ``day``, ``today``, ``now``, counts under ``purged``, ``created``,
    ``updated`` and ``withdrawn``, and one entry per event under ``events`` with the ids it
    touched.
    """
    meta = store.meta(con)
    number = int(meta["day"]) + 1
    seed = int(meta["seed"])
    salt = f"{seed}:{number}" if change.seed is None else f"seed:{change.seed}:{number}"
    day = Day(con, seed, salt, date.fromisoformat(meta["today"]) + timedelta(days=1))
    con.execute("BEGIN")
    try:
        summary = {"day": number, "purged": day.purge()}
        summary["events"] = [apply_event(day, event) for event in change.events]
        summary["withdrawn"] = _withdraw(day, change.withdrawals)
        summary["created"] = _create(day, change.creates)
        summary["updated"] = _update(day, change.updates)
        refresh_contact_orgs(con, day.now, students=TOUCHED_STUDENTS)
        store.set_meta(con, day=number, today=day.today.isoformat(), now=day.now.isoformat())
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    store.finalize(con)
    return {**summary, "today": day.today.isoformat(), "now": day.now.isoformat()}


def _withdraw(day: Day, share: float) -> dict[str, int]:
    students = day.pick("withdraw", ACTIVE_STUDENTS, day.count(share, ACTIVE_STUDENTS))
    result = day.withdraw_students(students)
    leaving = day.pick("leave", ACTIVE_STAFF, day.count(share, ACTIVE_STAFF))
    replaced = leave_staff(day, leaving)
    result["staff"] = len(leaving)
    result["staff_replaced"] = sum(r is not None for r in replaced.values())
    return result


def _create(day: Day, share: float) -> dict[str, int]:
    """New students sit where a random classmate of their school and grade sits (one with a
    valid grade); new staff take the role and schools of a random colleague."""
    seats = day.pick("create", f"{ACTIVE_STUDENTS} AND grades[1] IN {GRADES}",
                     day.count(share, ACTIVE_STUDENTS))
    day.keep("_like", pd.DataFrame({"id": seats}, dtype=object))
    like = day.sql("""SELECT sourced_id, primary_org_id, grades[1] FROM users
                      WHERE sourced_id IN (SELECT id FROM _like) ORDER BY sourced_id""")
    result = {"students": 0, "contacts": 0, "enrollments": 0}
    if like:
        schools = np.array([int(r[1].strip().split("-")[1]) for r in like])
        grades = np.array([r[2] for r in like], dtype=object)
        students, contacts = day.add_students(schools, grades)
        students["template_id"] = [r[0] for r in like]
        result = {"students": len(students), "contacts": contacts,
                  "enrollments": day.seat_like(students)}
    colleagues = day.pick("hire", ACTIVE_STAFF, day.count(share, ACTIVE_STAFF))
    day.keep("_like", pd.DataFrame({"id": colleagues}, dtype=object))
    roles = day.sql("""SELECT role, org_ids FROM users
                       WHERE sourced_id IN (SELECT id FROM _like) ORDER BY sourced_id""")
    result["staff"] = len(day.hire([r[0] for r in roles], [r[1] for r in roles])) if roles else 0
    return result


def _drawn(values: str, salt: str) -> str:
    """SQL drawing one element of list parameter ``values`` per row, from the row's id."""
    return (f"list_element({values}, "
            f"1 + (md5_number('{salt}' || $salt || sourced_id) % len({values}))::INT)")


def _email(family: str, domain: str = "split_part(email, '@', 2)") -> str:
    """SQL for a person's e-mail after a change: same number, new family name or domain."""
    local = "regexp_replace(lower(coalesce(given_name, '') || '.' || {}), '[^a-z.]', '', 'g')"
    return (f"CASE WHEN email IS NOT NULL THEN {local.format(family)} "
            f"|| regexp_extract(email, '([0-9]*)@', 1) || '@' || {domain} END")


_PHONE = f"""printf('%03d-%03d-%04d', {_drawn('$areas', 'a')},
                    200 + md5_number('x' || $salt || sourced_id) % 800,
                    md5_number('l' || $salt || sourced_id) % 10000)"""
_FAMILY = _drawn("$last_names", "n")
_FIRST = _drawn("$first_names", "f")
_RENAME = (f"family_name = {_FAMILY}, email = {_email(_FAMILY)}, "
           f"username = split_part({_email(_FAMILY)}, '@', 1)")
_UPDATES = {
    "students": (ACTIVE_STUDENTS, [
        _RENAME,
        f"preferred_first_name = {_FIRST}",
        f"middle_name = CASE WHEN middle_name IS NULL THEN {_FIRST} END",
        """grades = CASE WHEN grades[1] IN ('KG', '06', '09')
                              OR list_position($grades, grades[1]) IS NULL THEN grades
                         ELSE [$grades[list_position($grades, grades[1]) - 1]] END""",
    ]),
    "staff": (ACTIVE_STAFF, [f"phone = {_PHONE}", _RENAME]),
    "contacts": (ACTIVE_CONTACTS, [
        f"phone = {_PHONE}",
        f"sms = {_PHONE}",
        f"email = {_email('family_name', _drawn('$mail_domains', 'm'))}",
        f"family_name = {_FAMILY}",
    ]),
    "classes": ("SELECT * FROM classes WHERE status = 'active'", [
        "location = 'Room ' || (100 + md5_number('r' || $salt || sourced_id) % 250)",
    ]),
}
"""Per kind: the active rows, and the realistic edits (SET clauses) that picked rows get in
turn: a new family name (with the e-mail following), phones, a preferred or middle name, a
grade placement correction, a new personal e-mail, a class moving rooms."""


def _update(day: Day, share: float) -> dict[str, int]:
    pool = names()
    values = {"areas": list(day.style.area_codes), "grades": list(GRADES),
              "last_names": list(pool.last), "first_names": [*pool.female, *pool.male],
              "mail_domains": list(InternetProvider.free_email_domains)}
    result = {}
    for kind, (rows, edits) in _UPDATES.items():
        ids = day.pick(f"update-{kind}", rows, day.count(share, rows))
        day.keep("_edit", pd.DataFrame({"id": pd.Series(ids, dtype=object),
                                        "edit": np.arange(len(ids)) % len(edits)}))
        table = "classes" if kind == "classes" else "users"
        for i, edit in enumerate(edits):
            used = {k: v for k, v in values.items() if f"${k}" in edit}
            day.sql(f"""UPDATE {table} SET {edit}, date_last_modified = $now
                        WHERE sourced_id IN (SELECT id FROM _edit WHERE edit = $i)""", i=i, **used)
        result[kind] = len(ids)
    return result
