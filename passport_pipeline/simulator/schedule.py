"""One school's courses, sections, rosters and teaching assignments for a school year.

Elementary schools: one course per grade and one homeroom section per class group of at most
:data:`HOMEROOM` students, for the whole school year, one teacher each.

Secondary schools: each grade is split into cohorts of at most :data:`COHORT` students that
share a timetable of :data:`PERIODS` slots per semester — four core courses of the grade and
four elective slots (arts, PE/health, world languages, technology). Slot ``k`` of cohort ``C``
meets in period ``(k + C) mod 8``. Every student takes the four core sections and two to four
of the electives, so six to eight classes per semester without timetable clashes. A teacher
teaches one slot for a run of at most six consecutive cohorts, both semesters, so no teacher is
in two rooms at once.

Schools then get specialists (inclusion, special education, reading) until they have about one
teacher per :data:`STUDENTS_PER_TEACHER` students; specialists co-teach core sections as
non-primary teachers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

HOMEROOM = 26
COHORT = 28
PERIODS = 8
RUN = 6
STUDENTS_PER_TEACHER = 16

ELEMENTARY_SUBJECT = ("Self-Contained", "24")
SUBJECTS = {
    "ELA": ("English Language and Literature", "01"),
    "MTH": ("Mathematics", "02"),
    "SCI": ("Life and Physical Sciences", "03"),
    "SOC": ("Social Sciences and History", "04"),
    "ART": ("Fine and Performing Arts", "05"),
    "WLG": ("World Languages", "06"),
    "PEH": ("Physical, Health, and Safety Education", "08"),
    "TEC": ("Computer and Information Sciences", "10"),
}
CORE = {
    "06": ("English 6", "Math 6", "Science 6", "Social Studies 6"),
    "07": ("English 7", "Math 7", "Science 7", "Social Studies 7"),
    "08": ("English 8", "Pre-Algebra", "Science 8", "US History 8"),
    "09": ("English 9", "Algebra I", "Biology", "World History"),
    "10": ("English 10", "Geometry", "Chemistry", "World Geography"),
    "11": ("English 11", "Algebra II", "Physics", "US History"),
    "12": ("English 12", "Precalculus", "Environmental Science", "Government and Economics"),
}
CORE_SUBJECTS = ("ELA", "MTH", "SCI", "SOC")
ELECTIVES = {
    "middle": (("ART", ("Art", "Band", "Choir")),
               ("PEH", ("Physical Education", "Health")),
               ("WLG", ("Spanish", "French")),
               ("TEC", ("Computer Literacy", "STEM Lab", "Keyboarding"))),
    "high": (("ART", ("Art", "Band", "Choir", "Theater")),
             ("PEH", ("Physical Education", "Health")),
             ("WLG", ("Spanish I", "Spanish II", "French I")),
             ("TEC", ("Computer Science", "Web Design", "Robotics", "Digital Media"))),
}


@dataclass(frozen=True)
class Terms:
    """Session numbers a school year's sections run in."""

    year: int
    semesters: tuple[int, int]


@dataclass
class Schedule:
    """A school's year: frames for courses, classes, rosters and teaching assignments.

    ``rosters`` has ``student_no, class_no``; ``teaching`` has ``teacher`` (0-based index of
    the school's teachers), ``class_no`` and ``primary``; ``teachers`` counts them all.
    """

    courses: pd.DataFrame
    classes: pd.DataFrame
    rosters: pd.DataFrame
    teaching: pd.DataFrame
    teachers: int


def _courses(level: str, grades: list[str], first_no: int, year_no: int) -> pd.DataFrame:
    rows = []
    if level == "elementary":
        for g in grades:
            label = "Kindergarten" if g == "KG" else f"Grade {int(g)}"
            rows.append((label, f"HR{g}", [g], ELEMENTARY_SUBJECT))
    else:
        for g in grades:
            for title, subject in zip(CORE[g], CORE_SUBJECTS):
                rows.append((title, f"{subject}{g}", [g], SUBJECTS[subject]))
        for subject, titles in ELECTIVES[level]:
            for i, title in enumerate(titles):
                rows.append((title, f"{subject}{i + 1:02d}", list(grades), SUBJECTS[subject]))
    return pd.DataFrame({
        "no": first_no + np.arange(len(rows)),
        "title": [r[0] for r in rows], "course_code": [r[1] for r in rows],
        "grades": [r[2] for r in rows], "subjects": [[r[3][0]] for r in rows],
        "subject_codes": [[r[3][1]] for r in rows], "school_year_no": year_no,
    })


