"""Opening the DuckDB warehouse: one writer at a time, schemas and bookkeeping tables in place,
readable by its owner only."""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from passport_pipeline.warehouse.private import owner_only_files, private_file, private_folder
from passport_pipeline.warehouse.schema import SCHEMAS, SYNC_DDL


MEMORY_LIMIT = "1GB"
"""DuckDB's memory for the warehouse; beyond it DuckDB spills to disk, so a sync's memory does
not grow with the district."""


class Warehouse:
    """A read-write connection to the warehouse file, shared by the threads of one process.

    DuckDB allows one writing process per file; inside the process, writes from worker threads
    are serialized by :meth:`writing`, which hands out a cursor under a lock.

    The file and its folder are owner-only (:mod:`.private`), so are the WAL and spill files
    DuckDB creates in that folder: created so, and tightened on open when an earlier version or a
    copy left them readable by others (one log line says so).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._make_private()
        with owner_only_files():
            self._con = duckdb.connect(str(self.path), config={"memory_limit": MEMORY_LIMIT, "preserve_insertion_order": False})
        self._lock = threading.Lock()
        with self.writing() as con:
            for schema in SCHEMAS:
                con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            con.execute(SYNC_DDL)

    def _make_private(self) -> None:
        """The folder owner-only (created if need be), and the file and its WAL when they exist."""
        changed = [private_folder(self.path.parent)]
        wal = self.path.with_name(f"{self.path.name}.wal")
        changed += [private_file(file) for file in (self.path, wal) if file.exists()]
        if any(changed):
            logging.getLogger(__name__).warning(
                f"warehouse {self.path} was open to other users: {'; '.join(filter(None, changed))}")

    @contextmanager
    def writing(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor for a short write; one thread at a time."""
        with self._lock:
            cursor = self._con.cursor()
            try:
                yield cursor
            finally:
                cursor.close()

    def transaction(self) -> Transaction:
        """A write transaction that stays open across many short writes (see :class:`Transaction`)."""
        return Transaction(self)

    def reading(self) -> duckdb.DuckDBPyConnection:
        """A cursor for reads (DuckDB cursors of one connection may read concurrently)."""
        return self._con.cursor()

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> "Warehouse":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Transaction:
    """One write transaction kept open across many short writes, such as the batches of a read.

    Rows appended in one large transaction go to the database file once: DuckDB writes each full
    row group of a transaction straight to its blocks, where every small commit would write its
    rows to the WAL and then again at the next checkpoint. Each :meth:`writing` takes the
    warehouse's write lock for one write, so other threads' writes go on in between; they see
    what the transaction wrote only once it is committed. It begins on its first write.
    """

    def __init__(self, warehouse: Warehouse) -> None:
        self._warehouse = warehouse
        self._cursor: duckdb.DuckDBPyConnection | None = None

    @contextmanager
    def writing(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The transaction's cursor for one write; one thread at a time."""
        with self._warehouse._lock:
            if self._cursor is None:
                self._cursor = self._warehouse._con.cursor()
                self._cursor.execute("BEGIN")
            yield self._cursor

    def commit(self) -> None:
        """Make every write visible at once (nothing to do before the first write)."""
        self._end("COMMIT")

    def rollback(self) -> None:
        """Drop every write (nothing to do before the first write or after the end)."""
        self._end("ROLLBACK")

    def _end(self, statement: str) -> None:
        with self._warehouse._lock:
            cursor, self._cursor = self._cursor, None
            if cursor is not None:
                try:
                    cursor.execute(statement)
                finally:
                    cursor.close()
