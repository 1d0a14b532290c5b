"""The synthetic district generator: structure, sizes, integrity, dirty data and caching."""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

import duckdb
import pytest
from faker.providers.person.en_US import Provider as PersonProvider

from passport_pipeline.simulator import store
from passport_pipeline.simulator.district import (
    DEFAULT_TODAY, ensure_district, generate_district, working_copy,
)
from passport_pipeline.simulator.dirty import DirtyData

STAFF_ROLES = ("teacher", "aide", "administrator", "counselor", "principal")


def table_hashes(path: Path) -> dict[str, str]:
    """One md5 per table over all its rows in a stable order."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        order = {"student_contacts": "student_id, contact_id", "meta": "key"}
        digest = "SELECT md5(string_agg(CAST(t AS VARCHAR), '|' ORDER BY {})) FROM {} t"
        return {
            table: con.execute(digest.format(order.get(table, "sourced_id"), table)).fetchall()[0][0]
            for table in (*store.ENTITY_TABLES, "student_contacts", "meta")
        }
    finally:
        con.close()


@pytest.fixture
def con(small_district):
    con = store.connect(small_district, read_only=True)
    yield con
    con.close()


def rows(con, sql: str, **params) -> list[tuple]:
    return con.execute(sql, params).fetchall()


def value(con, sql: str, **params):
    return rows(con, sql, **params)[0][0]


def test_same_seed_gives_identical_tables_and_another_seed_does_not(tmp_path):
    paths = [tmp_path / f"{name}.duckdb" for name in ("a", "b", "c")]
    generate_district(paths[0], seed=3, students=150)
    generate_district(paths[1], seed=3, students=150)
    generate_district(paths[2], seed=4, students=150)
    first, second, third = map(table_hashes, paths)
    assert first == second
    assert first["users"] != third["users"]


def test_one_district_with_every_school_level_and_its_grade_range(con):
    assert rows(con, "SELECT type, count(*) FROM orgs GROUP BY type ORDER BY type") == [
        ("district", 1), ("school", 3)]
    levels = rows(con, """SELECT school_level, grade_low, grade_high FROM orgs
                          WHERE type = 'school' ORDER BY school_level""")
    assert levels == [("elementary", "KG", "05"), ("high", "09", "12"), ("middle", "06", "08")]
    outside = value(con, """
        SELECT count(*) FROM users u JOIN orgs o ON o.sourced_id = u.primary_org_id
        WHERE u.role = 'student' AND NOT list_contains(
            CASE o.school_level WHEN 'elementary' THEN ['KG','01','02','03','04','05']
                                WHEN 'middle' THEN ['06','07','08']
                                ELSE ['09','10','11','12'] END, u.grades[1])""")
    assert outside == 0


def test_calendar_is_a_school_year_with_two_semesters_and_four_quarters(con):
    sessions = rows(con, """SELECT s.type, p.type, s.school_year FROM academic_sessions s
                            LEFT JOIN academic_sessions p ON p.sourced_id = s.parent_id
                            ORDER BY s.sourced_id""")
    assert [s[0] for s in sessions] == ["schoolYear"] + ["semester"] * 2 + ["gradingPeriod"] * 4
    assert [s[1] for s in sessions] == [None] + ["schoolYear"] * 2 + ["semester"] * 4
    assert {s[2] for s in sessions} == {2027}
    year = rows(con, "SELECT start_date, end_date FROM academic_sessions WHERE type = 'schoolYear'")
    assert year[0][0] <= DEFAULT_TODAY <= year[0][1]


def test_about_one_teacher_per_sixteen_students_plus_other_staff(con):
    counts = dict(rows(con, "SELECT role, count(*) FROM users GROUP BY role"))
    assert counts["student"] == 300
    assert 0.9 <= counts["teacher"] / (300 / 16) <= 1.6
    assert counts["principal"] == 3
    assert counts["counselor"] >= 2 and counts["aide"] >= 1 and counts["administrator"] >= 2


def test_teachers_ratio_holds_at_scale(tmp_path):
    counts = generate_district(tmp_path / "d.duckdb", seed=5, students=4000)
    assert 0.95 <= counts["users:teacher"] / (4000 / 16) <= 1.15
    assert counts["orgs"] - 1 >= 5


def test_every_student_has_one_to_three_contacts_and_a_guardian(con):
    per_student = rows(con, """
        SELECT count(*) AS n, count(*) FILTER (WHERE is_guardian) AS guardians
        FROM users u LEFT JOIN student_contacts sc ON sc.student_id = u.sourced_id
        WHERE u.role = 'student' GROUP BY u.sourced_id""")
    assert {n for n, _ in per_student} <= {1, 2, 3}
    assert min(g for _, g in per_student) >= 1
    shared = value(con, """SELECT count(*) FROM (SELECT contact_id FROM student_contacts
                                                  GROUP BY contact_id HAVING count(*) > 1)""")
    assert shared > 0
    kinds = dict(rows(con, """SELECT role, count(*) FROM users
                              WHERE role IN ('parent', 'guardian', 'relative') GROUP BY role"""))
    assert set(kinds) == {"parent", "guardian", "relative"}
    flags = rows(con, """SELECT bool_or(emergency_contact), bool_and(emergency_contact),
                                bool_or(NOT custodial), bool_or(NOT pickup_allowed)
                         FROM student_contacts""")
    assert flags == [(True, False, True, True)]
    siblings_share_names = value(con, """
        SELECT bool_and(st.family_name = c.family_name) FROM student_contacts sc
        JOIN users st ON st.sourced_id = sc.student_id JOIN users c ON c.sourced_id = sc.contact_id
        WHERE sc.contact_order = 1""")
    assert siblings_share_names


def test_secondary_students_take_six_to_eight_classes_per_semester(con):
    per_semester = rows(con, """
        SELECT count(*) FROM enrollments e
        JOIN users u ON u.sourced_id = e.user_id AND u.primary_org_id = e.school_id
        JOIN orgs o ON o.sourced_id = e.school_id
        JOIN classes c ON c.sourced_id = e.class_id
        JOIN academic_sessions s ON s.sourced_id = c.term_ids[1]
        WHERE e.role = 'student' AND o.school_level <> 'elementary' AND s.type = 'semester'
        GROUP BY e.user_id, s.sourced_id""")
    assert len(per_semester) == 2 * value(con, """
        SELECT count(*) FROM users u JOIN orgs o ON o.sourced_id = u.primary_org_id
        WHERE u.role = 'student' AND o.school_level <> 'elementary'""")
    assert {n for (n,) in per_semester} == {6, 7, 8}


def test_elementary_students_have_one_homeroom(con):
    homerooms = rows(con, """
        SELECT count(*) FILTER (WHERE c.class_type = 'homeroom'), count(*)
        FROM users u JOIN orgs o ON o.sourced_id = u.primary_org_id
        JOIN enrollments e ON e.user_id = u.sourced_id AND e.school_id = u.primary_org_id
        JOIN classes c ON c.sourced_id = e.class_id
        WHERE u.role = 'student' AND o.school_level = 'elementary' GROUP BY u.sourced_id""")
    assert set(homerooms) == {(1, 1)}


def test_every_class_has_one_primary_teacher_with_no_timetable_clash(con):
    assert set(rows(con, """
        SELECT count(*) FILTER (WHERE e."primary") FROM classes c
        JOIN enrollments e ON e.class_id = c.sourced_id AND e.role = 'teacher'
        GROUP BY c.sourced_id""")) == {(1,)}
    assert value(con, """SELECT count(*) FILTER (WHERE NOT "primary") FROM enrollments
                         WHERE role = 'teacher'""") > 0
    clashes = value(con, """
        SELECT count(*) FROM (
            SELECT e.user_id FROM enrollments e JOIN classes c ON c.sourced_id = e.class_id
            WHERE c.class_type = 'scheduled'
            GROUP BY e.user_id, c.term_ids[1], c.periods[1] HAVING count(*) > 1
               AND bool_and(e."primary" OR e.role = 'student'))""")
    assert clashes == 0


def test_references_all_resolve(con):
    orphans = {
        "enrollment users": """SELECT count(*) FROM enrollments WHERE user_id NOT IN
                                  (SELECT sourced_id FROM users)""",
        "enrollment classes": """SELECT count(*) FROM enrollments WHERE class_id NOT IN
                                    (SELECT sourced_id FROM classes)""",
        "class courses": """SELECT count(*) FROM classes WHERE course_id NOT IN
                               (SELECT sourced_id FROM courses)""",
        "class schools": """SELECT count(*) FROM classes WHERE school_id NOT IN
                               (SELECT sourced_id FROM orgs)""",
        "class terms": """SELECT count(*) FROM classes, unnest(term_ids) t(term)
                          WHERE term NOT IN (SELECT sourced_id FROM academic_sessions)""",
        "course schools": """SELECT count(*) FROM courses WHERE org_id NOT IN
                                (SELECT sourced_id FROM orgs)""",
        "contact students": """SELECT count(*) FROM student_contacts WHERE student_id NOT IN
                                  (SELECT sourced_id FROM users WHERE role = 'student')""",
        "contact people": """SELECT count(*) FROM student_contacts WHERE contact_id NOT IN
                                (SELECT sourced_id FROM users)""",
        "user orgs": """SELECT count(*) FROM users, unnest(org_ids) o(org)
                        WHERE org NOT IN (SELECT sourced_id FROM orgs)""",
        "demographics": """SELECT count(*) FROM demographics WHERE sourced_id NOT IN
                              (SELECT sourced_id FROM users WHERE role = 'student')""",
    }
    assert {name: value(con, sql) for name, sql in orphans.items()} == dict.fromkeys(orphans, 0)
    assert value(con, "SELECT count(*) FROM users WHERE role = 'student'") == value(
        con, "SELECT count(*) FROM demographics")


def test_ids_sort_stably_and_native_ids_are_unique(con):
    unnumbered = ("enrollments", "demographics")
    for table in store.ENTITY_TABLES:
        ids, natives, total, pattern = rows(con, f"""
            SELECT count(DISTINCT sourced_id), count(DISTINCT {'NULL' if table in unnumbered
                                                               else 'native_id'}),
                   count(*), bool_and(regexp_full_match(sourced_id, '[a-z]{{3}}-[0-9]{{10}}'))
            FROM {table}""")[0]
        assert ids == total and pattern, table
        assert table in unnumbered or natives == total, table
    assert value(con, "SELECT count(DISTINCT state_id) = count(*) FROM users WHERE role = 'student'")


def test_some_staff_work_in_two_schools_and_some_students_attend_two(con):
    two = dict(rows(con, """SELECT role = 'student', count(*) FROM users WHERE len(org_ids) = 2
                            AND role NOT IN ('parent', 'guardian', 'relative') GROUP BY ALL"""))
    assert two.get(True, 0) >= 1 and two.get(False, 0) >= 1
    dual = rows(con, """SELECT count(DISTINCT e.school_id) FROM users u
                        JOIN enrollments e ON e.user_id = u.sourced_id
                        WHERE u.role = 'student' AND len(u.org_ids) = 2 GROUP BY u.sourced_id""")
    assert {n for (n,) in dual} == {2}


def test_names_and_emails_are_realistic(con):
    given = {r[0] for r in rows(con, "SELECT DISTINCT given_name FROM users")}
    faker_first = set(PersonProvider.first_names_female) | set(PersonProvider.first_names_male)
    assert given <= faker_first and len(given) > 100
    family = {r[0] for r in rows(con, "SELECT DISTINCT family_name FROM users")}
    assert family <= set(PersonProvider.last_names)
    domains = dict(rows(con, """SELECT role, list_sort(list_distinct(list(split_part(email, '@', 2))))
                                FROM users WHERE role IN ('student', 'teacher', 'parent')
                                GROUP BY role"""))
    [staff_domain] = domains["teacher"]
    assert staff_domain.endswith(".k12.us") and domains["student"] == [f"students.{staff_domain}"]
    assert set(domains["parent"]) <= {"gmail.com", "yahoo.com", "hotmail.com"}
    assert value(con, "SELECT count(DISTINCT email) = count(*) FROM users")


def test_birth_dates_match_grades(con):
    ages = rows(con, """SELECT grades[1], min(date_diff('year', birth_date, DATE '2026-09-01')),
                               max(date_diff('year', birth_date, DATE '2026-09-01'))
                        FROM users WHERE role = 'student' GROUP BY ALL""")
    for grade, youngest, oldest in ages:
        age = 5 if grade == "KG" else 5 + int(grade)
        assert age <= youngest <= oldest <= age + 1, grade


def test_last_modified_spread_over_months_before_today(con):
    first, last = rows(con, "SELECT min(date_last_modified), max(date_last_modified) FROM users")[0]
    assert last.date() < DEFAULT_TODAY
    assert (DEFAULT_TODAY - first.date()).days > 120


def test_default_district_is_clean(con):
    flaws = value(con, """
        SELECT count(*) FROM users WHERE sourced_id <> trim(sourced_id) OR given_name IS NULL
            OR family_name IS NULL OR given_name <> trim(given_name) OR email IS NULL
            OR (role = 'student' AND (grades[1] NOT IN ('KG','01','02','03','04','05','06','07',
                                                       '08','09','10','11','12')
                                      OR year(birth_date) NOT BETWEEN 2005 AND 2022))""")
    assert flaws == 0
    assert value(con, "SELECT count(*) FROM enrollments WHERE end_date < begin_date") == 0
    assert value(con, """SELECT count(*) - count(DISTINCT state_id) FROM users
                         WHERE role = 'student'""") == 0


FLAWS = {
    "padded_ids": """SELECT count(*) FROM (SELECT sourced_id FROM users UNION ALL
                                          SELECT sourced_id FROM classes)
                     WHERE sourced_id <> trim(sourced_id)""",
    "padded_names": "SELECT count(*) FROM users WHERE family_name <> trim(family_name)",
    "missing_emails": "SELECT count(*) FROM users WHERE email IS NULL",
    "nameless_users": "SELECT count(*) FROM users WHERE given_name IS NULL AND family_name IS NULL",
    "duplicate_staff": """SELECT count(*) FROM users WHERE role NOT IN
                              ('student', 'parent', 'guardian', 'relative')
                          GROUP BY state_id, given_name, family_name, email HAVING count(*) > 1""",
    "duplicate_people": """SELECT count(*) FROM users WHERE role = 'student'
                           GROUP BY state_id, given_name, family_name, birth_date
                           HAVING count(*) > 1 AND count(DISTINCT identifier) = 2
                              AND count(DISTINCT email) = 2""",
    "bad_dates": """SELECT count(*) FROM users u JOIN demographics d USING (sourced_id)
                    WHERE year(u.birth_date) NOT BETWEEN 1900 AND 2080
                      AND d.birth_date = u.birth_date""",
    "invalid_grades": """SELECT count(*) FROM users WHERE role = 'student'
                         AND (grades[1] IN ('13', 'K') OR grades[1] LIKE 'Grade %')""",
}


@pytest.mark.parametrize("knob", FLAWS)
def test_each_dirty_knob_does_what_it_says_and_keeps_references_whole(tmp_path, knob, con):
    path = tmp_path / "dirty.duckdb"
    generate_district(path, seed=7, students=300, dirty=DirtyData(**{knob: 0.2}))
    dirty = store.connect(path, read_only=True)
    flawed = rows(dirty, FLAWS[knob])
    assert flawed and flawed[0][0] > 0
    assert rows(con, FLAWS[knob]) in ([], [(0,)])
    broken = value(dirty, """
        SELECT count(*) FROM enrollments WHERE user_id NOT IN (SELECT sourced_id FROM users)
            OR class_id NOT IN (SELECT sourced_id FROM classes)""") + value(dirty, """
        SELECT count(*) FROM student_contacts WHERE student_id NOT IN (SELECT sourced_id FROM users)
            OR contact_id NOT IN (SELECT sourced_id FROM users)""")
    assert broken == 0
    if knob == "bad_dates":
        assert value(dirty, "SELECT count(*) FROM enrollments WHERE end_date < begin_date") > 0
    if knob == "padded_ids":
        assert value(dirty, """SELECT count(*) FROM enrollments e
                               JOIN users u ON u.sourced_id = e.user_id
                               WHERE u.sourced_id <> trim(u.sourced_id)""") > 0
    dirty.close()


def test_demo_knobs_are_small_and_not_clean():
    demo = DirtyData.demo()
    assert not demo.is_clean and DirtyData().is_clean
    assert 0 < max(demo.model_dump().values()) <= 0.05
    assert demo.key() == DirtyData.demo().key() != DirtyData().key() == "clean"


def test_ensure_district_generates_once_and_copies_are_private(tmp_path):
    first = ensure_district(11, 100, root=tmp_path)
    stamp = first.stat().st_mtime_ns
    assert ensure_district(11, 100, root=tmp_path) == first
    assert first.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == [".gitignore", first.name]
    assert ensure_district(11, 100, DirtyData.demo(), root=tmp_path) != first

    copy = working_copy(first, tmp_path / "copies" / "served.duckdb")
    con = store.connect(copy)
    con.execute("DELETE FROM users")
    con.close()
    assert table_hashes(first)["users"] != table_hashes(copy)["users"]


def test_ensure_district_ignores_a_crashed_partial_file(tmp_path):
    path = ensure_district(12, 100, root=tmp_path)
    path.unlink()
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_text("half a district")
    assert ensure_district(12, 100, root=tmp_path) == path
    assert not partial.exists()
    assert store.meta(duckdb.connect(str(path), read_only=True))["students"] == "100"


@pytest.mark.slow
@pytest.mark.parametrize("students", [100_000])
def test_generation_benchmark(tmp_path, students):
    """Time, size and memory of a large generation (run with ``-m slow -s``)."""
    start = time.perf_counter()
    counts = generate_district(tmp_path / "big.duckdb", seed=1, students=students)
    seconds = time.perf_counter() - start
    size_mb = (tmp_path / "big.duckdb").stat().st_size / 1e6
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{students} students: {seconds:.1f} s, {size_mb:.0f} MB on disk, "
          f"peak RSS {rss_mb:.0f} MB, {counts['enrollments']} enrollments")
    assert counts["users:student"] == students
    assert seconds < students / 1000 and rss_mb < 3000