def _split(rng: np.random.Generator, grades: np.ndarray, size: int) -> tuple[np.ndarray, list]:
    """Group each grade's students into balanced groups of at most ``size``; global group ids."""
    group = np.empty(len(grades), dtype=np.int64)
    group_grades, offset = [], 0
    for g in sorted(set(grades)):
        members = np.flatnonzero(grades == g)
        k = -(-len(members) // size)
        group[rng.permutation(members)] = offset + np.arange(len(members)) % k
        group_grades += [g] * k
        offset += k
    return group, group_grades


def _specialists(n_students: int, class_teachers: int) -> int:
    return max(0, round(n_students / STUDENTS_PER_TEACHER) - class_teachers)


def elementary(rng, student_nos, grades, *, first_course_no, first_class_no, terms) -> Schedule:
    """Homerooms for an elementary school's students."""
    group, group_grades = _split(rng, grades, HOMEROOM)
    courses = _courses("elementary", sorted(set(grades)), first_course_no, terms.year)
    course_of = dict(zip([c[0] for c in courses["grades"]], courses["no"]))
    label = dict(zip([c[0] for c in courses["grades"]], courses["title"]))
    letters = [chr(65 + i - group_grades.index(g)) for i, g in enumerate(group_grades)]
    n = len(group_grades)
    classes = pd.DataFrame({
        "no": first_class_no + np.arange(n),
        "title": [f"{label[g]} Homeroom {x}" for g, x in zip(group_grades, letters)],
        "class_code": [f"HR{g}-{x}" for g, x in zip(group_grades, letters)],
        "class_type": "homeroom", "location": [f"Room {101 + i}" for i in range(n)],
        "grades": [[g] for g in group_grades], "subjects": [[ELEMENTARY_SUBJECT[0]]] * n,
        "course_no": [course_of[g] for g in group_grades], "term_no": terms.year, "period": "HR",
    })
    specialists = _specialists(len(grades), n)
    co_teaching = pd.DataFrame({"teacher": n + np.arange(n) % max(specialists, 1),
                                "class_no": classes["no"], "primary": False})
    teaching = pd.concat([
        pd.DataFrame({"teacher": np.arange(n), "class_no": classes["no"], "primary": True}),
        co_teaching if specialists else co_teaching.iloc[:0],
    ], ignore_index=True)
    rosters = pd.DataFrame({"student_no": student_nos, "class_no": first_class_no + group})
    return Schedule(courses, classes, rosters, teaching, n + specialists)


def secondary(rng, level, student_nos, grades, *, first_course_no, first_class_no,
              terms) -> Schedule:
    """Cohort timetables for a middle or high school's students, both semesters."""
    cohort, cohort_grades = _split(rng, grades, COHORT)
    n_cohorts = len(cohort_grades)
    courses = _courses(level, sorted(set(grades)), first_course_no, terms.year)
    course_no = dict(zip(courses["title"], courses["no"]))
    course_code = dict(zip(courses["title"], courses["course_code"]))
    course_grades = dict(zip(courses["title"], courses["grades"]))
    electives = ELECTIVES[level]
    picks = rng.integers(0, 12, size=(n_cohorts, PERIODS))
    runs = -(-n_cohorts // RUN)
    teacher_of = lambda k, c: k * runs + c * runs // n_cohorts  # noqa: E731

    rows = []
    for s, term_no in enumerate(terms.semesters):
        for c, g in enumerate(cohort_grades):
            for k in range(PERIODS):
                if k < 4:
                    title, subject = CORE[g][k], CORE_SUBJECTS[k]
                else:
                    subject, titles = electives[k - 4]
                    shift = s if subject == "PEH" else s * (subject != "WLG")
                    title = titles[(picks[c, k] + shift) % len(titles)]
                teacher = teacher_of(k, c)
                rows.append((s, c, k, title, subject, term_no, (k + c) % PERIODS + 1, teacher))
    plan = pd.DataFrame(rows, columns=["s", "c", "k", "title", "subject", "term_no", "period",
                                       "teacher"])
    n = len(plan)
    section = plan.groupby(["s", "title"]).cumcount() + 1
    classes = pd.DataFrame({
        "no": first_class_no + np.arange(n),
        "title": plan["title"] + " - Period " + plan["period"].astype(str),
        "class_code": [f"{course_code[t]}-{s + 1}{x:02d}"
                       for t, s, x in zip(plan["title"], plan["s"], section)],
        "class_type": "scheduled", "location": "Room " + (101 + plan["teacher"]).astype(str),
        "grades": [course_grades[t] for t in plan["title"]],
        "subjects": [[SUBJECTS[x][0]] for x in plan["subject"]],
        "course_no": plan["title"].map(course_no), "term_no": plan["term_no"],
        "period": plan["period"].astype(str),
    })
    class_teachers = PERIODS * runs
    specialists = _specialists(len(grades), class_teachers)
    core = plan["k"] < 4
    co_teacher = class_teachers + plan["k"] + 4 * (plan["c"] // RUN)
    co = core & (co_teacher < class_teachers + specialists)
    teaching = pd.concat([
        pd.DataFrame({"teacher": plan["teacher"], "class_no": classes["no"], "primary": True}),
        pd.DataFrame({"teacher": co_teacher[co], "class_no": classes["no"][co], "primary": False}),
    ], ignore_index=True)

    # Each student takes the core slots and 2-4 of the cohort's four elective slots.
    m = len(student_nos)
    rosters = []
    for s in range(2):
        takes = rng.integers(2, 5, m)
        rank = np.argsort(rng.random((m, 4)), axis=1).argsort(axis=1)
        chosen = np.hstack([np.ones((m, 4), dtype=bool), rank < takes[:, None]])
        student, slot = np.nonzero(chosen)
        index = s * n_cohorts * PERIODS + cohort[student] * PERIODS + slot
        rosters.append(pd.DataFrame({"student_no": student_nos[student],
                                     "class_no": first_class_no + index}))
    return Schedule(courses, classes, pd.concat(rosters, ignore_index=True), teaching,
                    class_teachers + specialists)
