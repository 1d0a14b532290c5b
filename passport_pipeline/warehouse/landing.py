"""Landing API pages as JSON text: DuckDB normalizes them, so Python touches each page once.

The source clients decode each page (paging needs its records); normalizing it record by
record in Python, then handing DuckDB Python objects, cost several times the decoding and
held the GIL against the threads fetching the next pages. Instead a :class:`PageLanding` keeps
each page as JSON text — the response body as sent when the page is all of it
(:class:`~passport_pipeline.sources.paging.SentPage`), else the records encoded again in one
call — and, every :data:`~.raw.BATCH_ROWS` rows, lands every buffered page: DuckDB parses the
pages into a temporary table of records (their JSON, the fields the read's
:class:`~.normalize_sql.SqlMapping` needs, the derived values its rows use, and the quarantine
reason), then inserts each entity's canonical rows and the quarantined records from it, through
the entities' :class:`~.raw.Extraction`\\ s. Page texts travel as a parameter, never inside SQL.

The batches of a read share a :class:`~.connection.Transaction`, committed every
:data:`~.raw.TRANSACTION_ROWS` records and when the read ends: their rows reach the database
file once, not through the WAL and again at each checkpoint (that had cost as much as parsing
them). Rows committed before a read ended are as partial as ever: only ``sync.extractions``
says a pull completed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from passport_pipeline.entities import ENTITIES
from passport_pipeline.sources.page_json import UnreadableRecord
from passport_pipeline.sources.paging import SentPage
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.normalize_sql import Rows, SqlMapping, TypeChecks, is_object, literal, structure
from passport_pipeline.warehouse.raw import BATCH_ROWS, TRANSACTION_ROWS, Extraction, land_rows, quarantine_rows
from passport_pipeline.warehouse.sql import ident

_encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
_encode_unicode = json.JSONEncoder(separators=(",", ":"), check_circular=False, ensure_ascii=False).encode
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE_PAIR = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}")
NOT_UNICODE = ("text that is not valid Unicode (a lone UTF-16 surrogate escape such as \\ud800, which the "
               "warehouse cannot store): the server must send whole surrogate pairs")


@dataclass(frozen=True)
class _Page:
    text: str
    wrapped: bool
    scope: str
    rows: int


class PageLanding:
    """The pages of one read, whatever their scope, landed in batches into the extractions of its entities.

    The read lands ``entities``; ``extractions`` maps ``(entity, scope)`` to the extraction a
    scope's rows go to (there must be one for every entity and scope whose pages are added),
    and broken records are quarantined by the extraction of entity ``quarantine``. Pages of
    several scopes (schools read side by side) share a batch, so a district of small schools
    costs few statements. Other cursors see the batches once committed (:meth:`commit`).
    """

    def __init__(self, warehouse: Warehouse, mapping: SqlMapping, entities: list[str], quarantine: str,
                 extractions: Mapping[tuple[str, str], Extraction]) -> None:
        self.warehouse, self.entities, self.quarantine = warehouse, list(entities), quarantine
        self.extractions = extractions
        self._stage = stage_sql(mapping)
        self._selects = {entity: rows_sql(entity, mapping.rows[entity]) for entity in self.entities}
        self._pages: list[_Page] = []
        self._unreadable: list[tuple[str, str, str]] = []
        self._transaction = warehouse.transaction()
        self._uncommitted = 0

    def add(self, records: list, scope: str) -> None:
        """Buffer one page of a scope's records as the source sent them; land the batch when full.

        A page holding records DuckDB cannot parse (a lone surrogate) or Python could not
        (:class:`~..sources.page_json.UnreadableRecord`) is landed from its other records, and
        those are quarantined: DuckDB would refuse the whole batch, and the read with it."""
        text, wrapped = _json_text(records)
        if text is None or _lone_surrogate(text):
            records = self._set_aside_unreadable(records, scope)
            text, wrapped = _encode(records), False
        self._pages.append(_Page(text, wrapped, scope, len(records)))
        if sum(page.rows for page in self._pages) >= BATCH_ROWS:
            self.flush()

    def discard(self, scope: str) -> None:
        """Drop the buffered pages of a scope (its pull failed: its rows will not be kept anyway)."""
        self._pages = [page for page in self._pages if page.scope != scope]
        self._unreadable = [item for item in self._unreadable if item[0] != scope]

    def _set_aside_unreadable(self, records: list, scope: str) -> list:
        """The records that can be landed; the others kept to be quarantined with the batch."""
        kept = []
        for record in records:
            if isinstance(record, UnreadableRecord):
                self._unreadable.append((scope, UnreadableRecord.reason, str(record)))
                continue
            try:
                _encode_unicode(record).encode("utf-8")
            except UnicodeEncodeError:
                self._unreadable.append((scope, NOT_UNICODE, _encode(record)))
                continue
            kept.append(record)
        return kept

    def flush(self) -> None:
        """Land every buffered page, canonical rows and quarantined records, in the read's transaction."""
        pages, self._pages = self._pages, []
        unreadable, self._unreadable = self._unreadable, []
        if not pages:
            return
        scopes = {page.scope for page in pages}
        with self._transaction.writing() as con:
            con.execute(self._stage, {"pages": [page.text for page in pages],
                                      "wrapped": [page.wrapped for page in pages],
                                      "scopes": [page.scope for page in pages]})
            for entity in self.entities:
                land_rows(con, {scope: self.extractions[(entity, scope)] for scope in scopes}, self._selects[entity])
            quarantine_rows(con, {scope: self.extractions[(self.quarantine, scope)] for scope in scopes},
                            "SELECT scope, reason, record FROM landing WHERE reason IS NOT NULL")
            con.execute("DROP TABLE landing")
            if unreadable:
                con.execute("CREATE TEMP TABLE unreadable AS SELECT unnest($scopes::VARCHAR[]) AS scope,"
                            " unnest($reasons::VARCHAR[]) AS reason, unnest($records::VARCHAR[]) AS record",
                            dict(zip(("scopes", "reasons", "records"), map(list, zip(*unreadable)))))
                quarantine_rows(con, {scope: self.extractions[(self.quarantine, scope)] for scope in scopes},
                                "SELECT scope, reason, record FROM unreadable")
                con.execute("DROP TABLE unreadable")
        self._uncommitted += sum(page.rows for page in pages)
        if self._uncommitted >= TRANSACTION_ROWS:
            self._commit()

    def commit(self) -> None:
        """Land what is buffered and commit the read's batches: the read's rows become visible."""
        self.flush()
        self._commit()

    def rollback(self) -> None:
        """Drop the buffered pages and the batches not committed yet (a bug broke off the read)."""
        self._pages, self._unreadable, self._uncommitted = [], [], 0
        self._transaction.rollback()

    def _commit(self) -> None:
        self._transaction.commit()
        self._uncommitted = 0


