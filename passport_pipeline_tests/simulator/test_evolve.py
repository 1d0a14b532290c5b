"""The district's next day: clock, daily churn, two-step deletion and events."""

from __future__ import annotations

import time
from datetime import date, datetime

import pytest

from passport_pipeline.simulator import store
from passport_pipeline.simulator.dirty import DirtyData
from passport_pipeline.simulator.district import generate_district, working_copy
from passport_pipeline.simulator.evolve import NextDay, next_day

QUIET = {"creates": 0.0, "updates": 0.0, "withdrawals": 0.0}
GRADE_ORDER = ["KG"] + [f"{g:02d}" for g in range(1, 13)]
LAST_CHANGE = "(SELECT max(date_last_modified) FROM users)"


@pytest.fixture
def con(district_copy):
    con = store.connect(district_copy)
    yield con
    con.close()


@pytest.fixture(scope="module")
def sister_schools(tmp_path_factory):
    """A pristine district with several elementary and middle schools (closings and moves)."""
    path = tmp_path_factory.mktemp("bigger") / "district.duckdb"
    generate_district(path, seed=8, students=2500)
    return path


def rows(con, sql: str, **params) -> list[tuple]:
    return con.execute(sql, params).fetchall()


def value(con, sql: str, **params):
    return rows(con, sql, **params)[0][0]


def users_digest(con) -> str:
    return value(con, """SELECT md5(string_agg(CAST(u AS VARCHAR), '|' ORDER BY sourced_id))
                         FROM users u""")


def test_a_day_moves_the_clock_and_bumps_what_changed(con):
    before = value(con, "SELECT max(date_last_modified) FROM users")
    summary = next_day(con)
    meta = store.meta(con)
    assert (meta["day"], meta["today"], summary["today"]) == ("1", "2026-10-02", "2026-10-02")
    now = datetime.fromisoformat(meta["now"])
    assert before < now
    touched = value(con, "SELECT count(*) FROM users WHERE date_last_modified = $now", now=now)
    expected = (summary["created"]["students"] + summary["created"]["contacts"]
                + summary["created"]["staff"] + summary["withdrawn"]["students"]
                + summary["updated"]["students"] + summary["updated"]["staff"])
    assert touched >= expected > 0
    assert value(con, "SELECT max(seq) + 1 = count(*) FROM users")


def test_new_students_join_existing_classes_with_a_family_and_demographics(con):
    classes_before = value(con, "SELECT count(*) FROM classes")
    summary = next_day(con, NextDay(creates=0.05, updates=0.0, withdrawals=0.0))
    assert summary["created"]["students"] == pytest.approx(15, abs=1)
    new = rows(con, f"""
        SELECT u.sourced_id, count(DISTINCT e.class_id), count(DISTINCT sc.contact_id),
               count(DISTINCT d.sourced_id)
        FROM users u LEFT JOIN enrollments e ON e.user_id = u.sourced_id
        LEFT JOIN student_contacts sc ON sc.student_id = u.sourced_id
        LEFT JOIN demographics d ON d.sourced_id = u.sourced_id
        WHERE u.role = 'student' AND u.date_last_modified = {LAST_CHANGE}
        GROUP BY ALL""")
    assert len(new) == summary["created"]["students"]
    assert all(classes >= 1 and 1 <= contacts <= 3 and demographics == 1
               for _, classes, contacts, demographics in new)
    assert value(con, "SELECT count(*) FROM classes") == classes_before
    first_day = value(con, f"""SELECT min(begin_date) FROM enrollments
                               WHERE date_last_modified = {LAST_CHANGE}""")
    assert first_day == date(2026, 10, 2)


def test_withdrawn_students_show_tobedeleted_then_are_purged_after_three_days(con):
    summary = next_day(con, NextDay(creates=0.0, updates=0.0, withdrawals=0.02))
    gone = [r[0] for r in rows(con, """SELECT sourced_id FROM users
                                       WHERE role = 'student' AND status = 'tobedeleted'""")]
    assert len(gone) == summary["withdrawn"]["students"] > 0
    assert value(con, """SELECT bool_and(deleted_on = DATE '2026-10-02') FROM users
                         WHERE status = 'tobedeleted'""")
    theirs = "FROM enrollments WHERE list_contains($ids, user_id)"
    enrollments = value(con, f"SELECT count(*) {theirs}", ids=gone)
    assert enrollments > 0 and value(con, f"SELECT bool_and(status = 'tobedeleted') {theirs}", ids=gone)
    still_there = "SELECT count(*) FROM users WHERE list_contains($ids, sourced_id)"
    for _ in range(3):
        next_day(con, NextDay(**QUIET))
        assert value(con, still_there, ids=gone) == len(gone)
    purged = next_day(con, NextDay(**QUIET))["purged"]
    assert purged["users"] >= len(gone) and purged["enrollments"] == enrollments
    assert value(con, still_there, ids=gone) == 0
    assert value(con, "SELECT count(*) FROM student_contacts WHERE list_contains($ids, student_id)",
                 ids=gone) == 0


