"""Referential integrity: every reference of a record names a record the sync keeps.

A reference is checked against the referenced entity's staged table, the candidate roster this
stage already wrote for it (entities are staged in dependency order), so a record left out takes
the records that need it along: a skipped class skips its enrollments. A record leaving as
tobedeleted, or with one, is not "no record": :mod:`.tobedeleted` reports the references to it.
An entity referring to itself (a term's parent term) is checked against its own records.

Which references exist: :func:`passport_pipeline.entities.links` (a list column refers through
each element; an enrollment's user is a student or a staff member). A reference into an entity
that is not known (:mod:`.known`: not extracted completely by its latest extraction, or not
extracted at all) is not checked: unknown there is not missing. NULL or blank references are the
data requirements' business, not this check's.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from passport_pipeline.entities import ENTITIES, TEXT_LIST, links
from passport_pipeline.rules.expressions import BLANKS
from passport_pipeline.rules.formats import quoted
from passport_pipeline.rules.issues import ERROR, SKIPPED
from passport_pipeline.rules.tables import leaving_table, stage_table
from passport_pipeline.warehouse.sql import ident


def leaves_out(column: str, requirement: str) -> bool:
    """Whether a reference naming no record, or a leaving one, leaves its record out: when the
    reference is required (``skip_if_missing``), or when it is the record's own id (demographics
    of a student)."""
    return column == "sis_id" or requirement == "skip_if_missing"


def reference_findings(entity: str, records: str, *, source: str, known: Collection[str],
                       requirements: Mapping[str, str]) -> list[tuple[str, dict]]:
    """``(select, params)`` queries of findings ``(record_id, attribute, rule, severity,
    message)``, rule ``referential``, for the references of ``records`` (a quoted table of
    ``entity`` from ``source``) naming no record, given the ``known`` entities (staged before
    ``entity``, with their leaving tables) and the effective ``requirements`` of ``entity``."""
    found = []
    for column, targets in links(entity).items():
        if not all(target in known for target in targets):
            continue
        known_ids = " UNION ALL ".join(
            f"SELECT sis_id FROM {records}" if target == entity else
            f"SELECT sis_id FROM {stage_table('staged', source, target)}"
            f" UNION ALL SELECT sis_id FROM {leaving_table(target)}"
            for target in targets)
        skipped = leaves_out(column, requirements.get(column, "include"))
        params = {"attribute": column, "rule": "referential", "severity": SKIPPED if skipped else ERROR,
                  "blanks": BLANKS, "names": f"names no record of {' or '.join(targets)}",
                  "outcome": ": the record is left out" if skipped else ": the record is kept"}
        found.append((_unknown(ident(column), ENTITIES[entity].all_columns[column] == TEXT_LIST, records,
                               known_ids), params))
    return found


def _unknown(column: str, is_list: bool, records: str, known: str) -> str:
    if not is_list:
        return (f"SELECT r.sis_id, $attribute, $rule, $severity,"
                f" $attribute || ' ' || {quoted('r.' + column)} || ' ' || $names || $outcome"
                f" FROM {records} AS r ANTI JOIN ({known}) AS k ON r.{column} = k.sis_id"
                f" WHERE trim(r.{column}, $blanks) <> ''")
    more = "CASE WHEN count(*) > 1 THEN ' (and ' || (count(*) - 1) || ' more)' ELSE '' END"
    return (f"SELECT r.sis_id, $attribute, $rule, $severity,"
            f" $attribute || ' ' || {quoted('min(r.ref)')} || {more} || ' ' || $names || $outcome"
            f" FROM (SELECT sis_id, unnest({column}) AS ref FROM {records}) AS r"
            f" ANTI JOIN ({known}) AS k ON r.ref = k.sis_id"
            f" WHERE trim(r.ref, $blanks) <> '' GROUP BY r.sis_id")
