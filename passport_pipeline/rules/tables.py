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


def staging_columns(entity: str) -> dict[str, str]:
    """Columns of every stage table of ``entity``: the source's name, then the registry's columns."""
    return {"source": "VARCHAR", **ENTITIES[entity].all_columns}


def existing_tables(con) -> set[str]:
    """The quoted names of the warehouse's tables (not temporary ones), to tell which inputs exist."""
    rows = con.execute("SELECT schema_name, table_name FROM duckdb_tables()"
                       " WHERE database_name = current_database() AND NOT temporary")
    return {ident(schema, name) for schema, name in rows.fetchall()}
