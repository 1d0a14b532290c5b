"""The "filtered" stage: which of a source's mapped records are synced at all (DESIGN.md §3).

Reads ``staging.<source>__<entity>__mapped`` and writes ``staging.<source>__<entity>__filtered``
(same columns), keeping the records that these decide to keep:

1. staff scope (``advanced.staff_scope``): every active staff member, or only those who teach,
   i.e. are the user of a teacher enrollment (without enrollments: whose own role is teacher);
2. emergency contacts (``advanced.sync_emergency_contacts``): when off, a student-contact link
   is kept only for a guardian: a custodial link, or a contact whose role is parent or guardian;
3. filter rules (``filters``, :mod:`.conditions`): include-only, any matching rule keeps a record;
4. include linked: a decision reaches the records that refer to the decided one, in registry
   (dependency) order, so it cascades (course -> classes -> enrollments). A record referring to
   a dropped record is dropped, a list of references loses its dropped elements (the record
   goes only when none is left), and a primary school that was dropped is cleared. A kept record
   of an entity with rules keeps the records that belong to it (enrollments, contact links,
   demographics) when their own rules would drop them (a kept class keeps its enrollments),
   unless another record they refer to was dropped. With
   ``include_linked: false`` an entity's rule decisions stay with it; drops by the two settings
   above always carry. Contacts belong to their students: a contact left with no student link
   is dropped. A reference to an id no mapped table holds is left for the next stage to report.

A decision that needs another entity's records is taken only when that entity is known
(:mod:`.known`): with enrollments unknown, a staff member's own role says whether they teach;
with contacts unknown, only a link's own custodial flag makes it a guardian's; with contact links
unknown, no contact is dropped for having none.

Every record left out gets an issue of severity Skipped saying why, one rule per reason
(:data:`RULES`): filtering is intended, not a data problem, but a district admin must be able to
see where each record went. The report counts the rows each reason dropped. Each entity's
dropped ids, reasons and messages go to a temporary table that the entities after it semi-join
and the issues are copied from, so a district of any size is two passes of set-based SQL per
entity, and one insert of its issues.
A term's decision does not pass to the terms below it (``parent_sis_id``): each term is judged
by the rules on its own, as its school year and dates are its own attributes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from passport_pipeline.config import Source
from passport_pipeline.config.rules import EntityFilter
from passport_pipeline.crash import crash_point
from passport_pipeline.entities import ENTITIES, TEXT_LIST
from passport_pipeline.entities import links as entity_links
from passport_pipeline.rules.conditions import filter_sql
from passport_pipeline.rules.expressions import BLANKS
from passport_pipeline.rules.formats import quoted
from passport_pipeline.rules.issues import SKIPPED, clear_issues, record_issues
from passport_pipeline.rules.known import UNKNOWN_FACT, unknown_entities, unknown_fact
from passport_pipeline.rules.report import EntityCounts, StageReport
from passport_pipeline.rules.tables import existing_tables, replace_relation, stage_table, staging_columns
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.sql import ident, param

STAFF_SCOPE = "staff scope"
EMERGENCY_CONTACTS_OFF = "emergency contacts off"
FILTER_RULES = "filter rules"
NO_LINKED_STUDENT = "no linked student"
SETTING_REASONS = (STAFF_SCOPE, EMERGENCY_CONTACTS_OFF)
"""Drops by an advanced setting: they reach linked records whatever ``include_linked`` says."""
RULES = ("staff_scope", "emergency_contacts", "filter_rules", "include_linked", "no_linked_student")
"""The rules of this stage's issues (all Skipped), one per reason a record is left out."""

GUARDIAN_ROLES = ["parent", "guardian"]
OPTIONAL_REFERENCES = frozenset({"primary_school_sis_id"})
"""References a record keeps its place without: one to a dropped record is cleared."""
BELONGING = frozenset({"enrollments", "student_contacts", "demographics"})
"""Records that only describe the records they link (a class's enrollments, a student's contact
links and demographics): a kept record keeps these even when their own rules would drop them."""


@dataclass(frozen=True)
class Drop:
    """One way a record may be left out: the SQL condition on the record ``m``, the reason the
    report counts, and the issue it raises (``message`` is SQL over ``m``)."""

    when: str
    reason: str
    rule: str
    attribute: str | None
    message: str


@dataclass(frozen=True)
class Link:
    """A column naming another entity's record(s), whose filter decision the record follows."""

    column: str
    target: str
    many: bool
    """The column is a list of ids."""


