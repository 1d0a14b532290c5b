"""Landing OneRoster CSV files through DuckDB's own CSV reader, in the shape the API landing uses.

A file becomes the records :func:`~.landing.landing_query` selects from: ``scope`` (``*``: a
bundle is read whole), ``record`` (the row's payload, below) and ``f``, the fields of the record
type's :class:`~.normalize_sql.SqlMapping` built from the file's columns as each field's kind says
(:class:`~.normalize_sql.Carried`): ``orgSourcedId`` as the GUIDRef ``org``, ``termSourcedIds`` as
the list ``terms``, comma lists as JSON lists, ``metadata.*`` columns as ``metadata``, a user's
roles.csv rows as ``roles``. So one mapping gives API pages and CSV files the same derived values,
quarantine checks and rows.

A row's payload keeps only what its canonical columns do not carry as sent (:func:`carried`):
the columns no canonical column takes verbatim — ``userIds``, ``agentSourcedIds``,
``subjectCodes``, the ``metadata.*`` extensions, any column the field map does not read — as JSON,
header -> text (null when empty), ``metadata.*`` columns under ``metadata`` as in an API record;
``{}`` when the canonical columns carry every column. Storing each value twice would cost time
and disk and add nothing: a carried column is its canonical attribute.

Each file is read once by ``read_csv``: every field as text (an empty one is null, nothing is
trimmed), the header skipped (the bundle matched it by name, case-insensitively), quoted fields
spanning lines, comma-delimited as the spec says; DuckDB skips a byte order mark. Rows it cannot
read — a wrong number of fields, bytes that are not UTF-8, a quote that never ends — go to a
rejects table and the read goes on. A record type that lands one entity streams from the file
into its raw table; users (several entities) go through a temporary ``landing`` table, as API
pages do. Either way memory stays within DuckDB's limit, whatever the file's size.

Broken rows are rare, and naming their lines takes a second read: only when the first one set
rows aside, or a check refused some, does :func:`locate` read the files again, numbering records
in file order on a connection of its own. Lines count records as a spreadsheet shows rows: the
header is line 1, and a record whose quoted field spans lines counts once.

Credential-like columns (``password``...) are never stored: the record leaves them out, and a
row DuckDB could not read, from a file that has one, is reported without its text.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import duckdb

from passport_pipeline.warehouse.connection import MEMORY_LIMIT
from passport_pipeline.warehouse.landing import landing_query, rows_sql
from passport_pipeline.warehouse.normalize_sql import (
    REF,
    REFS,
    TEXT,
    Carried,
    Joined,
    Rows,
    SqlMapping,
    key,
    ref,
    ref_field,
    refs,
    refs_field,
    text,
    texts,
)
from passport_pipeline.warehouse.raw import WHOLE_SOURCE, Extraction, land_rows, quarantine_rows
from passport_pipeline.warehouse.sql import ident, string

CREDENTIAL = re.compile(r"password|secret|token", re.IGNORECASE)
"""Columns never stored: a user's password, any secret or token."""
WITHHELD = "(text withheld: the file has a credential column)"
REJECTS = "csv_rejects"


@dataclass(frozen=True)
class CsvFile:
    """One CSV file of a bundle, on disk: its name in the bundle (``users.csv``), path and header as sent."""

    name: str
    path: Path
    header: tuple[str, ...]

    def column(self, name: str) -> str | None:
        """The column (``c3``) whose header is ``name``, matched case-insensitively; None when missing."""
        wanted = name.lower()
        return next((f"c{i}" for i, header in enumerate(self.header) if header.strip().lower() == wanted), None)

    @property
    def withheld(self) -> bool:
        """Whether the file has a credential-like column, so its unreadable rows are shown without text."""
        return any(CREDENTIAL.search(header) for header in self.header)

    def scan(self) -> str:
        """The ``read_csv`` call: every field as text, unreadable rows to the rejects tables."""
        columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(self.header)))
        return (f"read_csv({string(str(self.path))}, header = true, auto_detect = false, delim = ',',"
                f" quote = '\"', escape = '\"', columns = {{{columns}}}, store_rejects = true,"
                f" rejects_table = '{REJECTS}_errors', rejects_scan = '{REJECTS}_scans')")

    def record(self, alias: str, left_out: Collection[str] = ()) -> str:
        """The row as JSON, header -> text, except that ``metadata.<name>`` columns go under ``metadata``
        as in an API record (so ``metadata.<name>`` attributes read both alike); credential-like and
        unnamed columns, and those ``left_out`` (headers in lower case), are not in it."""
        kept = [(header, f"{alias}.c{i}") for i, header in enumerate(self.header)
                if header.strip() and not CREDENTIAL.search(header) and header.strip().lower() not in left_out]
        if not kept:
            return "'{}'::JSON"
        extension = [header.lower().startswith("metadata.") for header, _ in kept]
        extensions = [(header[9:], column) for (header, column), is_one in zip(kept, extension) if is_one]
        fields = [f"{ident(header)} := {column}" for (header, column), is_one in zip(kept, extension) if not is_one]
        if extensions:
            fields.append("metadata := struct_pack(" + ", ".join(f"{ident(name)} := {column}"
                                                                 for name, column in extensions) + ")")
        return f"to_json(struct_pack({', '.join(fields)}))"


