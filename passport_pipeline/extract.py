"""Extraction: land a configured source's entities in ``raw.*``, page by page, scope by scope.

A source client declares its reads (:class:`~passport_pipeline.sources.reads.Read`: one paged
endpoint or bundle file each, the entities it lands, whether it runs per school), and extraction
runs them the same way whatever the client. Whole-source reads run side by side on up to
``max_concurrency`` threads; pages reach this thread through a small queue, so memory is bounded
by a few pages whatever the district's size, and land in DuckDB as the client's mapping says
(:mod:`.warehouse.landing`). School-owned entities are read per school
(:mod:`.extract_schools`), so completeness is known per school — the evidence a deletion needs
later — and a per-school read counts as complete only once it agrees with the collection.

Outcomes are per (entity, scope) in ``sync.extractions``: complete when every read feeding it
finished, failed (partial rows dropped, previous picture kept) otherwise, absent when the source
does not provide the entity. After a full extraction ``raw.<source>__<entity>`` holds exactly
what the source served, except that a failed scope keeps its previous complete rows; a delta
extraction upserts the records that changed, which the next full one replaces. A source error
never escapes as an exception for one scope; a bug does. When the extraction breaks off (a source
refusing the whole run, a full disk, a stop, a bug) every pull still running ends failed, with
the reason a person reads (:func:`.failures.explain`). Delta reads ask what changed since the
read's watermark, which moves only after the read completed (:func:`.warehouse.raw.advance_watermark`).
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime

from passport_pipeline.config import Source
from passport_pipeline.crash import crash_point
from passport_pipeline.extract_schools import read_per_school
from passport_pipeline.failures import explain
from passport_pipeline.sources import PullEvent, SourceError, run_pulls
from passport_pipeline.sources.connect import open_client
from passport_pipeline.sources.reads import Read
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.landing import PageLanding
from passport_pipeline.warehouse.raw import (
    WHOLE_SOURCE,
    Ended,
    Extraction,
    advance_watermark,
    emptied_scopes,
    end_running,
    ensure_raw_table,
    finish_extractions,
    forget_pulls,
    record_absent,
    sweep_superseded,
    watermark,
)


@dataclass
class EntityOutcome:
    """How one entity's extraction went, over all its scopes."""

    rows: int = 0
    quarantined: int = 0
    complete: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    watermark: str | None = None
    absent: bool = False
    """The source does not provide this entity (a bundle's file marked absent): not read, not failed."""


@dataclass
class SourceExtraction:
    """The result of extracting one source in one run."""

    source: str
    run_id: str
    mode: str
    entities: dict[str, EntityOutcome]
    seconds: float = 0.0

    @property
    def failed(self) -> dict[str, dict[str, str]]:
        return {e: o.failed for e, o in self.entities.items() if o.failed}


def extract_source(
    warehouse: Warehouse,
    source: Source,
    *,
    run_id: str,
    entities: list[str] | None = None,
    mode: str = "full",
    env: Mapping[str, str] = os.environ,
    log: Callable[[str], None] = lambda message: None,
) -> SourceExtraction:
    """Extract ``entities`` (default: those the source is configured for) into raw tables."""
    wanted = [e for e in (entities or source.entities) if e in source.entities]
    delta = mode == "delta" and source.delta.enabled
    result = SourceExtraction(source.name, run_id, "delta" if delta else "full", {e: EntityOutcome() for e in wanted})
    started = time.perf_counter()
    with closing(open_client(source, env)) as client:
        run = _Run(warehouse, source, client, result, log)
        try:
            run.all()
        except BaseException as error:
            run.abandon(error)
            raise
    result.seconds = time.perf_counter() - started
    return result