def links(entity: str) -> list[Link]:
    """What a record of ``entity`` refers to (:func:`passport_pipeline.entities.links`), one
    :class:`Link` per entity a column may name. A term's parent term is not followed (see the
    module's doc)."""
    columns = ENTITIES[entity].all_columns
    return [Link(column, target, columns[column] == TEXT_LIST)
            for column, targets in entity_links(entity).items() for target in targets if target != entity]


def filter_records(warehouse: Warehouse, source: Source, run_id: str, today: dt.date) -> StageReport:
    """Write the filtered table of every entity of ``source``, in one transaction.

    ``today`` is the day ``is_past`` and ``is_future`` compare with. The issues of ``run_id``
    this stage raised before are replaced, so re-running it with the same mapped tables gives the
    same tables and issues.
    """
    report = StageReport("filtered", source.name, facts={"today": today.isoformat()})
    with warehouse.writing() as con:
        con.execute("BEGIN")
        try:
            clear_issues(con, run_id=run_id, source=source.name, rules=RULES)
            filtering = _Filtering(con, source, run_id, today)
            for entity in source.entities:
                report.entities[entity] = filtering.filter(entity)
                if entity == "student_contacts" and "contacts" in source.entities and filtering.usable(entity):
                    filtering.drop_contacts_without_students(report.entities["contacts"])
            report.facts[UNKNOWN_FACT] = unknown_fact(source, filtering.unknown)
            crash_point("filtered.in_transaction")
            con.execute("COMMIT")
            crash_point("filtered.committed")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return report


class _Query:
    """The parameters of one statement over an entity's input ``m``, and the id lists it looks up.

    Lists of ids (dropped or kept schools, terms) are computed once per statement in a one-row
    ``lookups`` relation, for the list columns that name several records.
    """

    def __init__(self):
        self.params: dict = {}
        self._lists: dict[str, str] = {}

    def param(self, value) -> str:
        return param(self.params, value)

    def id_list(self, ids: str) -> str:
        name = f"ids{len(self._lists)}"
        self._lists[name] = f"(SELECT coalesce(list(sis_id), []) FROM ({ids}))"
        return f"lookups.{ident(name)}"

    def relation(self, table: str) -> str:
        """``table`` as ``m``, with the lookups this statement needs."""
        if not self._lists:
            return f"{table} AS m"
        lookups = ", ".join(f"{sql} AS {ident(name)}" for name, sql in self._lists.items())
        return f"{table} AS m CROSS JOIN (SELECT {lookups}) AS lookups"


