"""Previews of roster tables for the Dagster UI, showing only what the district allows to be seen.

A preview (a few rows of a table, in an asset's metadata) is kept for good in Dagster's event
log, which anyone with access to the UI can read. So every preview is built here, from the
entity the table holds and the ``privacy`` setting of ``passport.yaml``:

- a column is shown only when it is an attribute of the entity (or a column of a report the caller
  names): ``payload``, which holds the whole record as sent, and any other column never are;
- a personal attribute (the entity registry says which, and why) only when ``privacy.previews``
  is ``personal_data``;
- an attribute the source's ``requirements`` mask never, at any stage, raw included — nor the
  same attribute of an entity describing the same person (a student's ``birth_date`` when
  ``demographics.birth_date`` is masked), nor a source attribute that attribute mapping feeds it
  from. A mask is the district admin's word that the value must not be seen.

Log lines and check metadata carry ids and counts only, so they need nothing from here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from passport_pipeline.config import PrivacySettings, Source
from passport_pipeline.config.models import PERSONAL_DATA
from passport_pipeline.config.rules import Expression
from passport_pipeline.entities import ENTITIES
from passport_pipeline.rules.expressions import effective_mapping
from passport_pipeline.warehouse.sql import ident

PREVIEW_ROWS = 5


def masked_attributes(source: Source, entity: str) -> frozenset[str]:
    """The attributes of ``entity`` that are never shown for ``source``: those its requirements
    mask, for this entity or another describing the same person, and the source attributes that
    attribute mapping computes them from."""
    person = ENTITIES[entity].person
    same_person = {entity} | ({e for e, defined in ENTITIES.items() if defined.person == person} if person else set())
    masked = {attribute for other in same_person
              for attribute, rule in source.requirements.get(other, {}).items()
              if rule == "mask" and attribute in ENTITIES[entity].all_columns}
    mapping = effective_mapping(entity, source.attributes.get(entity), source.app)
    fed_from = {name for attribute in masked if attribute in mapping for name in _attributes(mapping[attribute])}
    return frozenset(masked | fed_from)


def shown_columns(entity: str, privacy: PrivacySettings, masked: frozenset[str],
                  columns: Mapping[str, str | None]) -> list[str]:
    """The columns a preview of ``entity`` may show, of ``columns``: table column -> the attribute
    of ``entity`` it holds, or None for a column of the caller's own report that describes no one."""
    defined = ENTITIES[entity]
    personal_allowed = privacy.previews == PERSONAL_DATA
    return [column for column, attribute in columns.items()
            if attribute is None or (attribute in defined.all_columns and attribute not in masked
                                     and (personal_allowed or attribute not in defined.personal))]


def preview(read, table: str, entity: str, source: Source, privacy: PrivacySettings, *,
            report_columns: Mapping[str, str | None] | None = None, order_by: str = "sis_id",
            limit: int = PREVIEW_ROWS) -> str:
    """Markdown of the first ``limit`` rows of ``table`` (ordered by ``order_by``), which holds
    ``entity`` records of ``source``, with only the columns the district allows to be seen.

    A table of records has the entity's attributes as columns. A report about them names its
    columns in ``report_columns``: each column -> the attribute it holds, or None. A line under
    the table says what was left out, by attribute name (never a value).
    """
    present = [column[0] for column in read.execute(f"SELECT * FROM {table} LIMIT 0").description]
    columns = dict(report_columns) if report_columns is not None else {name: name for name in present}
    masked = masked_attributes(source, entity)
    shown = [column for column in shown_columns(entity, privacy, masked, columns) if column in present]
    selected = ", ".join(ident(column) for column in shown)
    rows = read.execute(f"SELECT {selected} FROM {table} ORDER BY {order_by} LIMIT {int(limit)}").df()
    text = rows.to_markdown(index=False) if len(rows) else "(no rows)"
    left_out = _left_out(entity, privacy, masked, {c: a for c, a in columns.items() if c in present and c not in shown})
    return f"{text}\n\n{left_out}" if left_out else text


def _left_out(entity: str, privacy: PrivacySettings, masked: frozenset[str], hidden: Mapping[str, str | None]) -> str:
    """One line naming the attributes left out of a preview and why."""
    never = sorted(column for column, attribute in hidden.items() if attribute in masked)
    personal = sorted(column for column, attribute in hidden.items()
                      if attribute in ENTITIES[entity].personal and column not in never)
    parts = []
    if personal:
        parts.append(f"{len(personal)} personal attribute{'s' if len(personal) > 1 else ''} "
                     f"(privacy.previews is {privacy.previews} in passport.yaml)")
    if never:
        parts.append(f"masked by the source's requirements, never shown: {', '.join(never)}")
    return f"_Not shown: {'; '.join(parts)}._" if parts else ""


def _attributes(expression: Expression) -> Iterator[str]:
    """The source attributes an attribute mapping expression reads."""
    if expression.operation == "attribute":
        yield expression.attribute
    for _, operand in expression.operands:
        yield from _attributes(operand)