def _json_text(records: list) -> tuple[str | None, bool]:
    """A page as JSON text, and whether its records sit under a wrapper key of that text; None
    when a record could not be read (see :meth:`PageLanding.add`)."""
    if isinstance(records, SentPage):
        try:
            return records.content.decode("utf-8"), records.wrapped
        except UnicodeDecodeError:
            pass
    if any(isinstance(record, UnreadableRecord) for record in records):
        return None, False
    return _encode(records), False


def _lone_surrogate(text: str) -> bool:
    """Whether JSON text may hold a surrogate escape without its pair (DuckDB refuses those);
    the usual page holds no ``\\ud`` at all and costs two substring searches."""
    if "\\ud" not in text and "\\uD" not in text:
        return False
    return _SURROGATE.search(_SURROGATE_PAIR.sub("", text)) is not None


def stage_sql(mapping: SqlMapping) -> str:
    """The statement that parses ``$pages`` into the temporary table ``landing`` (see :func:`landing_query`)."""
    records = ("SELECT scope, unnest(CASE WHEN wrapped THEN json_extract(doc, '$.*[*]') ELSE json_extract(doc, '$[*]') END)"
               " AS record FROM (SELECT unnest($pages::VARCHAR[]) AS doc, unnest($wrapped::BOOLEAN[]) AS wrapped,"
               " unnest($scopes::VARCHAR[]) AS scope)")
    parsed = f"SELECT scope, record, from_json(record, {structure(mapping.fields)}) AS f FROM ({records})"
    return f"CREATE TEMP TABLE landing AS {landing_query(mapping, parsed)}"


