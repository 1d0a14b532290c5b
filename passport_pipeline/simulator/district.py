"""The synthetic district generator, and generated districts cached on disk.

:func:`generate_district` writes a whole Skyward district into a new store: one district org;
elementary (KG-05), middle (06-08) and high (09-12) schools; a district-wide calendar; courses,
sections and rosters per school (see :mod:`.schedule`); students with their families and
demographics (see :mod:`.people`); teachers, specialists, aides, counselors, principals and
district administrators; a few students enrolled in two schools; then the dirty data asked for
(see :mod:`.dirty`). Ids follow the scheme in :mod:`.rows`.

Everything is drawn from numpy Generators seeded with ``(seed, stream, school)``, so the same
seed, size and knobs give byte-identical tables, and the district is written school by school
in batches, so memory is bounded by a batch, not by the district.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from passport_pipeline.simulator import store
from passport_pipeline.simulator.dirty import DirtyData, apply_dirty_data
from passport_pipeline.simulator.people import (
    GRADES, Style, district_style, draw_families, draw_staff, names,
)
from passport_pipeline.simulator.rows import Appender, id_sql, insert, refresh_contact_orgs
from passport_pipeline.simulator.schedule import Schedule, Terms, elementary, secondary
from passport_pipeline.simulator.school_calendar import (
    DISTRICT_NO, school_year_of, school_year_sessions, simulated_now,
)

GENERATOR_VERSION = 1
DEFAULT_TODAY = date(2026, 10, 1)
MIN_STUDENTS, MAX_STUDENTS = 100, 1_000_000
LEVELS = {"elementary": GRADES[:6], "middle": GRADES[6:9], "high": GRADES[9:]}
SCHOOL_SIZE = {"elementary": 450, "middle": 800, "high": 1500}
PARTNER_LEVEL = {"elementary": "middle", "middle": "high", "high": "middle"}
DUAL_ENROLLED = 0.005
SHARED_STAFF = 0.1
"""Share of staff without classes of their own (specialists, counselors, aides) who also work
at a partner school; every school has at least one."""
HISTORY = timedelta(days=180)
"""Initial rows were last modified at some time in this period before ``today``."""
MEMORY_LIMIT = "1536MB"
"""DuckDB's memory while generating: it spills to disk beyond this, keeping a million-student
generation well inside a shared machine's memory."""


@dataclass(frozen=True)
class School:
    """A planned school: its number, level, name, students per grade and partner school."""

    no: int
    level: str
    name: str
    grade_counts: dict[str, int]
    partner_no: int


def plan_schools(seed: int, students: int) -> list[School]:
    """Schools per level sized around :data:`SCHOOL_SIZE`, at least one of each level."""
    rng = np.random.default_rng([seed, 0])
    per_grade = rng.multinomial(students, np.full(len(GRADES), 1 / len(GRADES)))
    by_grade = dict(zip(GRADES, per_grade))
    drafts = []
    for level, grades in LEVELS.items():
        total = sum(by_grade[g] for g in grades)
        k = max(1, round(total / SCHOOL_SIZE[level]))
        share = rng.uniform(0.6, 1.4, k)
        counts = np.array([rng.multinomial(by_grade[g], share / share.sum()) for g in grades]).T
        drafts += [(level, dict(zip(grades, map(int, row)))) for row in counts]
    pool = names()
    first = np.concatenate([pool.female, pool.male])
    picks = rng.choice(len(first) * len(pool.last), size=len(drafts), replace=False)
    nos = {level: [] for level in LEVELS}
    for i, (level, _) in enumerate(drafts):
        nos[level].append(DISTRICT_NO + 1 + i)
    schools = []
    for i, ((level, counts), pick) in enumerate(zip(drafts, picks)):
        no = DISTRICT_NO + 1 + i
        same = nos[level]
        others = same if len(same) > 1 else nos[PARTNER_LEVEL[level]]
        partner = others[(others.index(no) + 1) % len(others)] if no in others else others[0]
        name = f"{first[pick // len(pool.last)]} {pool.last[pick % len(pool.last)]}"
        schools.append(School(no, level, f"{name} {level.title()} School", counts, partner))
    return schools


