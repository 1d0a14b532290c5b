"""Events a simulated day can bring, beyond the daily churn.

- ``term_rollover``: the next semester starts (the clock jumps to its first day, the ended
  semester's sections and enrollments go tobedeleted); after the spring semester, the next
  school year: new sessions, a copy of every section in the new terms, students promoted a
  grade (moving up to a middle or high school where their school ends), seniors graduated
  (tobedeleted), a new kindergarten class.
- ``school_closing``: a school and all its courses, classes and enrollments go tobedeleted; its
  students and staff move to another school of the same level.
- ``staff_leaving``: a staff member and their enrollments go tobedeleted; a replacement is hired
  into their ongoing classes.
- ``student_moving``: a student's enrollments go tobedeleted and they are enrolled in another
  school, in the classes a classmate of their grade takes there.
- ``source_id_change``: a person gets a new sourced id and native id; the state id stays, every
  reference follows, and the old record disappears without a trace, as in Skyward.

Ids left out are picked at random from the day's seed. Each handler returns a summary with the
ids it touched.
"""

from __future__ import annotations

from typing import Annotated, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from passport_pipeline.simulator.day import ACTIVE_STAFF, ACTIVE_STUDENTS, Day
from passport_pipeline.simulator.district import LEVELS
from passport_pipeline.simulator.rollover import term_rollover


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TermRollover(_Event):
    kind: Literal["term_rollover"] = "term_rollover"


class SchoolClosing(_Event):
    kind: Literal["school_closing"] = "school_closing"
    school_id: str | None = None


class StaffLeaving(_Event):
    kind: Literal["staff_leaving"] = "staff_leaving"
    user_id: str | None = None


class StudentMoving(_Event):
    kind: Literal["student_moving"] = "student_moving"
    user_id: str | None = None
    to_school_id: str | None = None


class SourceIdChange(_Event):
    kind: Literal["source_id_change"] = "source_id_change"
    user_id: str | None = None


Event = Annotated[
    TermRollover | SchoolClosing | StaffLeaving | StudentMoving | SourceIdChange,
    Field(discriminator="kind"),
]

ENROLLED_STUDENTS = f"""{ACTIVE_STUDENTS} AND sourced_id IN (
    SELECT user_id FROM enrollments WHERE status = 'active' AND role = 'student')"""
ACTIVE_SCHOOLS = "SELECT * FROM orgs WHERE type = 'school' AND status = 'active'"
MOVABLE_STUDENTS = f"""{ENROLLED_STUDENTS} AND primary_org_id IN (
    SELECT sourced_id FROM ({ACTIVE_SCHOOLS}) WHERE school_level IN (
        SELECT school_level FROM ({ACTIVE_SCHOOLS}) GROUP BY ALL HAVING count(*) > 1))"""
"""Students whose school has a sister school of the same level to move to."""
TEACHING = f"""{ACTIVE_STAFF} AND role = 'teacher' AND sourced_id IN (
    SELECT user_id FROM enrollments WHERE status = 'active' AND "primary")"""


def apply_event(day: Day, event: Event) -> dict:
    """Apply one event to the day; return its summary (``kind`` plus what it touched)."""
    handler = {
        "term_rollover": _term_rollover, "school_closing": _school_closing,
        "staff_leaving": _staff_leaving, "student_moving": _student_moving,
        "source_id_change": _source_id_change,
    }[event.kind]
    return {"kind": event.kind, **handler(day, event)}


def _term_rollover(day: Day, event: TermRollover) -> dict:
    return term_rollover(day)


def _one(day: Day, purpose: str, rows: str, given: str | None, what: str) -> str:
    """The given id if it is among ``rows``, else a random one of them."""
    if given is None:
        picked = day.pick(purpose, rows, 1)
        if not picked:
            raise ValueError(f"no {what} to pick for {purpose}")
        return picked[0]
    if not day.row(f"SELECT 1 FROM ({rows}) WHERE sourced_id = $id", id=given):
        raise ValueError(f"{given!r} is not an active {what}")
    return given


def _schools(day: Day) -> pd.DataFrame:
    return day.frame(f"SELECT sourced_id, school_level FROM ({ACTIVE_SCHOOLS}) ORDER BY sourced_id")


def _student(day: Day, user_id: str) -> tuple[str, str]:
    return day.row("SELECT primary_org_id, grades[1] FROM users WHERE sourced_id = $id",
                   id=user_id)


def leave_staff(day: Day, user_ids: list[str]) -> dict[str, str | None]:
    """Staff members leave; for each who taught, a new hire takes over their ongoing classes.

    Returns each leaver's replacement id (None when there were no classes to take over).
    """
    day.keep("_leavers", pd.DataFrame({"id": pd.Series(user_ids, dtype=object)}))
    day.sql("""CREATE OR REPLACE TEMP TABLE _teach AS
               SELECT user_id AS leaver, class_id, school_id, "primary", $today AS begin_date,
                      end_date
               FROM enrollments WHERE user_id IN (SELECT id FROM _leavers)
                 AND status = 'active' AND role = 'teacher'
                 AND (end_date IS NULL OR end_date >= $today)""")
    teachers = day.sql("""SELECT sourced_id, role, org_ids FROM users
                          WHERE sourced_id IN (SELECT leaver FROM _teach) ORDER BY sourced_id""")
    day.retire("users", "sourced_id IN (SELECT id FROM _leavers)")
    day.retire("enrollments", "user_id IN (SELECT id FROM _leavers)")
    replacements = dict.fromkeys(user_ids)
    if teachers:
        hired = day.hire([t[1] for t in teachers], [t[2] for t in teachers])
        replacements.update(zip([t[0] for t in teachers], hired))
        day.keep("_hired", pd.DataFrame({"leaver": [t[0] for t in teachers], "user_id": hired}))
        day.sql("""CREATE OR REPLACE TEMP TABLE _teach AS
                   SELECT h.user_id, t.* EXCLUDE (leaver)
                   FROM _teach t JOIN _hired h USING (leaver)""")
        day.add_enrollments("_teach", role="teacher")
    return replacements


