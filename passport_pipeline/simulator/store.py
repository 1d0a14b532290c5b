"""The simulated district's on-disk store: one DuckDB file holding a Skyward district.

This is the contract between the generator (which writes it), the next-day evolution (which
changes it) and the servers (which read it). It is the *source system's* truth, in the source's
own shape — not our canonical roster. Names follow OneRoster 1.1/1.2, in snake case.

Conventions every writer keeps:

- Every entity table has ``sourced_id`` (unique; may carry padding spaces when dirty data is
  asked for), ``status`` (``active`` | ``tobedeleted``), ``date_last_modified`` (TIMESTAMP, UTC)
  and ``seq`` (0-based position in ``sourced_id`` order, so a page is a ``seq`` range and costs
  the same at any offset). ``seq`` and the derived columns are rebuilt by :func:`finalize`,
  which every writer calls once after writing; writers insert ``seq`` as NULL.
- Anything that changes bumps ``date_last_modified`` to the simulated clock (``meta.now``).
- Deleting is two steps, as in Skyward: a record first shows as ``tobedeleted`` (with
  ``deleted_on`` set to the simulated date), and is removed for good some days later.
- Relationships are normalized (``student_contacts``, ``enrollments``); the servers read the
  denormalized ``users.agent_ids`` and ``users.relationships`` that :func:`finalize` derives.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

ENTITY_TABLES = (
    "orgs",
    "academic_sessions",
    "courses",
    "classes",
    "users",
    "enrollments",
    "demographics",
)
"""Tables served as OneRoster collections; each has ``sourced_id``, ``status``,
``date_last_modified``, ``deleted_on`` and ``seq``."""

_COMMON = """
    sourced_id          VARCHAR NOT NULL,                    -- unique (no index: bulk loads)
    status              VARCHAR NOT NULL DEFAULT 'active',   -- active | tobedeleted
    date_last_modified  TIMESTAMP NOT NULL,
    deleted_on          DATE,                                -- set with status tobedeleted
    seq                 BIGINT,                              -- rebuilt by finalize()
"""

DDL = f"""
CREATE TABLE IF NOT EXISTS meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);
-- keys: seed, students (requested size), generator_version, today (simulated DATE, ISO),
--       now (simulated TIMESTAMP, ISO), school_year (e.g. 2027 for 2026-2027), day (int)

CREATE TABLE IF NOT EXISTS orgs ({_COMMON}
    name          VARCHAR NOT NULL,
    type          VARCHAR NOT NULL,      -- district | school
    identifier    VARCHAR,               -- state school code / district code
    parent_id     VARCHAR,               -- the district for schools; NULL for the district
    school_level  VARCHAR,               -- elementary | middle | high (NULL for the district)
    grade_low     VARCHAR,               -- CEDS grade code: PK KG 01 .. 12
    grade_high    VARCHAR,
    native_id     BIGINT NOT NULL        -- SMS 2.0 SchoolId
);