def generate_district(
    path: str | Path, *, seed: int, students: int, dirty: DirtyData = DirtyData(),
    today: date = DEFAULT_TODAY,
) -> dict[str, int]:
    """Write a complete district of about ``students`` students into a new store at ``path``.

    Returns :func:`store.counts` of the result.
    """
    if not MIN_STUDENTS <= students <= MAX_STUDENTS:
        raise ValueError(f"students must be {MIN_STUDENTS}..{MAX_STUDENTS}, got {students}")
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists: generate_district writes a new store only")
    con = store.connect(path)
    con.execute("SET memory_limit = $limit", {"limit": MEMORY_LIMIT})
    try:
        _Writer(con, seed, today).district(students)
        apply_dirty_data(con, dirty, seed)
        store.finalize(con)
        store.set_meta(con, seed=seed, students=students, generator_version=GENERATOR_VERSION,
                       today=today.isoformat(), now=simulated_now(today).isoformat(),
                       school_year=school_year_of(today), day=0)
        return store.counts(con)
    finally:
        con.close()


def staff_roles(level: str, students: int) -> list[str]:
    """A school's staff besides its teachers: a principal, assistant principals (secondary),
    counselors and aides."""
    secondary = level != "elementary"
    return (["principal"] + ["administrator"] * (round(students / 700) if secondary else 0)
            + ["counselor"] * max(int(secondary), round(students / 400))
            + ["aide"] * round(students / (150 if secondary else 60)))


