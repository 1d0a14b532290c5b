"""Which entities of a source are known: whether a reference naming no record of it is really missing.

An entity is known only when its latest extraction — the latest run with ``sync.extractions`` rows
for that source and entity — has every row ``complete``. Otherwise it is unknown: the pull failed
(the raw table keeps an older picture, or nothing), the source does not provide it (``absent``),
it is still running (or its run was killed), it was never extracted, or the source does not
extract it at all (not in its ``entities``). What was not extracted is unknown, not missing: the
stages never leave a record out, nor blame its data, because of a reference into an unknown
entity, nor judge it on the absence of records there.

:func:`unknown_entities` is the one place this is decided; the filtered stage (staff scope,
emergency contacts, contacts without students) and the staged stage (referential integrity,
tobedeleted) read it, and say in their report's facts what was unknown and why.
"""

from __future__ import annotations

from passport_pipeline.config import Source
from passport_pipeline.entities import ENTITIES, links

UNKNOWN_FACT = "unknown entities"
"""The stage report's fact naming the unknown entities and why."""

LATEST = """
WITH latest AS (
    SELECT entity, arg_max(run_id, started_at) AS run_id
    FROM sync.extractions WHERE source = $source GROUP BY entity)
SELECT entity, run_id, count(*) AS scopes,
       list(status ORDER BY status) FILTER (WHERE status <> 'complete') AS incomplete
FROM sync.extractions JOIN latest USING (entity, run_id)
WHERE source = $source
GROUP BY entity, run_id
"""
"""Per entity of the source: its latest extraction run, how many scopes it pulled, and the
statuses of those that are not complete."""


def unknown_entities(con, source: Source) -> dict[str, str]:
    """Every entity of the registry that is not known for ``source`` -> why, in words for an admin."""
    latest = {entity: (run_id, scopes, incomplete) for entity, run_id, scopes, incomplete
              in con.execute(LATEST, {"source": source.name}).fetchall()}
    unknown = {}
    for entity in ENTITIES:
        if entity not in source.entities:
            unknown[entity] = "not in the source's entities"
        elif entity not in latest:
            unknown[entity] = "never extracted"
        elif latest[entity][2]:
            unknown[entity] = _incomplete(*latest[entity])
    return unknown


def unknown_fact(source: Source, unknown: dict[str, str]) -> str:
    """The value of :data:`UNKNOWN_FACT`: the unknown entities the source's entities extract or
    refer to, each with why (``none`` when all are known)."""
    relevant = {*source.entities, *(t for e in source.entities for targets in links(e).values() for t in targets)}
    shown = [f"{entity} ({why})" for entity, why in unknown.items() if entity in relevant]
    return "; ".join(shown) or "none"


def _incomplete(run_id: str, scopes: int, statuses: list[str]) -> str:
    if len(statuses) == scopes and set(statuses) == {"absent"}:
        return f"not provided by the source (absent in run '{run_id}')"
    counts = ", ".join(f"{statuses.count(status)} {status}" for status in dict.fromkeys(statuses))
    return f"latest extraction (run '{run_id}') not complete: {counts}, of {scopes} scope{'s' * (scopes > 1)}"