@dataclass(frozen=True)
class Issue:
    """A row quarantined instead of landed: its file, line (records counted, header = 1) and reason."""

    file: str
    line: int
    reason: str
    raw: str

    def __str__(self) -> str:
        return f"{self.file} line {self.line}: {self.reason}"


def joins(kinds: Mapping[str, object]) -> Iterator[Joined]:
    """The other files whose rows ``kinds``' fields gather (roles.csv for 1.2 users...)."""
    for name, kind in kinds.items():
        how, base, _ = _carried(name, kind)
        if isinstance(how, Joined):
            yield how
        elif isinstance(base, Mapping) and base != REF:
            yield from joins(base)


def carried(mapping: SqlMapping) -> dict[str, dict[str, str]]:
    """Per entity of ``mapping``, the CSV columns its payload leaves out: header (lower case) -> the
    canonical column that takes it as sent (a text column as it is, an id column as the reference,
    a comma list as the list column).

    The entities whose payload is the record share it, so it leaves out only the columns each of
    them carries (a student's grades stay in the payload: a contact has no grades column); an
    entity landed one row per item (student_contacts) leaves out the item fields its columns take."""
    records = {entity: _as_sent(mapping.fields, rows.columns, key)
               for entity, rows in mapping.rows.items() if rows.payload == "record"}
    shared = set.intersection(*(set(columns) for columns in records.values())) if records else set()
    found = {entity: {header: columns[header] for header in shared} for entity, columns in records.items()}
    for entity, rows in mapping.rows.items():
        if rows.payload == "item":
            found[entity] = _as_sent(rows.item, rows.columns, lambda name: f"i.{name}")
    return found


def records_sql(mapping: SqlMapping, file: CsvFile, joined: Mapping[str, CsvFile], *, numbered: bool = False) -> str:
    """The query of ``file``'s records as :func:`~.landing.landing_query` takes them; ``joined`` maps a
    :class:`Joined` file name to its file (missing: the bundle does not carry it, the field is null).
    ``record`` is the row's payload; ``numbered`` — to report broken rows — makes it the whole row
    instead and adds ``csv_row``, the record's place among those read, in file order."""
    key = file.column("sourcedId")
    tables, gathered = [], {}
    for join in joins(mapping.fields):
        if join.file in joined:
            alias = f"j{len(tables)}"
            tables.append(f"LEFT JOIN ({_gathered(join, joined[join.file])}) AS {alias} ON {alias}.id = u.{key}")
            gathered[join.file] = f"coalesce({alias}.items, '[]'::JSON)"
    source = f"{file.scan()} AS u"
    if numbered:
        source = f"(SELECT row_number() OVER () AS csv_row, * FROM {file.scan()}) AS u"
    fields = _struct(mapping.fields, lambda header: _in(file, "u", header), gathered)
    row = ", u.csv_row" if numbered else ""
    left_out = () if numbered else {header for entity, columns in carried(mapping).items()
                                    if mapping.rows[entity].payload == "record" for header in columns}
    record = file.record("u", left_out)
    return f"SELECT '*' AS scope, {record} AS record, {fields} AS f{row} FROM {source} {' '.join(tables)}"


