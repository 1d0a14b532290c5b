"""Opening the DuckDB warehouse: one writer at a time, schemas and bookkeeping tables in place,
readable by its owner only."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from passport_pipeline.warehouse.private import owner_only_files, private_file, private_folder
from passport_pipeline.warehouse.lock import POLL_SECONDS, Claim, WarehouseBusy, WriterLock, duckdb_holder
from passport_pipeline.warehouse.raw import ABANDONED_BECAUSE, end_running
from passport_pipeline.warehouse.schema import SCHEMAS, SYNC_DDL


MEMORY_LIMIT = "1GB"
"""DuckDB's memory for the warehouse; beyond it DuckDB spills to disk, so a sync's memory does
not grow with the district."""


class Warehouse:
    """A read-write connection to the warehouse file, shared by the threads of one process.

    One process writes at a time: opening takes the warehouse's writer lock
    (:mod:`.lock`), waiting up to the claim's ``wait_seconds`` for another writer to finish, then
    refusing in one line that names it (:class:`~.lock.WarehouseBusy`). A process that takes the
    lock when nobody held it knows that pulls still ``running`` belong to dead processes, and ends
    them ``abandoned`` (:func:`.raw.end_running`). Inside the process, writes from worker threads
    are serialized by :meth:`writing`, which hands out a cursor under a lock.

    The file and its folder are owner-only (:mod:`.private`), so are the WAL and spill files
    DuckDB creates in that folder: created so, and tightened on open when an earlier version or a
    copy left them readable by others (one log line says so).

    ``deferred`` opens on first use instead of at once: a Dagster run then waits for (or is
    refused) the warehouse inside the step that first needs it, where the refusal becomes the
    step's one-line failure.
    """

    def __init__(self, path: str | Path, claim: Claim | None = None, *, deferred: bool = False):
        self.path = Path(path)
        self.claim = claim or Claim()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._writer: WriterLock | None = None
        self._opening = threading.Lock()
        self._lock = threading.Lock()
        if not deferred:
            self.open()

    def open(self) -> None:
        """Take the writer lock, connect, and put the schemas and bookkeeping tables in place (once)."""
        with self._opening:
            if self._con is not None:
                return
            self._make_private()
            deadline = time.monotonic() + self.claim.wait_seconds
            with owner_only_files():
                writer = WriterLock(self.path, self.claim, deadline)
            try:
                with owner_only_files():
                    self._con = _connect(self.path, deadline, self.claim.wait_seconds)
                self._writer = writer
                with self.writing() as con:
                    for schema in SCHEMAS:
                        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                    con.execute(SYNC_DDL)
                if writer.fresh:
                    end_running(self, status="abandoned", error=ABANDONED_BECAUSE)
            except BaseException:
                self.close()
                writer.release()
                raise

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self.open()
        return self._con

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
        con = self._connection()
        with self._lock:
            cursor = con.cursor()
            try:
                yield cursor
            finally:
                cursor.close()

    def transaction(self) -> Transaction:
        """A write transaction that stays open across many short writes (see :class:`Transaction`)."""
        return Transaction(self)

    def reading(self) -> duckdb.DuckDBPyConnection:
        """A cursor for reads (DuckDB cursors of one connection may read concurrently)."""
        return self._connection().cursor()

    def close(self) -> None:
        """Close the connection and let go of the writer lock (nothing to do when never opened)."""
        con, self._con = self._con, None
        writer, self._writer = self._writer, None
        try:
            if con is not None:
                con.close()
        finally:
            if writer is not None:
                writer.release()

    def __enter__(self) -> "Warehouse":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _connect(path: Path, deadline: float, wait_seconds: float) -> duckdb.DuckDBPyConnection:
    """Connect to the warehouse file. Holding the writer lock, a DuckDB lock conflict means a program
    outside the pipeline has the file open (a DuckDB shell, a notebook): wait for it like for a writer."""
    while True:
        try:
            return duckdb.connect(str(path), config={"memory_limit": MEMORY_LIMIT, "preserve_insertion_order": False})
        except duckdb.IOException as error:
            holder = duckdb_holder(error)
            if holder is None:
                raise
            if time.monotonic() >= deadline:
                raise WarehouseBusy(path.resolve(), holder, wait_seconds) from None
            time.sleep(POLL_SECONDS)


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
        con = self._warehouse._connection()
        with self._warehouse._lock:
            if self._cursor is None:
                self._cursor = con.cursor()
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
