"""Opening the DuckDB warehouse: one writer at a time, schemas and bookkeeping tables in place."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from passport_pipeline.warehouse.schema import SCHEMAS, SYNC_DDL


MEMORY_LIMIT = "1GB"
"""DuckDB's memory for the warehouse; beyond it DuckDB spills to disk, so a sync's memory does
not grow with the district."""


class Warehouse:
    """A read-write connection to the warehouse file, shared by the threads of one process.

    DuckDB allows one writing process per file; inside the process, writes from worker threads
    are serialized by :meth:`writing`, which hands out a cursor under a lock.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(str(self.path), config={"memory_limit": MEMORY_LIMIT, "preserve_insertion_order": False})
        self._lock = threading.Lock()
        with self.writing() as con:
            for schema in SCHEMAS:
                con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            con.execute(SYNC_DDL)

    @contextmanager
    def writing(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor for a short write; one thread at a time."""
        with self._lock:
            cursor = self._con.cursor()
            try:
                yield cursor
            finally:
                cursor.close()

    def reading(self) -> duckdb.DuckDBPyConnection:
        """A cursor for reads (DuckDB cursors of one connection may read concurrently)."""
        return self._con.cursor()

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> "Warehouse":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