def land_file(con: duckdb.DuckDBPyConnection, mapping: SqlMapping, file: CsvFile, joined: Mapping[str, CsvFile],
              extractions: Mapping[str, Extraction], quarantine: str, spill: Path) -> list[Issue]:
    """Land ``file`` on the writing cursor ``con``: each wanted entity's rows (``extractions``: entity ->
    its pull of scope ``*``), and its broken rows — and those of the files joined to it — as issues of
    ``quarantine``'s pull. ``spill`` is a folder for :func:`locate`. Returns the issues."""
    wanted = [entity for entity in mapping.rows if entity in extractions]
    query = landing_query(mapping, records_sql(mapping, file, joined), csv_rows=True)
    _drop_rejects(con)
    try:
        if len(mapping.rows) == 1 and next(iter(mapping.rows.values())).each is None:
            refused = _stream(con, query, wanted, mapping, extractions)
        else:
            con.execute(f"CREATE OR REPLACE TEMP TABLE landing AS {query}")
            for entity in wanted:
                land_rows(con, {WHOLE_SOURCE: extractions[entity]}, rows_sql(entity, _rows(mapping, entity)))
            (refused,) = con.execute("SELECT count(*) FROM landing WHERE reason IS NOT NULL").fetchone()
            con.execute("DROP TABLE landing")
        unreadable = _unreadable_rows(con)
    finally:
        _drop_rejects(con)
    if not refused and not unreadable:
        return []
    issues = locate(mapping, file, joined, spill)
    con.execute("CREATE OR REPLACE TEMP TABLE csv_issues AS SELECT unnest($reasons::VARCHAR[]) AS reason,"
                " unnest($raws::VARCHAR[]) AS raw",
                {"reasons": [str(issue) for issue in issues], "raws": [issue.raw for issue in issues]})
    quarantine_rows(con, {WHOLE_SOURCE: extractions[quarantine]},
                    f"SELECT '{WHOLE_SOURCE}' AS scope, reason, raw FROM csv_issues")
    con.execute("DROP TABLE csv_issues")
    return issues


def _stream(con, query: str, wanted: list[str], mapping: SqlMapping, extractions: Mapping[str, Extraction]) -> int:
    """Insert the one entity's rows straight from the file; return how many records a check refused.

    The refused are counted by a sequence that only their rows advance, in the one filter that
    reads ``reason`` (the rows then go on with it blanked): no other filter can run first and
    drop them uncounted."""
    con.execute("CREATE OR REPLACE TEMP SEQUENCE csv_refused")
    try:
        sound = (f"(SELECT * REPLACE (NULL AS reason) FROM ({query})"
                 " WHERE CASE WHEN reason IS NULL THEN true ELSE nextval('csv_refused') IS NULL END)")
        for entity in wanted:
            land_rows(con, {WHOLE_SOURCE: extractions[entity]}, rows_sql(entity, _rows(mapping, entity), sound))
        (refused,) = con.execute("SELECT coalesce(max(last_value), 0) FROM duckdb_sequences()"
                                 " WHERE sequence_name = 'csv_refused' AND temporary").fetchone()
    finally:
        con.execute("DROP SEQUENCE IF EXISTS csv_refused")
    return refused


def locate(mapping: SqlMapping, file: CsvFile, joined: Mapping[str, CsvFile], spill: Path) -> list[Issue]:
    """Every broken row of ``file`` and of the files joined to it, read again in file order on a
    connection of its own (the warehouse's does not keep rows in order): those DuckDB could not read
    and those a check refused, by file and line."""
    with _scratch(spill) as scratch:
        query = landing_query(mapping, records_sql(mapping, file, joined, numbered=True), ("csv_row",), csv_rows=True)
        refused = scratch.execute(f"SELECT csv_row, reason, record::VARCHAR FROM ({query})"
                                  " WHERE reason IS NOT NULL ORDER BY csv_row").fetchall()
        unreadable = _rejects(scratch)
    files = {str(f.path): f for f in [file, *joined.values()]}
    issues = [Issue(files[path].name, line, _unreadable(kind, message), WITHHELD if files[path].withheld else text)
              for path, line, kind, message, text in unreadable]
    skipped = sorted(line for path, line, *_ in unreadable if path == str(file.path))
    issues += [Issue(file.name, _line(row, skipped), reason, raw) for row, reason, raw in refused]
    return sorted(issues, key=lambda issue: (issue.file != file.name, issue.file, issue.line))