def _staff_leaving(day: Day, event: StaffLeaving) -> dict:
    rows = TEACHING if event.user_id is None else ACTIVE_STAFF
    user_id = _one(day, "staff_leaving", rows, event.user_id, "staff member")
    return {"user_id": user_id, "replacement_id": leave_staff(day, [user_id])[user_id]}


def _move_students(day: Day, who: pd.DataFrame, to_school: str) -> int:
    """Enroll ``who`` (user_id, grade) at ``to_school`` like a classmate; return enrollments."""
    pairs = day.templates(who.assign(school_id=to_school))
    day.keep("_movers", who[["user_id"]])
    day.sql("""UPDATE users SET org_ids = [$to], primary_org_id = $to, date_last_modified = $now
               WHERE sourced_id IN (SELECT user_id FROM _movers)""", to=to_school)
    return day.seat_like(pairs)


def _student_moving(day: Day, event: StudentMoving) -> dict:
    rows = MOVABLE_STUDENTS if event.user_id is None else ENROLLED_STUDENTS
    user_id = _one(day, "student_moving", rows, event.user_id, "student")
    school, grade = _student(day, user_id)
    schools = _schools(day)
    if event.to_school_id is not None:
        if event.to_school_id not in set(schools["sourced_id"]):
            raise ValueError(f"{event.to_school_id!r} is not an active school")
        to_school = event.to_school_id
    else:
        level = schools.loc[schools["sourced_id"] == school, "school_level"]
        others = schools[schools["sourced_id"] != school]
        same = others[others["school_level"].isin(level)]
        if same.empty:
            same = others[[grade in LEVELS[x] for x in others["school_level"]]]
        if same.empty:
            raise ValueError(f"no other active school teaches grade {grade!r}")
        to_school = same["sourced_id"].iloc[int(day.rng.integers(len(same)))]
    day.retire("enrollments", "user_id = $id", id=user_id)
    moved = _move_students(day, pd.DataFrame({"user_id": [user_id], "grade": [grade]}), to_school)
    return {"user_id": user_id, "from_school_id": school, "to_school_id": to_school,
            "enrollments": moved}


def _school_closing(day: Day, event: SchoolClosing) -> dict:
    schools = _schools(day)
    shared = schools.groupby("school_level")["sourced_id"].transform("count") > 1
    if event.school_id is None:
        sizes = dict(day.sql(f"""SELECT primary_org_id, count(*) FROM ({ACTIVE_STUDENTS})
                                 GROUP BY ALL"""))
        candidates = schools[shared].assign(size=lambda f: f["sourced_id"].map(sizes).fillna(0))
        if candidates.empty:
            raise ValueError("no school to close: every level has a single active school")
        school = candidates.sort_values(["size", "sourced_id"])["sourced_id"].iloc[0]
    else:
        school = event.school_id
        if school not in set(schools["sourced_id"]):
            raise ValueError(f"{school!r} is not an active school")
        if not shared[schools["sourced_id"] == school].iloc[0]:
            raise ValueError(f"{school!r} is the only school of its level: "
                             "its students would have nowhere to go")
    level = schools.loc[schools["sourced_id"] == school, "school_level"].iloc[0]
    same = schools[(schools["school_level"] == level) & (schools["sourced_id"] != school)]
    to_school = same["sourced_id"].iloc[0]

    day.retire("orgs", "sourced_id = $s", s=school)
    day.retire("courses", "org_id = $s", s=school)
    classes = day.retire("classes", "school_id = $s", s=school)
    day.retire("enrollments", "school_id = $s", s=school)
    who = day.frame(f"""SELECT sourced_id AS user_id, grades[1] AS grade FROM ({ACTIVE_STUDENTS})
                        WHERE primary_org_id = $s ORDER BY user_id""", s=school)
    enrollments = _move_students(day, who, to_school) if len(who) else 0
    day.sql("""UPDATE users SET
                   org_ids = list_distinct(list_transform(org_ids,
                                           lambda o: CASE WHEN o = $s THEN $to ELSE o END)),
                   primary_org_id = CASE WHEN primary_org_id = $s THEN $to ELSE primary_org_id END,
                   date_last_modified = $now
               WHERE status = 'active' AND list_contains(org_ids, $s)""", s=school, to=to_school)
    return {"school_id": school, "to_school_id": to_school, "moved_students": len(who),
            "retired_classes": classes, "enrollments": enrollments}


def _source_id_change(day: Day, event: SourceIdChange) -> dict:
    everyone = "SELECT * FROM users WHERE status = 'active'"
    rows = ACTIVE_STUDENTS if event.user_id is None else everyone
    user_id = _one(day, "source_id_change", rows, event.user_id, "user")
    state_id = day.value("SELECT state_id FROM users WHERE sourced_id = $id", id=user_id)
    return {"user_id": user_id, "new_user_id": day.renumber(user_id), "state_id": state_id}
