"""Raw landing tables: one per source × entity, filled page by page, with completeness per scope.

``raw.<source>__<entity>`` holds the source's current picture as the last extractions saw it:
the registry's canonical columns, values as sent, plus the raw ``payload`` JSON, the extraction
``scope`` (a school, or ``*`` for a source-wide pull), ``run_id`` and ``extracted_at``.

An :class:`Extraction` is one pull of one scope. Its rows stream in page by page; when it
completes, a full pull replaces that scope's older rows and a delta pull replaces older versions
of the records it saw. When it fails, its partial rows are removed, so the previous complete
picture stays and no partial extraction is ever taken for complete. ``sync.extractions`` records
every pull's outcome — the evidence later stages need before inferring any deletion. A pull whose
process died before it ended (killed, crashed) is found ``running`` by the next writer and becomes
``abandoned``: like failed, its partial rows are dropped and its scope keeps its previous picture.
What is stored of an error (its message, the pull's stats, a quarantine reason) is scrubbed of
secrets (:func:`passport_pipeline.redaction.scrub`).
"""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal, NamedTuple

import pandas as pd

from passport_pipeline.entities import ENTITIES
from passport_pipeline.redaction import scrub
from passport_pipeline.warehouse.sql import ident

if TYPE_CHECKING:  # the warehouse, on opening, ends the pulls dead writers left running (end_running)
    from passport_pipeline.warehouse.connection import Warehouse

WHOLE_SOURCE = "*"
BATCH_ROWS = 10_000
TRANSACTION_ROWS = 1_000_000
"""Records a read lands in one transaction before committing (see :mod:`.landing`): many full row
groups, which DuckDB writes straight to the database file, yet not so many that the
transaction's growth slows each insert and holds memory (a whole 8M-row read did both)."""
LANDING_COLUMNS = {"payload": "JSON", "scope": "VARCHAR", "run_id": "VARCHAR", "extracted_at": "TIMESTAMP"}
CODECS = {"payload": "zstd"}
"""Columns stored with a general-purpose codec instead of the one DuckDB picks: a record's JSON is
long, varied text that zstd stores in a fifth of the space, at a third of the CPU."""


def raw_table(source: str, entity: str) -> str:
    """The quoted name of a source × entity landing table."""
    return ident("raw", f"{source}__{entity}")