def count_file(file: CsvFile, spill: Path) -> tuple[int, list[Issue]]:
    """The records DuckDB reads from ``file``, and the rows it cannot read (for Test Connection)."""
    with _scratch(spill) as scratch:
        [(rows,)] = scratch.execute(f"SELECT count(*) FROM {file.scan()}").fetchall()  # all: the scan ends
        return rows, [Issue(file.name, line, _unreadable(kind, message), WITHHELD if file.withheld else text)
                      for _, line, kind, message, text in _rejects(scratch)]


def school_ids(file: CsvFile, spill: Path) -> dict[str, str | None]:
    """orgs.csv's schools (``type`` school): sourcedId -> identifier, for Test Connection's coverage."""
    key, kind, code = (file.column(h) for h in ("sourcedId", "type", "identifier"))
    if kind is None:
        return {}
    with _scratch(spill) as scratch:
        rows = scratch.execute(f"SELECT {key}, {code or 'NULL'} FROM {file.scan()} WHERE {kind} = 'school'"
                               f" AND {key} IS NOT NULL").fetchall()
    return dict(rows)


def _scratch(spill: Path):
    """A DuckDB connection of its own, keeping rows in file order, within the warehouse's memory limit."""
    config = {"memory_limit": MEMORY_LIMIT, "preserve_insertion_order": True, "temp_directory": str(spill)}
    return closing(duckdb.connect(config=config))


def _rejects(scratch) -> list[tuple]:
    """The rows the reads on ``scratch`` set aside: (file path, line, error type, message, text)."""
    if not _unreadable_rows(scratch):
        return []
    return scratch.execute(  # a short row is set aside once per missing field: report its first
        f"SELECT s.file_path, e.line, arg_min(e.error_type, e.column_idx), arg_min(e.error_message, e.column_idx),"
        f" arg_min(e.csv_line, e.column_idx) FROM {REJECTS}_errors e JOIN {REJECTS}_scans s USING (scan_id, file_id)"
        f" GROUP BY ALL ORDER BY 1, 2").fetchall()


def _line(row: int, skipped: Sequence[int]) -> int:
    """The line of the ``row``-th record read, given the lines of the records DuckDB skipped (sorted)."""
    line = row + 1
    for skip in skipped:
        if skip <= line:
            line += 1
    return line


_COLUMNS = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


def _unreadable(kind: str, message: str) -> str:
    """Why DuckDB could not read a row, in a district admin's words."""
    counts = _COLUMNS.search(message or "")
    if kind in ("MISSING COLUMNS", "TOO MANY COLUMNS") and counts:
        return f"{counts.group(2)} fields where the header has {counts.group(1)}"
    if kind == "INVALID ENCODING":
        return "not valid UTF-8 text"
    if kind == "UNQUOTED VALUE":
        return f"unparsable quoting ({message.rstrip('.')})"
    return f"unreadable row ({kind.lower()}: {message})"


def _unreadable_rows(con) -> int:
    """How many rows the reads on ``con`` set aside (DuckDB makes the rejects tables on the first)."""
    (made,) = con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = $name",
                          {"name": f"{REJECTS}_errors"}).fetchone()
    return con.execute(f"SELECT count(DISTINCT (scan_id, line)) FROM {REJECTS}_errors").fetchone()[0] if made else 0


def _drop_rejects(con) -> None:
    con.execute(f"DROP TABLE IF EXISTS {REJECTS}_errors")
    con.execute(f"DROP TABLE IF EXISTS {REJECTS}_scans")


def _rows(mapping: SqlMapping, entity: str) -> Rows:
    """``entity``'s rows as a CSV file lands them: with the record, already the payload, or (one row
    per item) a payload of the item fields its columns do not take."""
    rows = mapping.rows[entity]
    if rows.payload != "item":
        return rows
    kept = [name for name in rows.item if name.lower() not in carried(mapping)[entity]]
    payload = f"json_object({', '.join(f'{string(name)}, i.{ident(name)}' for name in kept)})" if kept else "'{}'::JSON"
    return dataclasses.replace(rows, payload=payload)


