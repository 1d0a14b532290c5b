"""Another system's roster of the demo district: a OneRoster 1.1 CSV bundle with overlapping people.

Districts rarely have one source: a second system (an enrollment center, a special-programs
system) holds some of the same children under its own ids, with its own idea of their e-mail or
their parents' phone, and children of its own. :func:`ensure_other_system` derives that system's
store from a generated district, in SQL, and writes it as a bundle with
:func:`~.csv_bundle.export_bundle`. The same district and seed always give the same bundle.

What the other system holds, and how it overlaps the district (what the dedup tests rely on):

- **Shape**: the simulator's Skyward export (:func:`~.csv_bundle.export_bundle`), so its
  ``metadata.skyward.*`` columns and ``skyward_relationships.csv`` are there too; the manifest's
  ``source.systemName`` is ``Other SIS``.
- **Ids**: its own scheme for everything: a UUID made from an md5 of the seed and the district
  id (never a district id, never trimmed-equal to one). Student numbers (``identifier``) are
  ``O`` and 7 digits, usernames ``oth`` and the same number: no overlap with the district's.
- **Schools**: the district org and every school, same ``identifier`` (state school code), name,
  level and grades, under its ids. Academic sessions, courses, classes and enrollments are
  ``absent`` in the manifest: the other system does not schedule (the rules treat them as
  unknown, not missing). It has no staff.
- **Shared students**: :data:`SHARED_SHARE` of the district's active students (exactly
  ``round(0.2 * count)``, chosen by an md5 of seed and id, the district's duplicate twins
  included), numbered ``n = 1..`` in that order. Each keeps its state id, names (as the district
  has them, padding included), birth date, grade, schools (under the other ids) and
  demographics. Where ``n % 5 == 0`` the e-mail is another one
  (``<given>.<family><n>@mail.othersis.example``); the others keep the district's, missing ones
  included. Where ``n % 10 == 3`` the state id is written with two leading zeros (the same id
  once leading zeros are stripped).
- **Shared guardians**: every guardian (``is_guardian`` link) of a shared student, numbered
  ``n = 1..`` by an md5 of seed and id, with the same names and e-mail; where ``n % 4 == 0`` the
  phone is another one (``555-…``). Their links go to shared students only, relationship and
  flags as in the district. Other contacts (neighbors, aunts…) are not shared.
- **Own students**: :data:`OWN_SHARE` of the district's student count (``round(0.05 * count)``),
  one parent each, neither in the district: a state id of 11 digits starting with 9 (never a
  district one, even with zeros stripped), e-mails at ``mail.othersis.example``, and a name and
  birth date that no district student has (names are recombined from the district's).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb

from passport_pipeline.simulator import store
from passport_pipeline.simulator.csv_bundle import export_bundle
from passport_pipeline.simulator.rows import refresh_contact_orgs

SHARED_SHARE = 0.2
"""Share of the district's active students the other system holds too."""
OWN_SHARE = 0.05
"""Students only the other system holds, as a share of the district's student count."""
SYSTEM_NAME = "Other SIS"
NOT_SCHEDULED = ("academicSessions", "courses", "classes", "enrollments")
"""Bundle files the other system does not provide (marked ``absent`` in its manifest)."""
DOMAIN = "mail.othersis.example"

_MACROS = f"""
CREATE OR REPLACE TEMP MACRO uuid_text(h) AS
    substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-' || substr(h, 13, 4) || '-' || substr(h, 17, 4)
    || '-' || substr(h, 21, 12);
CREATE OR REPLACE TEMP MACRO other_id(seed, id) AS uuid_text(md5('other:' || seed || ':' || trim(id)));
CREATE OR REPLACE TEMP MACRO other_number(n) AS 'O' || lpad(CAST(n AS VARCHAR), 7, '0');
CREATE OR REPLACE TEMP MACRO mailbox(given, family, n) AS
    lower(regexp_replace(coalesce(trim(given), 'student') || '.' || coalesce(trim(family), 'x'), '[^A-Za-z.]', '', 'g'))
    || n || '@{DOMAIN}';
"""