def landing_query(mapping: SqlMapping, records: str, extra: Sequence[str] = (), *, csv_rows: bool = False) -> str:
    """The records of the query ``records`` — their ``scope``, JSON ``record`` and fields ``f`` (of the
    type ``from_json`` gives ``mapping.fields``), and the columns ``extra`` — with the derived values
    the mapping's rows use and their quarantine ``reason``: the shape every landing selects its rows
    from (API pages and CSV files). ``csv_rows``: every record is a JSON object of text by
    construction, so neither it nor its fields' JSON types are checked."""
    query = records
    types = TypeChecks() if csv_rows else mapping.types
    for name, expression in {**types.derived, **mapping.derived}.items():
        query = f"SELECT *, {expression} AS {name} FROM ({query})"
    shape = [] if csv_rows else [(f"NOT {is_object('record')}", "not a JSON object"), *types.checks]
    checks = [*shape, *mapping.checks]
    reason = " ".join(f"WHEN {condition} THEN {literal(why)}" for condition, why in checks)
    used = " ".join(e for rows in mapping.rows.values()
                    for e in [*rows.columns.values(), rows.when, rows.each or "", rows.payload])
    kept = [name for name in mapping.derived if re.search(rf"\b{name}\b", used)]
    fields = f"{_used_fields(used)} AS f"
    return f"SELECT {', '.join(['scope', 'record', fields, *extra, *kept])}, CASE {reason} END AS reason FROM ({query})"


def _used_fields(used: str) -> str:
    """``f`` with only the fields (whole, or some of a nested object's) that the expressions ``used``
    read: what a landing keeps of a record once its derived values and checks are computed."""
    fields: dict[str, set[str] | None] = {}
    for name, nested in re.findall(r'\bf\."([^"]+)"(?:\."([^"]+)")?', used):
        if nested and fields.get(name, set()) is not None:
            fields.setdefault(name, set()).add(nested)
        else:
            fields[name] = None
    packed = []
    for name, nested in fields.items():
        value = f"f.{ident(name)}"
        if nested is not None:
            value = f"struct_pack({', '.join(f'{ident(n)} := {value}.{ident(n)}' for n in sorted(nested))})"
        packed.append(f"{ident(name)} := {value}")
    return f"struct_pack({', '.join(packed)})" if packed else "NULL"


def rows_sql(entity: str, rows: Rows, source: str = "landing WHERE reason IS NULL") -> str:
    """The query of ``entity``'s rows from ``source`` (by default the sound records of the table
    ``landing``): its canonical columns in registry order, payload, scope."""
    columns = [rows.columns.get(column, "NULL") for column in ENTITIES[entity].all_columns]
    unknown = set(rows.columns) - set(ENTITIES[entity].all_columns)
    if unknown:
        raise ValueError(f"{entity} has no column(s) {', '.join(sorted(unknown))}")
    select = f"SELECT {', '.join(columns)}, {rows.payload}, scope FROM "
    landed = f"(SELECT * FROM {source}) WHERE {rows.when}"
    if rows.each is None:
        return select + landed
    items = f"SELECT *, unnest({rows.each}) AS item FROM {landed}"
    return select + f"(SELECT *, from_json(item, {structure(rows.item)}) AS i FROM ({items}))"
