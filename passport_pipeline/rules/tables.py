"""The tables of the rule stages, named from the source and entity (``staging`` schema)."""

from __future__ import annotations

from passport_pipeline.entities import ENTITIES
from passport_pipeline.warehouse.sql import ident

STAGES = ("mapped", "filtered", "staged")
"""The per-entity stages, in order; ``staged`` is the source's candidate roster."""


def stage_table(stage: str, source: str, entity: str) -> str:
    """The quoted table of ``entity`` after ``stage``: ``staging."<source>__<entity>__<stage>"``,
    and for the last stage simply ``staging."<source>__<entity>"``."""
    suffix = "" if stage == "staged" else f"__{stage}"
    return ident("staging", f"{source}__{entity}{suffix}")


def schools_mapping_table(source: str) -> str:
    """The schools mapping report of a source."""
    return ident("staging", f"{source}__schools_mapping")


def leaving_table(entity: str) -> str:
    """The staged stage's temporary table of the ``entity`` records leaving as tobedeleted or with
    one (:mod:`.tobedeleted`): ``sis_id``, ``root`` (the tobedeleted record, e.g. ``'c1' of
    courses``) and ``own`` (its own status is tobedeleted)."""
    return ident(f"_leaving__{entity}")


def staging_columns(entity: str) -> dict[str, str]:
    """Columns of every stage table of ``entity``: the source's name, then the registry's columns."""
    return {"source": "VARCHAR", **ENTITIES[entity].all_columns}


def existing_tables(con) -> set[str]:
    """The quoted names of the warehouse's tables and views (not temporary ones), to tell which
    inputs exist."""
    rows = con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database()"
        " AND NOT temporary UNION ALL SELECT schema_name, view_name FROM duckdb_views()"
        " WHERE database_name = current_database() AND NOT temporary AND NOT internal")
    return {ident(schema, name) for schema, name in rows.fetchall()}


def replace_relation(con, name: str, select: str, params: dict | None = None, *, view: bool = False) -> None:
    """Make ``name`` (quoted, schema-qualified) hold ``select``: a table, or a view when ``view``
    (a stage that changes nothing shows its input instead of copying it)."""
    schema, table = (part.strip('"').replace('""', '"') for part in name.split('"."'))
    (kind,) = con.execute(
        "SELECT coalesce(any_value(kind), '') FROM (SELECT 'TABLE' AS kind FROM duckdb_tables()"
        " WHERE schema_name = $schema AND table_name = $table AND NOT temporary UNION ALL"
        " SELECT 'VIEW' FROM duckdb_views() WHERE schema_name = $schema AND view_name = $table AND NOT temporary)",
        {"schema": schema, "table": table}).fetchone()
    wanted = "VIEW" if view else "TABLE"
    if kind and kind != wanted:
        con.execute(f"DROP {kind} {name}")
    con.execute(f"CREATE OR REPLACE {wanted} {name} AS {select}", params or {})