_SHARED = [
    """
    CREATE TEMP TABLE shared AS
    SELECT sourced_id AS district_id, row_number() OVER (ORDER BY md5($seed || ':shared:' || trim(sourced_id))) AS n
    FROM district.users WHERE role = 'student' AND status = 'active'
    QUALIFY n <= round($share * count(*) OVER ())""",
    """
    CREATE TEMP TABLE shared_guardians AS
    SELECT contact_id AS district_id, row_number() OVER (ORDER BY md5($seed || ':guardian:' || trim(contact_id))) AS n
    FROM district.student_contacts
    WHERE is_guardian AND student_id IN (SELECT district_id FROM shared)
    GROUP BY contact_id""",
]

_ORGS = """
INSERT INTO orgs SELECT * REPLACE (other_id($seed, sourced_id) AS sourced_id, other_id($seed, parent_id) AS parent_id)
FROM district.orgs
"""

_SHARED_PEOPLE = [
    """
    INSERT INTO users
    SELECT u.* REPLACE (
        other_id($seed, u.sourced_id) AS sourced_id, s.n AS native_id,
        'oth' || lpad(CAST(s.n AS VARCHAR), 7, '0') AS username, other_number(s.n) AS identifier,
        CASE WHEN s.n % 10 = 3 THEN '00' || u.state_id ELSE u.state_id END AS state_id,
        CASE WHEN s.n % 5 = 0 THEN mailbox(u.given_name, u.family_name, s.n) ELSE u.email END AS email,
        list_transform(u.org_ids, lambda o: other_id($seed, o)) AS org_ids,
        other_id($seed, u.primary_org_id) AS primary_org_id, NULL AS agent_ids, NULL AS relationships)
    FROM district.users u JOIN shared s ON s.district_id = u.sourced_id""",
    """
    INSERT INTO users
    SELECT u.* REPLACE (
        other_id($seed, u.sourced_id) AS sourced_id, 1000000 + g.n AS native_id,
        CASE WHEN g.n % 4 = 0 THEN printf('555-%03d-%04d', g.n % 1000, g.n * 7919 % 10000) ELSE u.phone END AS phone,
        NULL AS agent_ids, NULL AS relationships)
    FROM district.users u JOIN shared_guardians g ON g.district_id = u.sourced_id""",
    """
    INSERT INTO student_contacts
    SELECT l.* REPLACE (other_id($seed, l.student_id) AS student_id, other_id($seed, l.contact_id) AS contact_id)
    FROM district.student_contacts l
    WHERE l.is_guardian AND l.student_id IN (SELECT district_id FROM shared)""",
    """
    INSERT INTO demographics
    SELECT d.* REPLACE (other_id($seed, d.sourced_id) AS sourced_id)
    FROM district.demographics d JOIN shared s ON s.district_id = d.sourced_id""",
]

