"""The schools mapping: which source schools are synced, and as which Passport school.

:func:`map_schools` writes the source's schools mapping report (``schools_mapping_table``), one
row per source school, which the mapped stage then applies to every entity:

- ``mapped``: synced as ``passport_school_sis_id`` / ``passport_school_name``. In ``auto`` mode
  every school maps to itself (its prefixed id, its name). In ``explicit`` mode each listed
  school maps to a new Passport school by name, or to an existing one by its Passport id; the
  source schools given the same target become one school, whose id is the prefixed smallest
  source id of the group and whose name is the configured one (for an existing school: the
  name of the group's first source school).
- ``unmapped``: in the source but not listed (explicit mode): its data never reaches staging.
- ``missing_in_source``: listed (explicit), or seen by an earlier run (auto), but not in the
  source now. Only reported: nothing is deleted because of it.

``new_in_source`` marks schools first seen by this run, once the source has a history (on a
source's first run nothing is new); sightings are kept in ``sync.schools_seen``. Only orgs of
type ``school`` with an id are schools here; the district and other orgs pass through.
"""

from __future__ import annotations

from passport_pipeline.config import Source
from passport_pipeline.crash import crash_point
from passport_pipeline.rules.mapping import execute, newest_records, prefixed, raw_records
from passport_pipeline.rules.report import EntityCounts, StageReport
from passport_pipeline.rules.tables import existing_tables, schools_mapping_table
from passport_pipeline.warehouse.connection import Warehouse

TARGETS = """
    SELECT unnest(CAST($listed_ids AS VARCHAR[])) AS school_id,
           unnest(CAST($listed_names AS VARCHAR[])) AS target_name,
           unnest(CAST($listed_existing AS VARCHAR[])) AS existing
    UNION ALL SELECT school_id, NULL, NULL FROM temp.source_schools WHERE NOT $explicit
    UNION ALL SELECT school_id, NULL, NULL FROM sync.schools_seen
              WHERE NOT $explicit AND source = $source
                AND school_id NOT IN (SELECT school_id FROM temp.source_schools)
"""
"""What each school should map to: the listed ones (explicit), or every school the source has or
had, each to itself (auto: no name, no existing id)."""

REPORT = f"""
WITH targets AS ({TARGETS}),
members AS (
    SELECT coalesce(s.school_id, t.school_id) AS source_school_id, s.school_name AS source_school_name,
           s.school_id IS NOT NULL AS present, t.school_id IS NOT NULL AS listed, t.target_name, t.existing
    FROM temp.source_schools AS s FULL JOIN targets AS t ON t.school_id = s.school_id),
grouped AS (
    SELECT *, min(source_school_id) OVER passport_school AS first_id,
           min_by(source_school_name, source_school_id) FILTER (WHERE present) OVER passport_school AS first_name
    FROM members
    WINDOW passport_school AS (PARTITION BY listed, existing, target_name,
                               CASE WHEN existing IS NULL AND target_name IS NULL THEN source_school_id END))
SELECT source_school_id, source_school_name,
       CASE WHEN NOT present THEN 'missing_in_source' WHEN NOT listed THEN 'unmapped' ELSE 'mapped' END AS status,
       present AND seen.first_run_id = $run AND EXISTS
           (SELECT 1 FROM sync.schools_seen WHERE source = $source AND first_run_id <> $run) AS new_in_source,
       CASE WHEN present AND listed THEN {prefixed('first_id')} END AS passport_school_sis_id,
       CASE WHEN present AND listed THEN coalesce(target_name, first_name) END AS passport_school_name,
       CASE WHEN present AND listed THEN existing END AS existing_passport_id
FROM grouped LEFT JOIN sync.schools_seen AS seen ON seen.source = $source AND seen.school_id = source_school_id
ORDER BY source_school_id
"""
"""The report: a source school is mapped when present and listed; a Passport school is the group
of listed schools with the same target (in auto mode each school is its own group)."""


def map_schools(warehouse: Warehouse, source: Source, run_id: str) -> StageReport:
    """Record the schools the source has now and write its schools mapping report.

    Facts: how many schools are ``mapped``, ``unmapped``, ``missing_in_source`` and
    ``new_in_source``, and how many ``passport_schools`` the mapped ones become.
    """
    settings = source.advanced.schools_mapping
    listed = settings.schools if settings.mode == "explicit" else {}
    params = {
        "source": source.name, "run": run_id, "prefix": source.sis_id_prefix,
        "explicit": settings.mode == "explicit",
        "listed_ids": list(listed), "listed_names": [t.name for t in listed.values()],
        "listed_existing": [t.existing for t in listed.values()],
    }
    table = schools_mapping_table(source.name)
    with warehouse.writing() as con:
        con.execute("BEGIN")
        try:
            raw = raw_records(source.name, "schools", existing_tables(con))
            con.execute(f"""CREATE OR REPLACE TEMP TABLE source_schools AS
                            SELECT sis_id AS school_id, name AS school_name
                            FROM ({newest_records(raw, ["sis_id", "name", "org_type"])})
                            WHERE org_type = 'school' AND sis_id IS NOT NULL""")
            execute(con, """INSERT INTO sync.schools_seen
                            SELECT $source, school_id, $run, $run FROM temp.source_schools
                            ON CONFLICT (source, school_id) DO UPDATE SET last_run_id = EXCLUDED.last_run_id""",
                    params)
            execute(con, f"CREATE OR REPLACE TABLE {table} AS {REPORT}", params)
            facts = con.execute(f"""SELECT count(*) FILTER (WHERE status = 'mapped'),
                                           count(*) FILTER (WHERE status = 'unmapped'),
                                           count(*) FILTER (WHERE status = 'missing_in_source'),
                                           count(*) FILTER (WHERE new_in_source),
                                           count(DISTINCT passport_school_sis_id)
                                    FROM {table}""").fetchone()
            crash_point("schools_mapping.in_transaction")
            con.execute("COMMIT")
            crash_point("schools_mapping.committed")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    mapped, unmapped, missing, new, passport_schools = facts
    return StageReport(
        "schools_mapping", source.name,
        entities={"schools": EntityCounts(rows_in=mapped + unmapped, rows_out=mapped)},
        facts={"mapped": mapped, "unmapped": unmapped, "missing_in_source": missing, "new_in_source": new,
               "passport_schools": passport_schools},
    )