def ensure_raw_table(warehouse: Warehouse, source: str, entity: str) -> str:
    """Create the landing table when missing; return its quoted name."""
    table = raw_table(source, entity)
    columns = {**ENTITIES[entity].all_columns, **LANDING_COLUMNS}
    ddl = ", ".join(f"{ident(name)} {kind}" + (f" USING COMPRESSION {CODECS[name]}" if name in CODECS else "")
                    for name, kind in columns.items())
    with warehouse.writing() as con:
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({ddl})")
    return table


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Extraction:
    """One pull of one scope of one source × entity, landing in its raw table.

    Constructing one records it as running; :meth:`start` records the pulls of many scopes in
    one statement, and :func:`finish_extractions` ends many in a few: a district of many schools
    does not pay a handful of statements per school and entity.
    """

    def __init__(
        self,
        warehouse: Warehouse,
        *,
        run_id: str,
        source: str,
        entity: str,
        scope: str = WHOLE_SOURCE,
        mode: Literal["full", "delta"] = "full",
    ):
        self._bind(warehouse, run_id, source, entity, scope, mode, ensure_raw_table(warehouse, source, entity))
        _record_running(warehouse, [self])

    @classmethod
    def start(cls, warehouse: Warehouse, *, run_id: str, source: str, entity: str, scopes: Iterable[str],
              mode: Literal["full", "delta"] = "full") -> dict[str, Extraction]:
        """The pulls of ``scopes`` (each once) of one source × entity, recorded as running together."""
        table = ensure_raw_table(warehouse, source, entity)
        pulls: dict[str, Extraction] = {}
        for scope in dict.fromkeys(scopes):
            pulls[scope] = cls.__new__(cls)
            pulls[scope]._bind(warehouse, run_id, source, entity, scope, mode, table)
        _record_running(warehouse, list(pulls.values()))
        return pulls

    def _bind(self, warehouse: Warehouse, run_id: str, source: str, entity: str, scope: str, mode: str,
              table: str) -> None:
        self.warehouse, self.run_id, self.source = warehouse, run_id, source
        self.entity, self.scope, self.mode, self.table = entity, scope, mode, table
        self.columns = list(ENTITIES[entity].all_columns)
        self.rows = 0
        self.quarantined = 0
        self._buffer: list[dict] = []
        self._lock = threading.Lock()

    def write_page(self, records: list[dict]) -> None:
        """Add one page of canonical records (each with a ``payload`` JSON string).

        Pages are buffered and landed in batches of about :data:`BATCH_ROWS` rows: one insert
        of ten pages costs far less than ten inserts, and memory stays bounded by the batch.
        """
        with self._lock:
            self._buffer.extend(records)
            self.rows += len(records)
            full = len(self._buffer) >= BATCH_ROWS
        if full:
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            records, self._buffer = self._buffer, []
        if not records:
            return
        frame = pd.DataFrame.from_records(records, columns=[*self.columns, "payload"])
        frame["scope"] = self.scope
        frame["run_id"] = self.run_id
        frame["extracted_at"] = _now()
        names = ", ".join(ident(c) for c in frame.columns)
        with self.warehouse.writing() as con:
            con.register("page", frame)
            con.execute(f"INSERT INTO {self.table} ({names}) SELECT {names} FROM page")
            con.unregister("page")

    def quarantine(self, reason: str, raw_text: str, record_id: str | None = None) -> None:
        """Record a structurally broken record as an issue; the pull goes on."""
        with self.warehouse.writing() as con:
            con.execute(
                "INSERT INTO sync.issues VALUES (?, ?, ?, ?, NULL, 'quarantine', 'Error', ?, ?)",
                [self.run_id, self.source, self.entity, record_id,
                 scrub(f"{reason}: {scrub(raw_text)[:500]}"), _now()],
            )
        with self._lock:
            self.quarantined += 1

    def complete(self, stats: dict | None = None) -> None:
        """The pull got everything: its rows become this scope's current picture."""
        finish_extractions(self.warehouse, [Ended(self, None, stats)])

    def fail(self, error: str, stats: dict | None = None) -> None:
        """The pull broke off: drop its partial rows, keep the previous picture, say why."""
        finish_extractions(self.warehouse, [Ended(self, error, stats)])


def _record_running(warehouse: Warehouse, pulls: list[Extraction]) -> None:
    if not pulls:
        return
    first = pulls[0]
    with warehouse.writing() as con:
        con.execute(
            "INSERT INTO sync.extractions (run_id, source, entity, scope, mode, status, started_at)"
            " SELECT $run_id, $source, $entity, unnest($scopes::VARCHAR[]), $mode, 'running', $at",
            {"run_id": first.run_id, "source": first.source, "entity": first.entity,
             "scopes": [pull.scope for pull in pulls], "mode": first.mode, "at": _now()},
        )


def record_absent(warehouse: Warehouse, *, run_id: str, source: str, entities: Iterable[str]) -> None:
    """Record that the source does not provide ``entities`` in this run (not extracted, not failed):
    their previous rows stay, and later stages treat them as unknown."""
    at = _now()
    with warehouse.writing() as con:
        con.execute(
            "INSERT INTO sync.extractions (run_id, source, entity, scope, mode, status, started_at, finished_at)"
            " SELECT $run_id, $source, unnest($entities::VARCHAR[]), $scope, 'full', 'absent', $at, $at",
            {"run_id": run_id, "source": source, "entities": list(entities), "scope": WHOLE_SOURCE, "at": at})


class Ended(NamedTuple):
    """How a pull ended: complete when ``error`` is None, else failed for that reason."""

    extraction: Extraction
    error: str | None = None
    stats: dict | None = None