CREATE TABLE IF NOT EXISTS academic_sessions ({_COMMON}
    title        VARCHAR NOT NULL,
    type         VARCHAR NOT NULL,       -- schoolYear | semester | gradingPeriod
    start_date   DATE,
    end_date     DATE,
    parent_id    VARCHAR,                -- semester -> schoolYear, gradingPeriod -> semester
    school_year  INTEGER NOT NULL,       -- ending year: 2027 for 2026-2027
    org_id       VARCHAR NOT NULL,       -- the district: calendars are district-wide
    native_id    BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS courses ({_COMMON}
    title           VARCHAR NOT NULL,
    course_code     VARCHAR,
    grades          VARCHAR[],
    subjects        VARCHAR[],
    subject_codes   VARCHAR[],
    org_id          VARCHAR NOT NULL,    -- the school offering it
    school_year_id  VARCHAR,             -- academic_sessions.sourced_id of the school year
    native_id       BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS classes ({_COMMON}
    title        VARCHAR NOT NULL,
    class_code   VARCHAR,
    class_type   VARCHAR NOT NULL,       -- homeroom | scheduled
    location     VARCHAR,                -- room
    grades       VARCHAR[],
    subjects     VARCHAR[],
    course_id    VARCHAR NOT NULL,
    school_id    VARCHAR NOT NULL,
    term_ids     VARCHAR[] NOT NULL,     -- academic_sessions it runs in
    periods      VARCHAR[],
    native_id    BIGINT NOT NULL         -- SMS 2.0 SectionId
);

CREATE TABLE IF NOT EXISTS users ({_COMMON}
    native_id             BIGINT NOT NULL,   -- SMS 2.0 NameId (changes with the sourced id)
    role                  VARCHAR NOT NULL,  -- student | teacher | aide | administrator |
                                             -- counselor | principal | guardian | parent | relative
    username              VARCHAR,
    enabled_user          BOOLEAN NOT NULL DEFAULT TRUE,
    given_name            VARCHAR,
    family_name           VARCHAR,
    middle_name           VARCHAR,
    preferred_first_name  VARCHAR,
    identifier            VARCHAR,           -- student number / staff number (may be missing)
    state_id              VARCHAR,           -- state id: stable when the sourced id changes
    email                 VARCHAR,
    sms                   VARCHAR,
    phone                 VARCHAR,
    grades                VARCHAR[],         -- students: current grade
    org_ids               VARCHAR[] NOT NULL,-- schools (guardians: their students' schools)
    primary_org_id        VARCHAR,
    grad_year             INTEGER,           -- students
    birth_date            DATE,              -- students (also in demographics)
    -- derived by finalize(), never written by hand:
    agent_ids             VARCHAR[],         -- student -> its contacts; contact -> its students
    relationships         STRUCT(student_id VARCHAR, relationship VARCHAR,
                                 emergency_contact BOOLEAN, custodial BOOLEAN,
                                 pickup_allowed BOOLEAN, contact_order INTEGER)[]
                                             -- contacts only: one per linked student
);

CREATE TABLE IF NOT EXISTS student_contacts (
    student_id         VARCHAR NOT NULL,
    contact_id         VARCHAR NOT NULL,
    relationship       VARCHAR NOT NULL,  -- mother | father | guardian | grandparent |
                                          -- aunt | uncle | stepparent | neighbor | ...
    is_guardian        BOOLEAN NOT NULL,  -- legal guardian / parent (else: other contact)
    emergency_contact  BOOLEAN NOT NULL,
    custodial          BOOLEAN NOT NULL,
    pickup_allowed     BOOLEAN NOT NULL,
    contact_order      INTEGER NOT NULL,  -- 1 = first to call
    date_last_modified TIMESTAMP NOT NULL   -- unique per (student_id, contact_id)
);

CREATE TABLE IF NOT EXISTS enrollments ({_COMMON}
    user_id      VARCHAR NOT NULL,
    class_id     VARCHAR NOT NULL,
    school_id    VARCHAR NOT NULL,
    role         VARCHAR NOT NULL,        -- student | teacher
    "primary"    BOOLEAN NOT NULL,
    begin_date   DATE,
    end_date     DATE
);

CREATE TABLE IF NOT EXISTS demographics ({_COMMON}
    birth_date                            DATE,
    sex                                   VARCHAR,   -- male | female | other | unspecified
    american_indian_or_alaska_native      BOOLEAN,
    asian                                 BOOLEAN,
    black_or_african_american             BOOLEAN,
    native_hawaiian_or_other_pacific_islander BOOLEAN,
    white                                 BOOLEAN,
    demographic_race_two_or_more_races    BOOLEAN,
    hispanic_or_latino_ethnicity          BOOLEAN,
    country_of_birth_code                 VARCHAR,
    state_of_birth_abbreviation           VARCHAR,
    city_of_birth                         VARCHAR,
    public_school_residence_status        VARCHAR
);
"""


def connect(path: str | Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open a district store, creating its tables when it is new and writable."""
    con = duckdb.connect(str(path), read_only=read_only)
    if not read_only:
        con.execute(DDL)
    return con


def finalize(con: duckdb.DuckDBPyConnection) -> None:
    """Rebuild what readers rely on after any write: derived relationship columns and ``seq``.

    Each entity table is rewritten in ``sourced_id`` order so that ``seq`` ranges map to
    contiguous storage and a page at offset five million costs what a page at zero costs.
    """
    con.execute("BEGIN")
    con.execute(
        """
        UPDATE users SET agent_ids = NULL, relationships = NULL;
        UPDATE users SET agent_ids = a.ids
        FROM (SELECT student_id AS id, list(contact_id ORDER BY contact_order) AS ids
              FROM student_contacts GROUP BY student_id) a
        WHERE users.sourced_id = a.id;
        UPDATE users SET agent_ids = a.ids, relationships = a.rels
        FROM (SELECT contact_id AS id,
                     list(student_id ORDER BY student_id) AS ids,
                     list({'student_id': student_id, 'relationship': relationship,
                           'emergency_contact': emergency_contact, 'custodial': custodial,
                           'pickup_allowed': pickup_allowed, 'contact_order': contact_order}
                          ORDER BY student_id) AS rels
              FROM student_contacts GROUP BY contact_id) a
        WHERE users.sourced_id = a.id;
        """
    )
    for table in ENTITY_TABLES:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _sorted AS
            SELECT * REPLACE (row_number() OVER (ORDER BY sourced_id) - 1 AS seq)
            FROM {table} ORDER BY sourced_id;
            DELETE FROM {table};
            INSERT INTO {table} SELECT * FROM _sorted;
            DROP TABLE _sorted;
            """
        )
    con.execute("COMMIT")
    con.execute("CHECKPOINT")


def meta(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The store's metadata (seed, size, simulated clock) as a dict."""
    return dict(con.execute("SELECT key, value FROM meta").fetchall())


def set_meta(con: duckdb.DuckDBPyConnection, **values: object) -> None:
    """Insert or replace metadata keys."""
    for key, value in values.items():
        con.execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, str(value)]
        )


def counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows per entity table, plus ``student_contacts`` and users per role."""
    result = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ENTITY_TABLES}
    result["student_contacts"] = con.execute("SELECT count(*) FROM student_contacts").fetchone()[0]
    for role, n in con.execute("SELECT role, count(*) FROM users GROUP BY role ORDER BY role").fetchall():
        result[f"users:{role}"] = n
    return result