class _Run:
    """The bookkeeping of one source's extraction: which scopes each read still owes."""

    def __init__(self, warehouse: Warehouse, source: Source, client, result: SourceExtraction,
                 log: Callable[[str], None]) -> None:
        self.warehouse, self.source, self.client, self.result, self.log = warehouse, source, client, result, log
        self.delta = result.mode == "delta"
        self.extractions: dict[tuple[str, str], Extraction] = {}
        self.landings: dict[str, PageLanding] = {}
        self.ended: list[tuple[Read, str, PullEvent]] = []
        self.owing: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.errors: dict[tuple[str, str], str] = {}
        self.server_times: dict[str, datetime] = {}
        """Per read, the server's clock when its first pull started (from the responses)."""
        self.notes: dict[str, list[str]] = defaultdict(list)
        """Per read, what a person should know of how it was read (kept with its pulls' stats)."""

    def all(self) -> None:
        """Every read the wanted entities need, in the client's order; then what the run leaves behind."""
        plan = [read for read in self.client.reads() if self.landed(read)]
        absent = [read for read in plan if read.absent]
        if absent:
            entities = [entity for read in absent for entity in self.landed(read)]
            record_absent(self.warehouse, run_id=self.result.run_id, source=self.source.name, entities=entities)
            for entity in entities:
                ensure_raw_table(self.warehouse, self.source.name, entity)  # later stages read it, empty or not
                self.result.entities[entity].absent = True
        present = [read for read in plan if not read.absent]
        self.whole_files([read for read in present if read.whole_file])
        self.whole_source([read for read in present if not read.per_school and not read.whole_file])
        for read in present:
            if read.per_school:
                read_per_school(self, read)
        self.close(present)

    def landed(self, read: Read) -> list[str]:
        """The entities of ``read`` this run extracts."""
        return [entity for entity in read.lands if entity in self.result.entities]

    def whole_files(self, reads: list[Read]) -> None:
        """The reads the client lands whole from a file, one transaction each: all of it, or none."""
        for read in reads:
            self.open(read, [WHOLE_SOURCE])
            transaction = self.warehouse.transaction()
            try:
                with transaction.writing() as con:
                    self.client.land(read.name, con, {entity: self.extractions[(entity, WHOLE_SOURCE)]
                                                      for entity in self.landed(read)})
                transaction.commit()
                event = PullEvent(read.name)
            except SourceError as error:
                transaction.rollback()
                event = PullEvent(read.name, error=error)
            except BaseException:
                transaction.rollback()
                raise
            self.ended.append((read, WHOLE_SOURCE, event))
        self.settle()

    def whole_source(self, reads: list[Read]) -> None:
        """Every whole-source read, side by side; events keyed by read name."""
        by_name = {read.name: read for read in reads}
        for read in reads:
            self.open(read, [WHOLE_SOURCE])
        pulls = {read.name: (lambda read=read: self.client.read(read.name, since=self.since(read)))
                 for read in reads}
        self.consume(run_pulls(pulls, self.client.max_concurrency), lambda key: (by_name[key], WHOLE_SOURCE))
        self.settle()

    def consume(self, events: Iterator[PullEvent], route: Callable[[str | None], tuple[Read, str]]) -> None:
        """Land the pages of ``events`` and keep their ends for :meth:`settle`; ``route`` says which
        read and scope an event's key stands for."""
        with closing(events):  # a bug raised here must still stop the pulls' threads
            for event in events:
                read, scope = route(event.key)
                if (self.landed(read)[0], scope) not in self.extractions:
                    self.open(read, [scope])
                if not event.final:
                    self.landing(read).add(event.records, scope)
                    crash_point("extract.mid_read")
                    continue
                if event.error is not None:
                    self.landing(read).discard(scope)
                if event.stats is not None and event.stats.server_time is not None:
                    known = self.server_times.get(read.name)
                    self.server_times[read.name] = min(filter(None, (known, event.stats.server_time)))
                self.ended.append((read, scope, event))

    def end_empty(self, read: Read, scope: str) -> None:
        """Settle ``scope`` of ``read`` as complete with nothing in it (nothing lies there)."""
        self.ended.append((read, scope, PullEvent(None)))

    def commit(self) -> None:
        """Land what the reads buffered and make it visible (their pulls stay open)."""
        for landing in self.landings.values():
            landing.commit()

    def forget(self, read: Read, scopes: list[str]) -> None:
        """Drop what ``read`` landed in ``scopes`` this run, and its ends not settled yet: it is read again."""
        self.ended = [item for item in self.ended if item[0] is not read]
        keys = [(entity, scope) for entity in self.landed(read) for scope in scopes]
        forget_pulls(self.warehouse, [self.extractions[key] for key in keys])
        for key in keys:
            self.errors.pop(key, None)
            self.owing[key] = {read.name}

    def settle(self, read: Read | None = None) -> None:
        """Commit what the reads landed, then account for the pulls that ended (of ``read`` only, when given).

        Ends are settled after the reads, not as each pull ends, so that the pages of many small
        scopes (schools) land together, and a read's rows are committed before any pull of it
        completes (or fails and drops its rows)."""
        self.commit()
        ended = [item for item in self.ended if read is None or item[0] is read]
        self.ended = [item for item in self.ended if item not in ended]
        self.finish([done for read, scope, event in ended for done in self.end(read, scope, event)])

    def open(self, read: Read, scopes: list[str]) -> None:
        """Record the pulls of ``scopes`` as running (once), each owing ``read`` until it ends."""
        for entity in self.landed(read):
            new = [scope for scope in scopes if (entity, scope) not in self.extractions]
            if new:
                started = Extraction.start(self.warehouse, run_id=self.result.run_id, source=self.source.name,
                                           entity=entity, scopes=new, mode=self.mode(read))
                self.extractions.update({(entity, scope): pull for scope, pull in started.items()})
            for scope in scopes:
                self.owing[(entity, scope)].add(read.name)

    def mode(self, read: Read) -> str:
        """``delta`` in a delta run, and for a read that holds only changes (a bundle's delta file):
        its rows are upserts that replace nothing else; else ``full``."""
        return "delta" if self.delta or read.delta else "full"

    def since(self, read: Read) -> str | None:
        """Where a delta read starts: the oldest watermark of what it lands (None, i.e. read
        everything, in a full run or when any is unset)."""
        if not self.delta:
            return None
        marks = [watermark(self.warehouse, self.source.name, entity) for entity in self.landed(read)]
        if not marks or None in marks:
            return None
        return min(marks, key=lambda mark: datetime.fromisoformat(mark.replace("Z", "+00:00")))

    def abandon(self, error: BaseException) -> None:
        """The extraction broke off (a source refused mid-run, a full disk, a stop, a bug): drop what the
        reads landed and did not commit, and end every pull still running as failed, saying why."""
        if not self.extractions:  # nothing was recorded (the warehouse may not even be open)
            return
        why = explain(error, self.source) or f"the extraction broke off: {type(error).__name__}: {error}"
        try:
            for landing in self.landings.values():
                landing.rollback()
            end_running(self.warehouse, status="failed", error=why, run_id=self.result.run_id,
                        source=self.source.name)
        except Exception:  # the warehouse cannot be written (a full disk): the next writer abandons them
            pass

    def end(self, read: Read, scope: str, event: PullEvent) -> list[tuple[tuple[str, str], dict]]:
        """Account for a pull that ended: the keys ``(entity, scope)`` it leaves owing nothing, with its stats."""
        crash_point("extract.read_committed")
        stats = _stats(event.stats)
        stats["warnings"] = [*self.notes[read.name], *stats.get("warnings", [])]
        done = []
        for entity in self.landed(read):
            key = (entity, scope)
            self.owing[key].discard(read.name)
            if event.error is not None:
                self.errors[key] = str(event.error)
            self.warn(entity, stats.get("warnings", []))
            if not self.owing[key]:
                done.append((key, dict(stats)))
        return done

    def warn(self, entity: str, warnings: list[str]) -> None:
        outcome = self.result.entities[entity]
        outcome.warnings += [warning for warning in warnings if warning not in outcome.warnings]

    def note(self, read: Read, message: str) -> None:
        """Tell a person how ``read`` went (a fallback): in the log, and with its pulls' stats."""
        self.log(f"{self.source.name}: {message}")
        self.notes[read.name].append(message)

    def landing(self, read: Read) -> PageLanding:
        if read.name not in self.landings:
            landed = self.landed(read)
            quarantine = read.lands[0] if read.lands[0] in landed else landed[0]
            self.landings[read.name] = PageLanding(self.warehouse, self.client.mapping(read.name), landed,
                                                   quarantine, self.extractions)
        return self.landings[read.name]

    def finish(self, done: list[tuple[tuple[str, str], dict]]) -> None:
        """Complete or fail the pulls that owe nothing more, all at once."""
        self.notice_emptied(done)
        finish_extractions(self.warehouse, [Ended(self.extractions[key], self.errors.get(key), stats)
                                            for key, stats in done])
        for key, _ in done:
            extraction, outcome = self.extractions[key], self.result.entities[key[0]]
            if key in self.errors:
                outcome.failed[key[1]] = self.errors[key]
                self.log(f"{self.source.name}: {key[0]} for scope {key[1]} FAILED: {self.errors[key]}")
            else:
                outcome.complete.append(key[1])
                outcome.rows += extraction.rows
            outcome.quarantined += extraction.quarantined

    def notice_emptied(self, done: list[tuple[tuple[str, str], dict]]) -> None:
        """Warn of complete pulls that found nothing where the last full extraction found records:
        an unexpectedly empty answer is worth a person's look, not a licence to delete."""
        complete: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for key, _ in done:
            if key not in self.errors:
                complete[key[0]].append(key)
        stats = {key: of_key for key, of_key in done}
        for entity, keys in complete.items():
            emptied = emptied_scopes(self.warehouse, [self.extractions[key] for key in keys])
            for scope, before in emptied.items():
                where = "the whole source" if scope == WHOLE_SOURCE else f"school {scope}"
                warning = (f"{entity} of {where}: the source answered no rows where the last full extraction "
                           f"found {before:,}; check the source before these records are taken as gone")
                stats[(entity, scope)]["warnings"] = [*stats[(entity, scope)].get("warnings", []), warning]
                self.warn(entity, [warning])

    def close(self, reads: list[Read]) -> None:
        """What the run leaves behind: after a full run each entity holds what the source served (its
        failed scopes aside), and each read that completed moves its entities' watermark (for a source
        that can read changes: no other ever reads one)."""
        for read in reads:
            entities = self.landed(read)
            if self.mode(read) == "full":
                for entity in entities:
                    sweep_superseded(self.warehouse, run_id=self.result.run_id, source=self.source.name,
                                     entity=entity, kept=self.result.entities[entity].failed)
                    crash_point("extract.sweep")
            if self.source.DELTA and not any(self.result.entities[entity].failed for entity in entities):
                mark = advance_watermark(self.warehouse, run_id=self.result.run_id, source=self.source.name,
                                         entities=entities, server_time=self.server_times.get(read.name))
                for entity in entities:
                    self.result.entities[entity].watermark = mark


def _stats(stats) -> dict:
    if stats is None:
        return {}
    return {"pages": stats.pages, "rows": stats.rows, "duplicates": stats.duplicates,
            "clamped_limit": stats.clamped_limit, "total": stats.total,
            "total_changes": stats.total_changes, "seconds": round(stats.seconds, 3),
            "warnings": stats.warnings}