class _Filtering:
    """One run of the stage over one source: the entities decided so far and what they dropped."""

    def __init__(self, con: duckdb.DuckDBPyConnection, source: Source, run_id: str, today: dt.date):
        self.con, self.source, self.run_id, self.today = con, source, run_id, today
        self.unknown = unknown_entities(con, source)
        self.dropped: dict[str, dict[str, int]] = {}
        existing = existing_tables(con)
        self.inputs: dict[str, str] = {}
        for entity in source.entities:
            mapped = stage_table("mapped", source.name, entity)
            if mapped not in existing:
                mapped = ident(f"filtered_input__{entity}")
                columns = ", ".join(f"{ident(name)} {kind}" for name, kind in staging_columns(entity).items())
                con.execute(f"CREATE OR REPLACE TEMP TABLE {mapped} ({columns})")
            self.inputs[entity] = mapped

    def usable(self, entity: str) -> bool:
        """Whether decisions may rest on the records of ``entity``: it is extracted and known."""
        return entity in self.inputs and entity not in self.unknown

    def filter(self, entity: str) -> EntityCounts:
        """Decide ``entity``'s records, write its filtered table and its issues, and count what
        each reason dropped."""
        self.dropped[entity] = self._decide(entity)
        self._write(entity)
        counts = EntityCounts(rows_in=self._count(self.inputs[entity]), rows_out=self._count(self._output(entity)),
                              dropped=dict(self.dropped[entity]))
        if self.dropped[entity]:
            record_issues(self.con, run_id=self.run_id, source=self.source.name, entity=entity,
                          select=f"SELECT sis_id, attribute, rule, $skipped, message FROM {_gone(entity)}",
                          params={"skipped": SKIPPED})
            counts.issues = {f"{rule} ({SKIPPED})": n for rule, n in self.con.execute(
                f"SELECT rule, count(*) FROM {_gone(entity)} GROUP BY rule ORDER BY rule").fetchall()}
        return counts

    def _decide(self, entity: str) -> dict[str, int]:
        """Put the records of ``entity`` to drop, with why (reason, rule, attribute, message), in
        its gone table; how many per reason. The message is made for the dropped records only."""
        query = _Query()
        cases = self._drops(entity, query)
        if not cases:
            return {}
        which = " ".join(f"WHEN {drop.when} THEN {n}" for n, drop in enumerate(cases, 1))
        message = " ".join(f"WHEN {n} THEN {drop.message}" for n, drop in enumerate(cases, 1))
        reasons, rules, attributes = (query.param([getattr(drop, field) for drop in cases])
                                      for field in ("reason", "rule", "attribute"))
        self.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {_gone(entity)} AS
                SELECT sis_id, {reasons}[drop_case] AS reason, {rules}[drop_case] AS rule,
                       {attributes}[drop_case] AS attribute, CASE drop_case {message} END AS message
                FROM (SELECT m.*, CASE {which} END AS drop_case FROM {query.relation(self.inputs[entity])}) AS m
                WHERE drop_case IS NOT NULL""",
            query.params,
        )
        return dict(self.con.execute(
            f"SELECT reason, count(*) FROM {_gone(entity)} GROUP BY reason ORDER BY reason").fetchall())

    def _write(self, entity: str) -> None:
        """The filtered table: the input without the gone records, references to dropped ones removed;
        a view of the mapped table when nothing was (a copy would change nothing)."""
        query = _Query()
        rewritten = self._rewritten_references(entity, query)
        select = ", ".join(f"{rewritten.get(column, 'm.' + ident(column))} AS {ident(column)}"
                           for column in staging_columns(entity))
        without = (f" ANTI JOIN {_gone(entity)} AS gone ON gone.sis_id IS NOT DISTINCT FROM m.sis_id"
                   if self.dropped[entity] else "")
        unchanged = not (without or rewritten) and self.inputs[entity] == stage_table("mapped", self.source.name, entity)
        may_lose_contacts = entity == "contacts" and self.usable("student_contacts")
        replace_relation(self.con, self._output(entity), f"SELECT {select} FROM {query.relation(self.inputs[entity])}{without}",
                         query.params, view=unchanged and not may_lose_contacts)

    def drop_contacts_without_students(self, counts: EntityCounts) -> None:
        """Drop the contacts that no kept student-contact link names: contacts belong to their students."""
        unlinked = (f"FROM {self._output('contacts')} AS c WHERE NOT EXISTS (SELECT 1 FROM"
                    f" {self._output('student_contacts')} AS l WHERE l.contact_sis_id = c.sis_id)")
        record_issues(self.con, run_id=self.run_id, source=self.source.name, entity="contacts",
                      select=f"SELECT c.sis_id, NULL, $rule, $skipped, $message {unlinked}",
                      params={"rule": "no_linked_student", "skipped": SKIPPED,
                              "message": "no linked student is synced: the contact is left out"})
        (dropped,) = self.con.execute(f"DELETE {unlinked}").fetchone()
        if dropped:
            counts.dropped[NO_LINKED_STUDENT] = dropped
            counts.issues[f"no_linked_student ({SKIPPED})"] = dropped
            counts.rows_out -= dropped

    def _drops(self, entity: str, query: _Query) -> list[Drop]:
        """Each way a record of ``entity`` may be dropped, first match wins."""
        cases = []
        setting = self._setting(entity, query)
        if setting:
            cases.append(setting)
        for link in links(entity):
            gone = None if link.column in OPTIONAL_REFERENCES else self._carried(link.target, query)
            if gone is None:
                continue
            column = "m." + ident(link.column)
            if link.many:
                when = f"len({column}) > 0 AND len({_remaining(column, query.id_list(gone))}) = 0"
                message = query.param(f"every one of {link.column} is filtered out of {link.target}: "
                                      "the record is left out")
            else:
                when = f"{column} IN ({gone})"
                message = (f"{query.param(link.column + ' ')} || {quoted(column)}"
                           f" || {query.param(f' is filtered out of {link.target}: the record is left out')}")
            cases.append(Drop(when, f"linked {link.target} dropped", "include_linked", link.column, message))
        entity_filter = self.source.filters.get(entity)
        if entity_filter and entity_filter.rules:
            when = f"NOT {filter_sql(entity_filter, entity, query.params, self.today)}"
            kept_by_link = self._kept_by_link(entity, query)
            names = ", ".join(rule.name for rule in entity_filter.rules if rule.name)
            message = f"matches no filter rule of {entity}{f' ({names})' if names else ''}: the record is left out"
            cases.append(Drop(f"{when} AND NOT {kept_by_link}" if kept_by_link else when, FILTER_RULES,
                              "filter_rules", None, query.param(message)))
        return cases

    def _setting(self, entity: str, query: _Query) -> Drop | None:
        """The staff scope or emergency contacts drop of ``entity``, when the setting applies to it."""
        advanced = self.source.advanced
        if entity == "staff" and advanced.staff_scope == "active_teachers_only":
            teacher = query.param("teacher")
            if self.usable("enrollments"):
                teaches = (f"m.sis_id IN (SELECT user_sis_id FROM {self.inputs['enrollments']}"
                           f" WHERE {_text('role', query)} = {teacher})")
                message = "teaches no class (staff_scope: active_teachers_only): the record is left out"
            else:
                teaches = f"{_text('m.role', query)} = {teacher}"
                message = "role is not teacher (staff_scope: active_teachers_only): the record is left out"
            return Drop(f"NOT coalesce({teaches}, false)", STAFF_SCOPE, "staff_scope", None, query.param(message))
        if entity == "student_contacts" and not advanced.sync_emergency_contacts:
            guardian = f"{_text('m.custodial', query)} = {query.param('true')}"
            if self.usable("contacts"):
                guardian += (f" OR m.contact_sis_id IN (SELECT sis_id FROM {self.inputs['contacts']}"
                             f" WHERE list_contains({query.param(GUARDIAN_ROLES)}, {_text('role', query)}))")
            message = ("not custodial, nor to a parent or guardian (sync_emergency_contacts: false): "
                       "the record is left out")
            return Drop(f"NOT coalesce({guardian}, false)", EMERGENCY_CONTACTS_OFF, "emergency_contacts", None,
                        query.param(message))
        return None

    def _carried(self, target: str, query: _Query) -> str | None:
        """The ids of ``target`` whose drop reaches the records naming them, or None if there are none."""
        dropped = self.dropped.get(target, {})
        if self._filter(target).include_linked:
            return f"SELECT sis_id FROM {_gone(target)}" if dropped else None
        if not any(reason in SETTING_REASONS for reason in dropped):
            return None
        return f"SELECT sis_id FROM {_gone(target)} WHERE list_contains({query.param(list(SETTING_REASONS))}, reason)"

    def _kept_by_link(self, entity: str, query: _Query) -> str | None:
        """Whether a record that belongs to others names a kept record of an entity whose rules carry
        to linked records (None for entities that stand on their own: students, classes, ...)."""
        if entity not in BELONGING:
            return None
        kept = []
        for link in links(entity):
            target_filter = self._filter(link.target)
            if link.target not in self.inputs or not (target_filter.rules and target_filter.include_linked):
                continue
            ids = f"SELECT sis_id FROM {self._output(link.target)}"
            column = "m." + ident(link.column)
            kept.append(f"list_has_any({column}, {query.id_list(ids)})" if link.many else f"{column} IN ({ids})")
        return f"coalesce({' OR '.join(kept)}, false)" if kept else None

    def _rewritten_references(self, entity: str, query: _Query) -> dict[str, str]:
        """Reference columns that lose dropped ids: list elements removed, an optional one cleared."""
        rewritten = {}
        for link in links(entity):
            optional = link.column in OPTIONAL_REFERENCES
            gone = self._carried(link.target, query) if link.many or optional else None
            if gone is None:
                continue
            column = "m." + ident(link.column)
            if link.many:
                rewritten[link.column] = _remaining(column, query.id_list(gone))
            else:
                rewritten[link.column] = f"CASE WHEN {column} IN ({gone}) THEN NULL ELSE {column} END"
        return rewritten

    def _filter(self, entity: str) -> EntityFilter:
        return self.source.filters.get(entity) or EntityFilter()

    def _output(self, entity: str) -> str:
        return stage_table("filtered", self.source.name, entity)

    def _count(self, table: str) -> int:
        return self.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def _gone(entity: str) -> str:
    """The temporary table of the ids this stage dropped from ``entity``, and why."""
    return ident(f"filtered_gone__{entity}")


def _text(column: str, query: _Query) -> str:
    """A text column compared ignoring case and surrounding blanks."""
    return f"lower(trim({column}, {query.param(BLANKS)}))"


def _remaining(column: str, gone_list: str) -> str:
    """The list ``column`` without the ids in ``gone_list`` (NULL elements stay: not ours to judge)."""
    return f"list_filter({column}, lambda element: element IS NULL OR NOT list_contains({gone_list}, element))"
