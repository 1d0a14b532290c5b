"""The term rollover: the next semester, or after the spring, the next school year.

Next semester: the clock jumps to its first day, and the sections of the ended semester, with
their enrollments, go tobedeleted — the mass deletion a sync must not mistake for a disaster.

Next school year, the way a district rolls its SIS over in August:

1. new sessions (year, semesters, quarters), the clock jumps to the first day;
2. every current section is copied into the matching new term, with new ids, and its teachers
   with it (when the fall's sections are already gone, the spring's serve both new semesters);
3. each student is promoted a grade — into a middle or high school when their school ends —
   and takes the seats a student of their new grade and school had last year;
4. a new kindergarten class arrives, one new child per last year's kindergartner;
5. seniors graduate (tobedeleted with their enrollments), last year's sections and sessions go
   tobedeleted, courses move to the new school year.
"""

from __future__ import annotations

from passport_pipeline.simulator import store
from passport_pipeline.simulator.day import ACTIVE_STUDENTS, Day
from passport_pipeline.simulator.people import GRADES
from passport_pipeline.simulator.rows import id_sql, insert, sourced_id
from passport_pipeline.simulator.school_calendar import school_year_sessions


def term_rollover(day: Day) -> dict:
    """Roll the district into its next term; return what happened."""
    year = int(store.meta(day.con)["school_year"])
    semesters = day.sql("""SELECT sourced_id, start_date FROM academic_sessions
                           WHERE type = 'semester' AND school_year = $y AND status = 'active'
                           ORDER BY start_date""", y=year)
    upcoming = [(term_id, start) for term_id, start in semesters if start > day.today]
    if not upcoming:
        return _next_school_year(day, year)
    term_id, day.today = upcoming[0]
    day.sql("""CREATE OR REPLACE TEMP TABLE _ended AS
               SELECT sourced_id AS id FROM classes WHERE status = 'active' AND term_ids[1] IN (
                   SELECT sourced_id FROM academic_sessions WHERE end_date < $today)""")
    return {"school_year": year, "term_id": term_id,
            "retired_classes": day.retire("classes", "sourced_id IN (SELECT id FROM _ended)"),
            "retired_enrollments": day.retire("enrollments",
                                              "class_id IN (SELECT id FROM _ended)")}


def _next_school_year(day: Day, year: int) -> dict:
    year_id = _open_school_year(day, year)
    new_classes = _copy_sections(day)
    _plan_promotions(day)
    kindergarten = _seat_students(day)
    retired = day.retire("classes", """term_ids[1] IN (SELECT sourced_id FROM academic_sessions
                                                       WHERE school_year = $y)""", y=year)
    day.retire("enrollments", "class_id IN (SELECT old FROM _class_map)")
    graduates = [r[0] for r in day.sql("SELECT user_id FROM _promo WHERE graduating")]
    day.withdraw_students(graduates)
    promoted = day.value(
        """UPDATE users SET grades = [p.new_grade], primary_org_id = p.new_school,
                  org_ids = CASE WHEN p.new_school = p.school_id THEN users.org_ids
                                 ELSE [p.new_school] END,
                  date_last_modified = $now
           FROM _promo p WHERE users.sourced_id = p.user_id AND NOT p.graduating""")
    day.sql("""UPDATE courses SET school_year_id = $y, date_last_modified = $now
               WHERE status = 'active'""", y=year_id)
    day.retire("academic_sessions", "school_year = $y", y=year)
    store.set_meta(day.con, school_year=year + 1)
    return {"school_year": year + 1, "promoted": promoted, "graduated": len(graduates),
            "moved_up": day.value("SELECT count(*) FROM _promo WHERE new_school <> school_id"),
            "kindergarten": kindergarten, "new_classes": new_classes, "retired_classes": retired}


def _open_school_year(day: Day, year: int) -> str:
    """Insert the next year's sessions, move the clock to its first day, and map each current
    term to its successors (``_term_map``). Returns the new school year's id."""
    sessions = school_year_sessions(year + 1, day.take("academic_sessions", 7), day.now)
    day.today = max(day.today, sessions["start_date"][0])
    sessions["dlm"] = day.now
    insert(day.con, "academic_sessions", sessions)
    day.keep("_new_terms", sessions[["no", "type", "start_date", "end_date"]])
    day.sql(
        f"""CREATE OR REPLACE TEMP TABLE _term_map AS
           WITH o AS (
               SELECT sourced_id, type,
                      row_number() OVER (PARTITION BY type ORDER BY start_date) AS i,
                      count(*) OVER (PARTITION BY type) AS k
               FROM academic_sessions WHERE school_year = $y AND status = 'active'
                 AND sourced_id IN (SELECT term_ids[1] FROM classes WHERE status = 'active')),
           n AS (
               SELECT *, row_number() OVER (PARTITION BY type ORDER BY start_date) AS i
               FROM _new_terms)
           SELECT o.sourced_id AS old, {id_sql('ses', 'n.no')} AS new, n.start_date, n.end_date
           FROM n JOIN o ON o.type = n.type AND o.i = least(n.i, o.k)""", y=year)
    return sourced_id("ses", int(sessions["no"][0]))