def finish_extractions(warehouse: Warehouse, ended: Iterable[Ended]) -> None:
    """End pulls, in one transaction: a complete full pull replaces its scope's older rows, a complete
    delta pull the older versions of the records it saw; a failed pull's partial rows are dropped,
    so the previous complete picture stays. Pulls of one table and outcome share each statement."""
    groups: dict[tuple, list[tuple[Extraction, dict | None]]] = defaultdict(list)
    for pull, error, stats in ended:
        if error is None:
            pull._flush()
        else:
            with pull._lock:
                pull._buffer = []
        error = None if error is None else scrub(error)
        groups[(pull.table, pull.run_id, pull.source, pull.entity, pull.mode, error)].append((pull, stats))
    if not groups:
        return
    with warehouse.writing() as con:
        con.execute("BEGIN")
        for (table, run_id, source, entity, mode, error), ends in groups.items():
            scopes = {"run": run_id, "scopes": [pull.scope for pull, _ in ends]}
            if error is not None:
                con.execute(f"DELETE FROM {table} WHERE run_id = $run AND list_contains($scopes, scope)", scopes)
            elif mode == "full":
                con.execute(f"DELETE FROM {table} WHERE run_id <> $run AND list_contains($scopes, scope)", scopes)
            else:
                con.execute(
                    f"""DELETE FROM {table} WHERE run_id <> $run AND sis_id IN
                        (SELECT sis_id FROM {table} WHERE run_id = $run AND list_contains($scopes, scope))""",
                    scopes,
                )
            con.execute(
                """UPDATE sync.extractions AS x
                   SET status = $status, rows = e.rows, quarantined = e.quarantined, finished_at = $at,
                       error = $error, stats = e.stats
                   FROM (SELECT unnest($scopes::VARCHAR[]) AS scope, unnest($rows::BIGINT[]) AS rows,
                                unnest($quarantined::BIGINT[]) AS quarantined, unnest($stats::JSON[]) AS stats) AS e
                   WHERE x.run_id = $run_id AND x.source = $source AND x.entity = $entity AND x.scope = e.scope""",
                {"run_id": run_id, "source": source, "entity": entity, "at": _now(), "error": error,
                 "status": "complete" if error is None else "failed", "scopes": scopes["scopes"],
                 "rows": [pull.rows if error is None else 0 for pull, _ in ends],
                 "quarantined": [pull.quarantined for pull, _ in ends],
                 "stats": [scrub(json.dumps(stats or {})) for _, stats in ends]},
            )
        con.execute("COMMIT")


ABANDONED_BECAUSE = ("abandoned: the process running this pull ended before the pull did (killed, crashed or "
                     "shut down); its partial rows were dropped and the scope keeps its previous data")