class _Writer:
    """Writes one district, school by school; holds the next free number of every table."""

    def __init__(self, con, seed: int, today: date):
        self.con, self.seed = con, seed
        self.style: Style = district_style(seed)
        self.end_year = school_year_of(today)
        self.midnight = np.datetime64(today, "s")
        self.next = dict.fromkeys(store.ENTITY_TABLES, 1)
        self.out = Appender(con)

    def take(self, table: str, n: int) -> int:
        """Reserve ``n`` numbers for ``table``; return the first."""
        first = self.next[table]
        self.next[table] += n
        return first

    def stamps(self, rng: np.random.Generator):
        """``date_last_modified`` of new rows: some time in the :data:`HISTORY` before today."""
        seconds = int(HISTORY.total_seconds())
        return lambda n: self.midnight - rng.integers(60, seconds, n).astype("timedelta64[s]")

    def district(self, students: int) -> None:
        rng = np.random.default_rng([self.seed, 2])
        stamp = self.stamps(rng)
        schools = plan_schools(self.seed, students)
        self.take("orgs", DISTRICT_NO + len(schools))
        code = int(rng.integers(100_000, 1_000_000))
        levels = [s.level for s in schools]
        insert(self.con, "orgs", pd.DataFrame({
            "no": [DISTRICT_NO] + [s.no for s in schools], "dlm": stamp(len(schools) + 1),
            "name": [self.style.name] + [s.name for s in schools],
            "type": ["district"] + ["school"] * len(schools),
            "identifier": [str(code)] + [f"{code}-{s.no:04d}" for s in schools],
            "parent_no": pd.array([None] + [DISTRICT_NO] * len(schools), dtype="Int64"),
            "school_level": [None] + levels,
            "grade_low": [None] + [LEVELS[x][0] for x in levels],
            "grade_high": [None] + [LEVELS[x][-1] for x in levels],
        }))
        sessions = school_year_sessions(self.end_year, self.take("academic_sessions", 7), stamp(7))
        insert(self.con, "academic_sessions", sessions)
        no = [int(x) for x in sessions["no"]]
        self.terms = Terms(year=no[0], semesters=(no[1], no[2]))
        self.term_dates = sessions.set_index("no")[["start_date", "end_date"]]

        admins = max(2, round(students / 2500))
        self.out.add("users", draw_staff(
            rng, self.style, nos=self.take("users", admins) + np.arange(admins),
            roles=np.full(admins, "administrator"), org_nos=np.full(admins, DISTRICT_NO),
            stamp=stamp))
        for school in schools:
            self.school(school)
        self.out.flush()
        self.dual_enrollments(schools, round(DUAL_ENROLLED * students) or 1)

    def school(self, school: School) -> None:
        """A school's students and families, courses and sections, staff and enrollments."""
        rng = np.random.default_rng([self.seed, 1, school.no])
        stamp = self.stamps(rng)
        grades = np.repeat(list(school.grade_counts), list(school.grade_counts.values()))
        n = len(grades)
        student_nos = self.next["users"] + np.arange(n)
        people = draw_families(rng, self.style, student_nos=student_nos, grades=grades,
                               org_nos=school.no, first_contact_no=student_nos[-1] + 1,
                               start_year=self.end_year - 1, stamp=stamp)
        self.take("users", len(people["users"]))
        for table, frame in people.items():
            self.out.add(table, frame)

        numbers = {"first_course_no": self.next["courses"], "first_class_no": self.next["classes"],
                   "terms": self.terms}
        if school.level == "elementary":
            schedule = elementary(rng, student_nos, grades, **numbers)
        else:
            schedule = secondary(rng, school.level, student_nos, grades, **numbers)
        for table in ("courses", "classes"):
            frame = getattr(schedule, table)
            self.take(table, len(frame))
            self.out.add(table, frame.assign(school_no=school.no, dlm=stamp(len(frame))))

        staff_nos = self.staff(rng, stamp, school, schedule, n)
        self.enrollments(stamp, school, schedule, staff_nos)

    def staff(self, rng, stamp, school: School, schedule: Schedule, students: int) -> np.ndarray:
        """The school's teachers (by schedule index) and other staff; returns their numbers."""
        roles = np.array(["teacher"] * schedule.teachers + staff_roles(school.level, students))
        nos = self.take("users", len(roles)) + np.arange(len(roles))
        teaching = schedule.teaching
        eligible = ~np.isin(np.arange(len(roles)), teaching["teacher"][teaching["primary"]])
        eligible &= roles != "principal"
        shared = eligible & (rng.random(len(roles)) < SHARED_STAFF)
        shared[np.flatnonzero(eligible)[:1]] = True
        self.out.add("users", draw_staff(
            rng, self.style, nos=nos, roles=roles, org_nos=np.full(len(roles), school.no),
            org2_nos=np.where(shared, school.partner_no, None), stamp=stamp))
        return nos

    def enrollments(self, stamp, school: School, schedule: Schedule, staff_nos) -> None:
        """Students' and teachers' enrollments, dated by their class's term."""
        teaching = schedule.teaching
        rosters = pd.concat([
            schedule.rosters.rename(columns={"student_no": "user_no"})
            .assign(role="student", primary=False),
            pd.DataFrame({"user_no": staff_nos[teaching["teacher"]],
                          "class_no": teaching["class_no"], "role": "teacher",
                          "primary": teaching["primary"]}),
        ], ignore_index=True)
        term = schedule.classes.set_index("no")["term_no"]
        span = self.term_dates.loc[term[rosters["class_no"]].to_numpy()]
        n = len(rosters)
        self.out.add("enrollments", rosters.assign(
            no=self.take("enrollments", n) + np.arange(n), school_no=school.no,
            begin_date=span["start_date"].to_numpy(), end_date=span["end_date"].to_numpy(),
            dlm=stamp(n),
        ))

    def dual_enrollments(self, schools: list[School], k: int) -> None:
        """Enroll ``k`` students in a class per term at their school's partner school too (their
        contacts then belong to both schools)."""
        partners = pd.DataFrame({"school_no": [s.no for s in schools],
                                 "partner_no": [s.partner_no for s in schools]})
        self.con.register("partners", partners)
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _dual AS
            WITH dual AS (
                SELECT u.sourced_id AS user_id, u.grades[1] AS grade,
                       {id_sql('org', 'p.partner_no')} AS partner_id
                FROM users u JOIN partners p ON u.primary_org_id = {id_sql('org', 'p.school_no')}
                WHERE u.role = 'student'
                ORDER BY md5($salt || u.sourced_id) LIMIT $k
            )
            SELECT d.user_id, c.sourced_id AS class_id, c.school_id, s.start_date, s.end_date
            FROM dual d JOIN classes c ON c.school_id = d.partner_id
            JOIN academic_sessions s ON s.sourced_id = c.term_ids[1]
            QUALIFY row_number() OVER (PARTITION BY d.user_id, c.term_ids[1]
                                       ORDER BY NOT list_contains(c.grades, d.grade),
                                                md5(d.user_id || c.sourced_id)) = 1
            """,
            {"salt": f"{self.seed}:dual:", "k": k},
        )
        self.con.unregister("partners")
        [(count,)] = self.con.execute("SELECT count(*) FROM _dual").fetchall()
        first = self.take("enrollments", count)
        number = f"{first} - 1 + row_number() OVER (ORDER BY user_id, class_id)"
        self.con.execute(
            f"""
            INSERT INTO enrollments BY NAME
            SELECT {id_sql('enr', number)} AS sourced_id, u.date_last_modified, user_id,
                   class_id, d.school_id, 'student' AS role, false AS "primary",
                   start_date AS begin_date, end_date AS end_date
            FROM _dual d JOIN users u ON u.sourced_id = d.user_id;
            UPDATE users SET org_ids = list_append(users.org_ids, d.school_id)
            FROM (SELECT DISTINCT user_id, school_id FROM _dual) d
            WHERE users.sourced_id = d.user_id;
            """
        )
        refresh_contact_orgs(self.con, students="SELECT user_id FROM _dual")
        self.con.execute("DROP TABLE _dual")


def district_file_name(seed: int, students: int, dirty: DirtyData = DirtyData()) -> str:
    """The cache file name of a district: seed, size, dirty knobs and generator version."""
    return f"district-s{seed}-n{students}-{dirty.key()}-v{GENERATOR_VERSION}.duckdb"


SIMULATOR_DIR_ENV = "PASSPORT_SIMULATOR_DIR"


def default_root() -> Path:
    """Where districts are generated: ``PASSPORT_SIMULATOR_DIR``, else ``data/simulator`` under
    the repository root (generated, git-ignored data)."""
    if os.environ.get(SIMULATOR_DIR_ENV):
        return Path(os.environ[SIMULATOR_DIR_ENV])
    return Path(__file__).resolve().parents[2] / "data" / "simulator"


def ensure_district(
    seed: int, students: int, dirty: DirtyData = DirtyData(), root: str | Path | None = None
) -> Path:
    """The path of a pristine generated district, generating it only if it is not cached yet.

    The district is written under a temporary name and renamed when complete, so a crash never
    leaves a half district that looks complete. Do not write to the returned file: serve a
    :func:`working_copy` of it.
    """
    folder = Path(root) if root is not None else default_root()
    path = folder / district_file_name(seed, students, dirty)
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# generated districts\n*\n")
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    for leftover in (partial, Path(f"{partial}.wal")):
        leftover.unlink(missing_ok=True)
    generate_district(partial, seed=seed, students=students, dirty=dirty)
    os.replace(partial, path)
    return path


def working_copy(pristine: str | Path, dest: str | Path) -> Path:
    """Copy a pristine district to ``dest`` (a server may then change its copy); return ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pristine, dest)
    return dest