def _copy_sections(day: Day) -> int:
    """Copy every current section into its new term(s) (``_class_map``), teachers included."""
    first = day.take("classes", day.value(
        """SELECT count(*) FROM classes c JOIN _term_map t ON t.old = c.term_ids[1]
           WHERE c.status = 'active'"""))
    day.sql(
        f"""CREATE OR REPLACE TEMP TABLE _class_map AS
           SELECT old, {id_sql('cls', 'no')} AS new, no, term, start_date, end_date
           FROM (SELECT c.sourced_id AS old, t.new AS term, t.start_date, t.end_date,
                        $first - 1 + row_number() OVER (ORDER BY t.new, c.sourced_id) AS no
                 FROM classes c JOIN _term_map t ON t.old = c.term_ids[1]
                 WHERE c.status = 'active')""", first=first)
    day.sql(
        """INSERT INTO classes
           SELECT c.* REPLACE (m.new AS sourced_id, m.no AS native_id, [m.term] AS term_ids,
                               $now AS date_last_modified)
           FROM classes c JOIN _class_map m ON m.old = c.sourced_id""")
    day.sql(
        """CREATE OR REPLACE TEMP TABLE _teach AS
           SELECT e.user_id, m.new AS class_id, e.school_id, e."primary",
                  m.start_date AS begin_date, m.end_date
           FROM enrollments e JOIN _class_map m ON m.old = e.class_id
           WHERE e.status = 'active' AND e.role = 'teacher'""")
    day.add_enrollments("_teach", role="teacher")
    return day.value("SELECT count(*) FROM _class_map")


def _plan_promotions(day: Day) -> None:
    """``_promo``: each active student's grade and school now and next year; seniors graduate.

    A student whose new grade is past their school's top grade moves to a school of the next
    level, drawn from the day's seed. An unknown grade (dirty data) stays as it is.
    """
    day.sql(
        f"""CREATE OR REPLACE TEMP TABLE _promo AS
            WITH s AS (
                SELECT u.sourced_id AS user_id, u.primary_org_id AS school_id,
                       u.grades[1] AS grade,
                       list_element($grades, list_position($grades, u.grades[1]) + 1) AS next,
                       list_position($grades, o.grade_high) AS top,
                       CASE o.school_level WHEN 'elementary' THEN 'middle' ELSE 'high' END AS up
                FROM ({ACTIVE_STUDENTS}) u JOIN orgs o ON o.sourced_id = u.primary_org_id),
            level AS (
                SELECT school_level, list(sourced_id ORDER BY sourced_id) AS ids FROM orgs
                WHERE type = 'school' AND status = 'active' GROUP BY ALL)
            SELECT s.user_id, s.school_id, s.grade, coalesce(s.next, s.grade) AS new_grade,
                   s.grade = '12' AS graduating,
                   CASE WHEN list_position($grades, s.next) > s.top AND l.ids IS NOT NULL
                        THEN l.ids[1 + (md5_number($salt || s.user_id) % len(l.ids))::INT]
                        ELSE s.school_id END AS new_school
            FROM s LEFT JOIN level l ON l.school_level = s.up""", grades=list(GRADES))


def _seat_students(day: Day) -> int:
    """Seat promoted students where last year's students of their new grade and school sat,
    and a new kindergarten in last year's kindergartners' seats. Returns the newcomers."""
    day.sql(
        """CREATE OR REPLACE TEMP TABLE _pairs AS
           WITH model AS (
               SELECT user_id AS template_id, school_id, grade,
                      row_number() OVER (PARTITION BY school_id, grade
                                         ORDER BY md5($salt || user_id)) AS rn,
                      count(*) OVER (PARTITION BY school_id, grade) AS n
               FROM _promo WHERE user_id IN (SELECT user_id FROM enrollments
                                             WHERE status = 'active' AND role = 'student')),
           wanted AS (
               SELECT p.user_id, m.school_id, m.grade,
                      1 + md5_number($salt || p.user_id) % m.n AS rn
               FROM _promo p
               JOIN (SELECT DISTINCT school_id, grade, n FROM model) m
                 ON m.school_id = p.new_school AND m.grade = p.new_grade
               WHERE NOT p.graduating)
           SELECT w.user_id, m.template_id, w.school_id
           FROM wanted w JOIN model m USING (school_id, grade, rn)""")
    kindergarten = day.frame("""SELECT user_id AS template_id, school_id FROM _promo
                                WHERE grade = 'KG' ORDER BY school_id, user_id""")
    if len(kindergarten):
        schools = kindergarten["school_id"].str.strip().str.split("-").str[1].astype(int)
        newcomers, _ = day.add_students(schools.to_numpy(), ["KG"] * len(kindergarten))
        kindergarten["user_id"] = newcomers["user_id"].to_numpy()
        day.keep("_newcomers", kindergarten[["user_id", "template_id", "school_id"]])
        day.sql("INSERT INTO _pairs SELECT * FROM _newcomers")
    day.sql(
        """CREATE OR REPLACE TEMP TABLE _seats AS
           SELECT p.user_id, m.new AS class_id, e.school_id, m.start_date AS begin_date,
                  m.end_date
           FROM _pairs p
           JOIN enrollments e ON e.user_id = p.template_id AND e.school_id = p.school_id
           JOIN _class_map m ON m.old = e.class_id
           WHERE e.status = 'active' AND e.role = 'student'""")
    day.add_enrollments("_seats", role="student")
    return len(kindergarten)