def end_running(warehouse: Warehouse, *, status: Literal["failed", "abandoned"], error: str,
                run_id: str | None = None, source: str | None = None) -> int:
    """End every pull still ``running`` (of ``run_id`` and ``source`` when given) as ``status``,
    saying why in ``error``, and drop its partial rows: its scope keeps its previous picture.
    Returns how many pulls were ended.

    ``abandoned`` is for pulls a dead process left behind, ended by the next writer: holding the
    warehouse's writer lock, it knows nobody else is landing them. ``failed`` is for the pulls of an
    extraction that broke off (a source refused mid-run, a full disk, Ctrl-C)."""
    params = {"status": status, "error": scrub(error), "at": _now(), "run": run_id, "source": source}
    with warehouse.writing() as con:
        con.execute("BEGIN")
        ended = con.execute(
            """UPDATE sync.extractions SET status = $status, error = $error, finished_at = $at, rows = 0
               WHERE status = 'running' AND ($run IS NULL OR run_id = $run) AND ($source IS NULL OR source = $source)
               RETURNING run_id, source, entity, scope""", params).fetchall()
        scopes: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        for run, of_source, entity, scope in ended:
            scopes[(run, of_source, entity)].append(scope)
        existing = {name for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'raw'").fetchall()}
        for (run, of_source, entity), of_pulls in scopes.items():
            if f"{of_source}__{entity}" in existing:
                con.execute(f"DELETE FROM {raw_table(of_source, entity)} WHERE run_id = $run"
                            " AND list_contains($scopes::VARCHAR[], scope)", {"run": run, "scopes": of_pulls})
        con.execute("COMMIT")
    return len(ended)


def land_rows(con, extractions: Mapping[str, Extraction], select: str) -> None:
    """Insert on ``con`` (a writing cursor) the rows of the query ``select`` — an entity's canonical
    columns in registry order, ``payload``, then ``scope`` — for ``extractions`` (of that entity, by
    scope). Pages normalized in SQL (:mod:`.landing`) land this way instead of by ``write_page``."""
    first = next(iter(extractions.values()))
    names = ", ".join(ident(c) for c in [*first.columns, "payload", "scope", "run_id", "extracted_at"])
    insert = f"INSERT INTO {first.table} ({names}) SELECT *, $run_id, $at FROM ({select})"
    params = {"run_id": first.run_id, "at": _now()}
    if len(extractions) == 1:  # a whole file: count the rows, do not send them back
        (rows,) = con.execute(insert, params).fetchone()
        with first._lock:
            first.rows += rows
        return
    landed = con.execute(f"{insert} RETURNING scope", params).fetchall()
    for scope, rows in Counter(scope for (scope,) in landed).items():
        extraction = extractions[scope]
        with extraction._lock:
            extraction.rows += rows


def quarantine_rows(con, extractions: Mapping[str, Extraction], select: str) -> None:
    """Quarantine on ``con`` the records of the query ``select``, ``(scope, reason, raw JSON)``, for
    ``extractions`` (of one entity, by scope)."""
    counts = con.execute(f"SELECT scope, count(*) FROM ({select}) GROUP BY scope").fetchall()
    if not counts:
        return
    first = next(iter(extractions.values()))
    con.execute(
        "INSERT INTO sync.issues SELECT $run_id, $source, $entity, NULL, NULL, 'quarantine', 'Error',"
        f" reason || ': ' || left(raw::VARCHAR, 500), $at FROM ({select}) AS broken(scope, reason, raw)",
        {"run_id": first.run_id, "source": first.source, "entity": first.entity, "at": _now()},
    )
    for scope, quarantined in counts:
        extraction = extractions[scope]
        with extraction._lock:
            extraction.quarantined += quarantined


def emptied_scopes(warehouse: Warehouse, pulls: Iterable[Extraction]) -> dict[str, int]:
    """Of ``pulls`` that landed nothing, those whose scope holds rows of an earlier full extraction:
    scope -> how many. Their source answered an empty list where it had records — perhaps a change,
    perhaps a server that answers an unknown filter or a broken endpoint with nothing."""
    pulls = [pull for pull in pulls if pull.rows == 0]
    if not pulls:
        return {}
    first = pulls[0]
    return dict(warehouse.reading().execute(
        f"""SELECT r.scope, count(*) FROM {first.table} AS r
            SEMI JOIN sync.extractions AS x ON x.run_id = r.run_id AND x.scope = r.scope
              AND x.source = $source AND x.entity = $entity AND x.mode = 'full'
            WHERE r.run_id <> $run AND list_contains($scopes::VARCHAR[], r.scope) GROUP BY r.scope""",
        {"source": first.source, "entity": first.entity, "run": first.run_id,
         "scopes": [pull.scope for pull in pulls]}).fetchall())


def forget_pulls(warehouse: Warehouse, pulls: Iterable[Extraction]) -> None:
    """Drop what ``pulls`` (still running) landed and quarantined, to land their scopes again."""
    pulls = list(pulls)
    scopes: dict[tuple, list[str]] = defaultdict(list)
    for pull in pulls:
        scopes[(pull.table, pull.run_id, pull.source, pull.entity)].append(pull.scope)
    with warehouse.writing() as con:
        for (table, run_id, source, entity), of_table in scopes.items():
            con.execute(f"DELETE FROM {table} WHERE run_id = $run AND list_contains($scopes::VARCHAR[], scope)",
                        {"run": run_id, "scopes": of_table})
            con.execute("DELETE FROM sync.issues WHERE run_id = $run AND source = $source AND entity = $entity"
                        " AND rule = 'quarantine'", {"run": run_id, "source": source, "entity": entity})
    for pull in pulls:
        with pull._lock:
            pull._buffer, pull.rows, pull.quarantined = [], 0, 0


def sweep_superseded(warehouse: Warehouse, *, run_id: str, source: str, entity: str, kept: Iterable[str]) -> None:
    """After a full extraction of ``entity``: drop every row an older run left outside ``kept``
    (the scopes that failed in this run, which keep their previous picture).

    The pulls that completed already replaced their own scopes; this takes the rest — scopes the
    source no longer has (a school gone, or no longer mapped) and rows of delta runs outside any
    scope read now — so that the table holds exactly what the source served."""
    table = raw_table(source, entity)
    with warehouse.writing() as con:
        con.execute(f"DELETE FROM {table} WHERE run_id <> $run AND NOT list_contains($kept::VARCHAR[], scope)",
                    {"run": run_id, "kept": list(kept)})


def advance_watermark(warehouse: Warehouse, *, run_id: str, source: str, entities: Iterable[str],
                      server_time: datetime | None = None) -> str | None:
    """Move the delta watermark of ``entities`` — those one read landed, every one of its pulls
    complete — to what that read saw; return the new watermark (None: nothing to go by).

    The watermark is the newest ``date_last_modified`` the read landed, but never later than the
    server's clock when the read started (``server_time``): a record changed while the read was
    paging, after its page was read, is then read again by the next delta instead of being missed.
    A read that landed nothing still moves to ``server_time``, so the next delta reads only what
    changed. Every entity of the read gets the same watermark, rows or not, and it never moves back.
    """
    entities = list(entities)
    newest_of = " UNION ALL ".join(
        f"SELECT date_last_modified AS mark FROM {raw_table(source, entity)} WHERE run_id = $run"
        for entity in entities)
    with warehouse.writing() as con:
        newest, newest_at = con.execute(
            f"""SELECT arg_max(mark, TRY_CAST(mark AS TIMESTAMPTZ)), max(TRY_CAST(mark AS TIMESTAMPTZ))
                FROM ({newest_of}) WHERE TRY_CAST(mark AS TIMESTAMPTZ) IS NOT NULL""", {"run": run_id}).fetchone()
        started = server_time.astimezone(timezone.utc) if server_time is not None else None
        if started is not None and (newest_at is None or started < newest_at):
            newest = started.strftime("%Y-%m-%dT%H:%M:%SZ")
        if newest is None:
            return None
        con.execute(
            """INSERT INTO sync.watermarks SELECT $source, unnest($entities::VARCHAR[]), $mark, $run, $at
               ON CONFLICT (source, entity) DO UPDATE SET
                 watermark = CASE WHEN TRY_CAST(EXCLUDED.watermark AS TIMESTAMPTZ)
                                       > TRY_CAST(sync.watermarks.watermark AS TIMESTAMPTZ)
                                  THEN EXCLUDED.watermark ELSE sync.watermarks.watermark END,
                 run_id = EXCLUDED.run_id, updated_at = EXCLUDED.updated_at""",
            {"source": source, "entities": entities, "mark": newest, "run": run_id, "at": _now()})
    return newest


def watermark(warehouse: Warehouse, source: str, entity: str) -> str | None:
    """The delta watermark of a source × entity, or None before its first complete pull."""
    row = warehouse.reading().execute(
        "SELECT watermark FROM sync.watermarks WHERE source = ? AND entity = ?", [source, entity]
    ).fetchone()
    return row[0] if row else None