def test_updates_change_realistic_fields(con):
    people = """SELECT sourced_id, family_name, email, phone, sms, preferred_first_name,
                       middle_name, grades FROM users"""
    before = {r[0]: r[1:] for r in rows(con, people)}
    rooms = dict(rows(con, "SELECT sourced_id, location FROM classes"))
    summary = next_day(con, NextDay(creates=0.0, updates=0.2, withdrawals=0.0))
    after = {r[0]: r[1:] for r in rows(con, people)}
    changed = [k for k in before if before[k] != after[k]]
    counted = sum(summary["updated"][k] for k in ("students", "staff", "contacts"))
    assert 0.8 * counted <= len(changed) <= counted
    renamed = [k for k in changed if before[k][0] != after[k][0] and not k.startswith("con-")]
    assert renamed
    for k in renamed:
        local = after[k][1].split("@")[0].rstrip("0123456789")
        assert local.endswith("".join(c for c in after[k][0].lower() if c.isalpha())), k
    moved = sum(rooms[k] != v for k, v in rows(con, "SELECT sourced_id, location FROM classes"))
    assert 0 < moved <= summary["updated"]["classes"]


def test_same_days_on_the_same_district_give_the_same_district(small_district, tmp_path):
    def evolved(name: str, seed: int | None) -> str:
        con = store.connect(working_copy(small_district, tmp_path / f"{name}.duckdb"))
        for _ in range(2):
            next_day(con, NextDay(seed=seed))
        digest = users_digest(con)
        con.close()
        return digest

    assert evolved("a", None) == evolved("b", None) != evolved("c", 12345)


def test_source_id_change_keeps_state_id_and_moves_every_reference(con):
    event = next_day(con, NextDay(**QUIET, events=[{"kind": "source_id_change"}]))["events"][0]
    old, new = event["user_id"], event["new_user_id"]
    assert old != new
    assert value(con, "SELECT count(*) FROM users WHERE sourced_id = $id", id=old) == 0
    state_id, native_id, changed = rows(con, """SELECT state_id, native_id, date_last_modified
                                                FROM users WHERE sourced_id = $id""", id=new)[0]
    assert state_id == event["state_id"] and changed == datetime(2026, 10, 2, 6)
    assert value(con, "SELECT count(*) FROM users WHERE native_id = $n", n=native_id) == 1
    for sql in ("SELECT count(*) FROM enrollments WHERE user_id = $id",
                "SELECT count(*) FROM student_contacts WHERE student_id = $id",
                "SELECT count(*) FROM demographics WHERE sourced_id = $id"):
        assert value(con, sql, id=old) == 0 and value(con, sql, id=new) > 0
    assert value(con, """SELECT bool_and(list_contains(agent_ids, $id)) FROM users WHERE sourced_id
                         IN (SELECT contact_id FROM student_contacts WHERE student_id = $id)""", id=new)


def test_staff_leaving_hands_their_classes_to_a_replacement(con):
    event = next_day(con, NextDay(**QUIET, events=[{"kind": "staff_leaving"}]))["events"][0]
    leaver, replacement = event["user_id"], event["replacement_id"]
    assert rows(con, "SELECT status, deleted_on FROM users WHERE sourced_id = $id", id=leaver) == [
        ("tobedeleted", date(2026, 10, 2))]
    classes = """SELECT class_id, "primary" FROM enrollments WHERE user_id = $id {}
                 ORDER BY class_id"""
    taught = rows(con, classes.format(""), id=leaver)
    assert taught and value(con, """SELECT bool_and(status = 'tobedeleted') FROM enrollments
                                    WHERE user_id = $id""", id=leaver)
    assert rows(con, classes.format("AND status = 'active'"), id=replacement) == taught
    assert value(con, "SELECT role FROM users WHERE sourced_id = $id", id=replacement) == "teacher"


def test_term_rollover_ends_the_fall_then_starts_a_new_school_year(con):
    fall = next_day(con, NextDay(**QUIET, events=[{"kind": "term_rollover"}]))
    assert fall["today"] == "2027-01-19" and fall["events"][0]["retired_classes"] > 0
    assert value(con, """SELECT bool_and(c.status = 'tobedeleted') FROM classes c
                         JOIN academic_sessions s ON s.sourced_id = c.term_ids[1]
                         WHERE s.title LIKE 'Fall%'""")
    grades = dict(rows(con, "SELECT sourced_id, grades[1] FROM users WHERE role = 'student'"))
    seniors = sorted(k for k, g in grades.items() if g == "12")

    year = next_day(con, NextDay(**QUIET, events=[{"kind": "term_rollover"}]))["events"][0]
    assert (store.meta(con)["school_year"], store.meta(con)["today"]) == ("2028", "2027-08-24")
    assert year["graduated"] == len(seniors) and year["kindergarten"] > 0
    after = dict(rows(con, """SELECT sourced_id, grades[1] FROM users
                              WHERE role = 'student' AND status = 'active'"""))
    assert all(GRADE_ORDER.index(after[k]) == GRADE_ORDER.index(g) + 1
               for k, g in grades.items() if k not in seniors)
    assert value(con, """SELECT bool_and(status = 'tobedeleted') FROM users
                         WHERE list_contains($ids, sourced_id)""", ids=seniors)
    assert value(con, """SELECT bool_and(o.school_level = 'middle') FROM users u
                         JOIN orgs o ON o.sourced_id = u.primary_org_id
                         WHERE u.status = 'active' AND u.grades[1] = '06'""")
    assert rows(con, """SELECT DISTINCT s.school_year FROM enrollments e
                        JOIN classes c ON c.sourced_id = e.class_id
                        JOIN academic_sessions s ON s.sourced_id = c.term_ids[1]
                        WHERE e.status = 'active'""") == [(2028,)]
    unseated = value(con, """SELECT count(*) FROM users WHERE role = 'student' AND status = 'active'
                             AND sourced_id NOT IN (SELECT user_id FROM enrollments
                                                    WHERE status = 'active')""")
    assert unseated <= 3