_OWN_PEOPLE = [
    """
    CREATE TEMP TABLE donors AS
    SELECT *, row_number() OVER (ORDER BY md5($seed || ':own:' || trim(sourced_id))) AS k,
           count(*) OVER () AS total
    FROM district.users
    WHERE role = 'student' AND status = 'active' AND trim(given_name) <> '' AND trim(family_name) <> ''""",
    """
    CREATE TEMP TABLE own AS
    SELECT row_number() OVER (ORDER BY p.k) AS n, p.sourced_id AS place, trim(g.given_name) AS given_name,
           trim(f.family_name) AS family_name, p.birth_date
    FROM donors p
    JOIN donors g ON g.k = (p.k * 31) % p.total + 1
    JOIN donors f ON f.k = (p.k * 17 + 5) % p.total + 1
    WHERE NOT EXISTS (
        SELECT 1 FROM district.users d
        WHERE d.role = 'student' AND lower(trim(d.given_name)) = lower(trim(g.given_name))
          AND lower(trim(d.family_name)) = lower(trim(f.family_name)) AND d.birth_date = p.birth_date)
    QUALIFY n <= $own""",
    """
    INSERT INTO users
    SELECT u.* REPLACE (
        other_id($seed, 'own-student-' || o.n) AS sourced_id, 2000000 + o.n AS native_id,
        'oth' || lpad(CAST(500000 + o.n AS VARCHAR), 7, '0') AS username, o.given_name AS given_name,
        o.family_name AS family_name, NULL AS middle_name, NULL AS preferred_first_name,
        other_number(500000 + o.n) AS identifier, '9' || lpad(CAST(o.n AS VARCHAR), 10, '0') AS state_id,
        mailbox(o.given_name, o.family_name, 'own' || o.n) AS email,
        list_transform(u.org_ids, lambda x: other_id($seed, x)) AS org_ids,
        other_id($seed, u.primary_org_id) AS primary_org_id, NULL AS agent_ids, NULL AS relationships)
    FROM own o JOIN district.users u ON u.sourced_id = o.place""",
    """
    INSERT INTO demographics
    SELECT d.* REPLACE (other_id($seed, 'own-student-' || o.n) AS sourced_id)
    FROM own o JOIN district.demographics d ON d.sourced_id = o.place""",
    """
    INSERT INTO users (sourced_id, status, date_last_modified, native_id, role, given_name, family_name,
                       email, sms, phone, org_ids)
    SELECT other_id($seed, 'own-parent-' || o.n), 'active', u.date_last_modified, 3000000 + o.n, 'parent',
           trim(g.given_name), o.family_name, mailbox(g.given_name, o.family_name, 'parent' || o.n), o.phone, o.phone, []
    FROM (SELECT *, printf('555-%03d-%04d', 500 + n % 500, n * 104729 % 10000) AS phone FROM own) o
    JOIN district.users u ON u.sourced_id = o.place
    JOIN donors g ON g.k = (o.n * 13) % g.total + 1""",
    """
    INSERT INTO student_contacts
    SELECT other_id($seed, 'own-student-' || o.n), other_id($seed, 'own-parent-' || o.n), 'guardian',
           true, true, true, true, 1, u.date_last_modified
    FROM own o JOIN district.users u ON u.sourced_id = o.place""",
    "DROP TABLE donors",
]


def build_other_system(district: str | Path, con: duckdb.DuckDBPyConnection) -> None:
    """Fill the empty store ``con`` with the other system's roster of the ``district`` store (read only)."""
    con.execute("ATTACH $path AS district (READ_ONLY)", {"path": str(district)})
    try:
        info = dict(con.execute("SELECT key, value FROM district.meta").fetchall())
        seed = int(info["seed"])
        students = int(info["students"])
        values = {"seed": seed, "share": SHARED_SHARE, "own": round(OWN_SHARE * students)}
        con.execute(_MACROS)
        for sql in [*_SHARED, _ORGS, *_SHARED_PEOPLE, *_OWN_PEOPLE]:
            con.execute(sql, {k: v for k, v in values.items() if f"${k}" in sql})
        refresh_contact_orgs(con)
        store.finalize(con)
        store.set_meta(con, **{**info, "system": SYSTEM_NAME})
    finally:
        con.execute("DETACH district")


def export_other_system(district: str | Path, dest: str | Path) -> Path:
    """Write the other system's bundle of the ``district`` store into the folder ``dest``; return it."""
    con = store.connect(":memory:")
    try:
        build_other_system(district, con)
        return export_bundle(con, dest, absent=NOT_SCHEDULED, system_name=SYSTEM_NAME)
    finally:
        con.close()


def ensure_other_system(district: str | Path) -> Path:
    """The other system's bundle of a pristine generated ``district``: a folder beside it, written
    on first use (under a temporary name, renamed when complete, so a crash never leaves half a
    bundle that looks whole)."""
    district = Path(district)
    folder = district.with_name(f"other-system-{district.stem}")
    if folder.is_dir():
        return folder
    partial = folder.with_name(f"{folder.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    export_other_system(district, partial)
    try:
        os.replace(partial, folder)
    except OSError:
        if not folder.is_dir():
            raise
        shutil.rmtree(partial, ignore_errors=True)  # another process wrote it first
    return folder