def _as_sent(fields: Mapping[str, object], columns: Mapping[str, str], field: Callable[[str], str]) -> dict[str, str]:
    """The CSV columns of ``fields`` (header, lower case) that one of ``columns`` takes as sent -> that
    column; ``field`` names a field in SQL."""
    taking = {expression: column for column, expression in columns.items()}
    found = {}
    for name, kind in fields.items():
        how, base, header = _carried(name, kind)
        if how == "text" and isinstance(base, Mapping):
            inner = _as_sent(base, columns, lambda nested: f'{field(name)}."{nested}"')
            found.update({f"{header.lower()}.{nested}": column for nested, column in inner.items()})
            continue
        value = field(name)
        verbatim = {"text": [value if base == TEXT else text(value)],
                    "ref": [ref_field(name), ref(value)], "refs": [refs_field(name), refs(value)],
                    "codes": [texts(value)], "names": [texts(value)]}
        for expression in verbatim.get(how, []) if isinstance(how, str) else []:
            if expression in taking:
                found[_header(how, header).lower()] = taking[expression]
    return found


def _carried(name: str, kind: object) -> tuple[str | Joined, object, str]:
    """How a field is carried, its plain kind, and the header its column is named after."""
    if isinstance(kind, Carried):
        return kind.csv, kind.kind, kind.header or name
    return ("ref" if kind == REF else "refs" if kind == REFS else "text"), kind, name


def _header(how: str, name: str) -> str:
    if how == "ref":
        return f"{name}SourcedId"
    if how == "refs":
        return f"{name.removesuffix('s')}SourcedIds"
    return name


def _in(file: CsvFile, alias: str, header: str) -> str | None:
    column = file.column(header)
    return None if column is None else f"{alias}.{column}"


def _sql_type(kind: object) -> str:
    if isinstance(kind, Carried):
        return _sql_type(kind.kind)
    if isinstance(kind, str):
        return kind
    if isinstance(kind, list):
        return _sql_type(kind[0]) + "[]"
    return "STRUCT(" + ", ".join(f"{ident(name)} {_sql_type(k)}" for name, k in kind.items()) + ")"


def _struct(kinds: Mapping[str, object], column: Callable[[str], str | None], gathered: Mapping[str, str]) -> str:
    """``struct_pack`` of ``kinds``' fields from CSV columns: the values ``from_json`` gives a JSON record."""
    values = [f"{ident(name)} := {_value(name, kind, column, gathered)}" for name, kind in kinds.items()]
    return f"struct_pack({', '.join(values)})"


def _value(name: str, kind: object, column: Callable[[str], str | None], gathered: Mapping[str, str]) -> str:
    how, base, header = _carried(name, kind)
    if isinstance(how, Joined):
        return gathered.get(how.file, "NULL::JSON")
    if how == "text" and isinstance(base, Mapping):
        return _struct(base, lambda inner: column(f"{header}.{inner}"), gathered)
    value = column(_header(how, header))
    if value is None:
        return f"NULL::{_sql_type(base)}"
    items = f"coalesce(string_split({value}, ','), [])"
    if how == "text":
        return f"to_json({value})" if base == "JSON" else value
    if how == "ref":
        return f"to_json({value})" if base == "JSON" else f"{{'sourcedId': {value}}}"
    if how == "refs":
        return f"to_json({items})" if base == "JSON" else f"list_transform({items}, lambda s: {{'sourcedId': s}})"
    if how == "codes":
        return f"to_json({items})"
    if how == "names":
        return f"to_json(coalesce(regexp_extract_all({value} || ',', '((?:[^,]|, )*),', 1), []))"
    if how == "user_ids":
        return (f"to_json(list_transform(regexp_extract_all({value}, '\\{{[^:{{}}]*:[^{{}}]*\\}}'),"
                " lambda u: regexp_extract(u, '^\\{([^:{}]*):([^{}]*)\\}$', ['type', 'identifier'])))")
    raise ValueError(f"{name}: unknown CSV carriage {how!r}")


def _gathered(join: Joined, file: CsvFile) -> str:
    """The rows of a joined file by the record id they name: ``id``, and ``items`` as a JSON list (joined
    as text: a list of structs made JSON costs twice as much)."""
    item = _struct(join.item, lambda header: _in(file, "g", header), {})
    order = file.column("sourcedId")
    items = f"string_agg(to_json({item})::VARCHAR, ','{f' ORDER BY g.{order}' if order else ''})"
    return f"SELECT g.{file.column(join.on)} AS id, ('[' || {items} || ']')::JSON AS items FROM {file.scan()} AS g GROUP BY 1"