def test_school_closing_moves_students_to_a_school_of_the_same_level(sister_schools, tmp_path):
    con = store.connect(working_copy(sister_schools, tmp_path / "d.duckdb"))
    event = next_day(con, NextDay(**QUIET, events=[{"kind": "school_closing"}]))["events"][0]
    closed, to = event["school_id"], event["to_school_id"]
    levels = dict(rows(con, "SELECT sourced_id, school_level FROM orgs"))
    assert levels[closed] == levels[to] and event["moved_students"] > 0
    for table, column in (("orgs", "sourced_id"), ("courses", "org_id"), ("classes", "school_id"),
                          ("enrollments", "school_id")):
        assert value(con, f"""SELECT bool_and(status = 'tobedeleted') FROM {table}
                              WHERE {column} = $s""", s=closed), table
    assert value(con, """SELECT count(*) FROM users
                         WHERE status = 'active' AND list_contains(org_ids, $s)""", s=closed) == 0
    assert value(con, f"""SELECT count(DISTINCT user_id) FROM enrollments
                          WHERE status = 'active' AND school_id = $to
                            AND date_last_modified = {LAST_CHANGE}""", to=to) == event["moved_students"]
    con.close()


def test_student_moving_reenrolls_at_the_new_school(sister_schools, tmp_path):
    con = store.connect(working_copy(sister_schools, tmp_path / "d.duckdb"))
    event = next_day(con, NextDay(**QUIET, events=[{"kind": "student_moving"}]))["events"][0]
    user, old, new = event["user_id"], event["from_school_id"], event["to_school_id"]
    assert old != new and event["enrollments"] > 0
    assert rows(con, "SELECT org_ids, primary_org_id FROM users WHERE sourced_id = $id",
                id=user) == [([new], new)]
    by_school = dict(rows(con, """SELECT school_id, list_distinct(list(status)) FROM enrollments
                                  WHERE user_id = $id GROUP BY ALL""", id=user))
    assert by_school[old] == ["tobedeleted"] and by_school[new] == ["active"]
    con.close()


def test_an_impossible_event_says_why_and_changes_nothing(con):
    before = users_digest(con)
    with pytest.raises(ValueError, match="only school of its level"):
        next_day(con, NextDay(events=[{"kind": "school_closing", "school_id": "org-0000000002"}]))
    with pytest.raises(ValueError, match="not an active staff member"):
        next_day(con, NextDay(events=[{"kind": "staff_leaving", "user_id": "stu-0000000003"}]))
    assert store.meta(con)["day"] == "0" and users_digest(con) == before


def test_dirty_districts_evolve_too(tmp_path):
    path = tmp_path / "dirty.duckdb"
    everything = DirtyData(**dict.fromkeys(DirtyData.model_fields, 0.1))
    generate_district(path, seed=9, students=400, dirty=everything)
    con = store.connect(path)
    padded = value(con, """SELECT sourced_id FROM users
                           WHERE role = 'student' AND sourced_id <> trim(sourced_id) LIMIT 1""")
    events = [{"kind": "source_id_change", "user_id": padded}, {"kind": "staff_leaving"}]
    summary = next_day(con, NextDay(creates=0.2, updates=0.2, withdrawals=0.05, events=events))
    assert summary["created"]["students"] > 0
    assert summary["events"][0]["new_user_id"].startswith("stu-")
    for _ in range(2):
        next_day(con, NextDay(events=[{"kind": "term_rollover"}]))
    assert store.meta(con)["school_year"] == "2028"
    con.close()


@pytest.mark.slow
def test_next_day_benchmark(tmp_path):
    """Seconds of an ordinary day and of both rollovers at 100k students (``-m slow -s``)."""
    path = tmp_path / "big.duckdb"
    generate_district(path, seed=1, students=100_000)
    con = store.connect(path)
    timings = {}
    for name, change in [("ordinary day", NextDay()),
                         ("spring semester", NextDay(events=[{"kind": "term_rollover"}])),
                         ("new school year", NextDay(events=[{"kind": "term_rollover"}]))]:
        start = time.perf_counter()
        next_day(con, change)
        timings[name] = round(time.perf_counter() - start, 1)
    con.close()
    print(f"\nnext_day at 100k students, seconds (finalize included): {timings}")
    assert timings["ordinary day"] < 60
