"""Records to be deleted, and the records that leave with them.

A record whose ``status`` (trimmed, any case) is ``tobedeleted``, or OneRoster 1.0's ``inactive``,
is not a candidate: it leaves the candidate roster with an issue of rule ``tobedeleted``
(severity Skipped), and so do the records that cannot be without it — those whose required
reference (``skip_if_missing``, by default or configured) or own id names a leaving record: the
enrollments of a tobedeleted class or user, the contact links and demographics of a tobedeleted
student, the links of a tobedeleted contact, the classes of a tobedeleted course or school, and on
along :func:`passport_pipeline.entities.links` (an enrollment of a class of a tobedeleted course).
Their issue names the record they leave with. An optional reference to a leaving record (a
student's schools, an enrollment's school) is an issue of severity Error, the record kept and
the reference as it is, as the referential check treats optional references. These are the
deletions the diff will count; nothing is deleted here.

Why the staged stage: it is a decision on the data, not a setting the district chose, so it
raises issues and does not follow ``include_linked`` (a kept class does not keep the enrollments
of a tobedeleted student); and it follows references exactly as referential integrity does, in
the same dependency order, within the same known entities, so it runs beside that check.
References into an unknown entity (:mod:`.known`) are not followed: they never make a record
Skipped. A record's own status always counts. A term's parent term is followed one level, as the
referential check reads a term's references among the terms it is given.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from passport_pipeline.entities import ENTITIES, TEXT_LIST, links
from passport_pipeline.rules.expressions import BLANKS
from passport_pipeline.rules.formats import quoted
from passport_pipeline.rules.integrity import leaves_out
from passport_pipeline.rules.issues import ERROR, SKIPPED
from passport_pipeline.rules.mapping import execute
from passport_pipeline.rules.tables import leaving_table
from passport_pipeline.warehouse.sql import ident

RULE = "tobedeleted"
STATUS_WORDS = ["tobedeleted", "inactive"]
"""Statuses (trimmed, lower case) of a record to be deleted: OneRoster 1.1's, and 1.0's."""

_FOUND = "_tobedeleted"


def is_tobedeleted(status: str) -> str:
    """SQL: the status ``status`` marks its record to be deleted (uses ``$blanks``, ``$words``)."""
    return f"list_contains($words, lower(trim({status}, $blanks)))"


def tobedeleted_findings(con, entity: str, records: str, *, known: Collection[str],
                         requirements: Mapping[str, str]) -> list[tuple[str, dict]]:
    """Find the tobedeleted records of ``records`` (a quoted table of ``entity``) and those naming a
    leaving record of a ``known`` entity (staged before, so its :func:`leaving_table` exists);
    write ``entity``'s leaving table; return the query of findings ``(record_id, attribute, rule,
    severity, message)``."""
    params = {"blanks": BLANKS, "words": STATUS_WORDS, "entity": entity, "skipped": SKIPPED}
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_FOUND} (record_id VARCHAR, attribute VARCHAR,"
                " severity VARCHAR, message VARCHAR, root VARCHAR)")
    execute(con, f"INSERT INTO {_FOUND} SELECT sis_id, 'status', $skipped,"
                f" 'status ' || {quoted('status')} || ' marks the record to be deleted: it is left out',"
                f" {quoted('sis_id')} || ' of ' || $entity"
                f" FROM {records} WHERE {is_tobedeleted('status')}", params)
    for column, targets in links(entity).items():
        if not all(target in known for target in targets):
            continue
        leaving = " UNION ALL ".join(
            f"SELECT sis_id, {quoted('sis_id')} || ' of ' || $entity AS root, true AS own FROM {records}"
            f" WHERE {is_tobedeleted('status')}" if target == entity else
            f"SELECT sis_id, root, own FROM {leaving_table(target)}"
            for target in targets)
        severity = SKIPPED if leaves_out(column, requirements.get(column, "include")) else ERROR
        outcome = "the record leaves with it" if severity == SKIPPED else "the record is kept"
        is_list = ENTITIES[entity].all_columns[column] == TEXT_LIST
        execute(con, f"INSERT INTO {_FOUND} {_naming(ident(column), is_list, records, leaving)}",
                {**params, "attribute": column, "severity": severity, "outcome": outcome})
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {leaving_table(entity)} AS
                    SELECT record_id AS sis_id, bool_or(attribute = 'status') AS own,
                           coalesce(min(root) FILTER (WHERE attribute = 'status'), min(root)) AS root
                    FROM {_FOUND} WHERE severity = $skipped AND record_id IS NOT NULL GROUP BY record_id""",
                {"skipped": SKIPPED})
    return [(f"SELECT record_id, attribute, $rule, severity, message FROM {_FOUND}", {"rule": RULE})]


def _naming(column: str, is_list: bool, records: str, leaving: str) -> str:
    """The findings of the records whose ``column`` names a record of ``leaving`` (``sis_id``,
    ``root``, ``own``): one per record, naming the first such reference of a list."""
    if not is_list:
        said = _said(f"r.{column}", "l.root", "l.own")
        return (f"SELECT r.sis_id, $attribute, $severity, {said} || ': ' || $outcome, l.root"
                f" FROM {records} AS r JOIN ({leaving}) AS l ON r.{column} = l.sis_id")
    said = _said("min(r.ref)", "arg_min(l.root, r.ref)", "arg_min(l.own, r.ref)")
    more = "CASE WHEN count(*) > 1 THEN ' (and ' || (count(*) - 1) || ' more)' ELSE '' END"
    return (f"SELECT r.sis_id, $attribute, $severity, {said} || {more} || ': ' || $outcome, arg_min(l.root, r.ref)"
            f" FROM (SELECT sis_id, unnest({column}) AS ref FROM {records}) AS r"
            f" JOIN ({leaving}) AS l ON r.ref = l.sis_id GROUP BY r.sis_id")


def _said(ref: str, root: str, own: str) -> str:
    """SQL: what the reference ``ref`` names: a tobedeleted record, or one leaving with ``root``."""
    return (f"$attribute || ' ' || {quoted(ref)} || CASE WHEN {own} THEN ' is tobedeleted'"
            f" ELSE ' leaves with tobedeleted record ' || {root} END")
