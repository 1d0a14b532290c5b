"""Extraction: land a configured source's entities in ``raw.*``, page by page, scope by scope.

A source is read through a plan of *reads* (one paged endpoint each), and a read may land
several entities (OneRoster contacts bring their student links; SMS sections bring teachers'
enrollments). OneRoster reads of school-owned entities run per school, so completeness is known
per school — the evidence a deletion needs later. Whole-source reads run side by side on up to
``max_concurrency`` threads; pages reach this thread through a small queue, so memory is
bounded by a few pages whatever the district's size. API pages land as JSON text, normalized
by DuckDB (:mod:`.warehouse.landing`), so this thread does not touch their records; CSV bundle
files are landed by DuckDB's CSV reader, each read in a transaction of its own
(:meth:`.sources.csv_bundle.CsvBundle.land`). A read's pages of every scope share batches, and
the pulls that ended are accounted for once the read's last batch landed.

Outcomes are per (entity, scope) in ``sync.extractions``: complete when every read feeding it
finished, failed (partial rows dropped, previous picture kept) otherwise, absent when the source
does not provide it (a CSV bundle's file marked absent). A source error never
escapes as an exception for one scope; a bug does. Delta mode reads what changed since each
entity's watermark, which moves only after a complete pull.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from passport_pipeline.config import CsvBundleSource, OneRosterSource, Source
from passport_pipeline.sources import (
    PullEvent,
    SmsClient,
    SourceError,
    normalize_oneroster,
    run_pulls,
)
from passport_pipeline.sources.connect import open_client
from passport_pipeline.sources.csv_bundle import READS as CSV_READS
from passport_pipeline.sources.csv_bundle import CsvBundle
from passport_pipeline.sources.normalize_oneroster import oneroster_kind
from passport_pipeline.sources.oneroster import ENTITY_READS
from passport_pipeline.sources.reads import Read
from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.landing import PageLanding
from passport_pipeline.warehouse.normalize_sql import SqlMapping
from passport_pipeline.warehouse.normalize_sql_oneroster import ONEROSTER_SQL
from passport_pipeline.warehouse.normalize_sql_sms import SMS_SQL
from passport_pipeline.warehouse.raw import (
    WHOLE_SOURCE,
    Ended,
    Extraction,
    advance_watermark,
    ensure_raw_table,
    finish_extractions,
    raw_table,
    record_absent,
    watermark,
)


ONEROSTER_READS = (
    Read("schools", ("schools",)),
    Read("terms", ("terms",)),
    Read("courses", ("courses",), per_school=True),
    Read("classes", ("classes",), per_school=True),
    Read("students", ("students",), per_school=True),
    Read("users", ("staff", "contacts", "student_contacts")),
    Read("enrollments", ("enrollments",), per_school=True),
    Read("demographics", ("demographics",)),
)
SMS_READS = (
    Read("schools", ("schools",)),
    Read("terms", ("terms",)),
    Read("courses", ("courses",)),
    Read("sections", ("classes", "enrollments")),
    Read("students", ("students", "demographics")),
    Read("staff", ("staff",)),
    Read("guardians", ("contacts", "student_contacts")),
    Read("student_schedules", ("enrollments",)),
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
    """The source does not provide it in this run (recorded ``absent``: neither extracted nor failed)."""


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


def reads_for(source: Source, entities: list[str]) -> list[Read]:
    """The reads that land ``entities`` from ``source``, in dependency order."""
    reads = {"skyward_oneroster": ONEROSTER_READS, "skyward_sms": SMS_READS}.get(source.app, CSV_READS)
    return [read for read in reads if set(read.lands) & set(entities)]


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
    delta = mode == "delta" and isinstance(source, OneRosterSource) and source.delta.enabled
    result = SourceExtraction(source.name, run_id, "delta" if delta else "full",
                              {e: EntityOutcome() for e in wanted})
    started = time.perf_counter()
    client = open_client(source, env)
    run = _Run(warehouse, source, client, result, wanted, delta, log)
    try:
        plan = reads_for(source, wanted)
        run.whole_source([r for r in plan if not (r.per_school and not delta)])
        for read in plan:
            if read.per_school and not delta:
                run.per_school(read)
    except BaseException:
        run.abandon()
        raise
    finally:
        if not isinstance(client, CsvBundle):
            client.close()
    for entity, outcome in result.entities.items():
        if not outcome.failed and not outcome.absent:
            outcome.watermark = advance_watermark(warehouse, run_id=run_id, source=source.name, entity=entity)
    result.seconds = time.perf_counter() - started
    return result


class _Run:
    """The bookkeeping of one source's extraction: which scopes each read still owes."""

    def __init__(self, warehouse, source, client, result, wanted, delta, log):
        self.warehouse, self.source, self.client, self.result = warehouse, source, client, result
        self.wanted, self.delta, self.log = set(wanted), delta, log
        self.extractions: dict[tuple[str, str], Extraction] = {}
        self.landings: dict[str, PageLanding] = {}
        self.ended: list[tuple[Read, str, PullEvent]] = []
        self.owing: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.errors: dict[tuple[str, str], str] = {}

    def whole_source(self, reads: list[Read]) -> None:
        """Every whole-source read, side by side; events keyed by read name."""
        if isinstance(self.client, CsvBundle):
            self._land_bundle(reads)
            return
        by_name = {read.name: read for read in reads}
        for read in reads:
            self._open(read, [WHOLE_SOURCE])
        pulls = {read.name: partial(self._pull, read) for read in reads}
        events = run_pulls(pulls, self.client.settings.max_concurrency)
        with closing(events):  # a bug raised here must still stop the pulls' threads
            for event in events:
                read = by_name[event.key]
                self._consume(read, WHOLE_SOURCE, event)
        self._settle()

    def per_school(self, read: Read) -> None:
        """One read per school (nested endpoints, or one read split by school locally)."""
        schools = self._school_ids()
        self._open(read, schools)
        self.log(f"{self.source.name}: reading {read.name} for {len(schools)} schools")
        events = self.client.by_school(read.name, schools)
        with closing(events):
            for event in events:
                scope = WHOLE_SOURCE if event.key is None else event.key
                if (read.lands[0], scope) not in self.extractions:
                    self._open(read, [scope])
                self._consume(read, scope, event)
        self._settle()

    def _pull(self, read: Read):
        if isinstance(self.client, SmsClient):
            return self.client.pull(read.name)
        since = self._since(read) if self.delta else None
        if read.name in ENTITY_READS:
            return self.client.pull(read.name, since=since)
        return self.client.collection(read.name, since=since)

    def _since(self, read: Read) -> str | None:
        """The oldest watermark of what the read lands (None, i.e. read everything, if any is unset)."""
        marks = [watermark(self.warehouse, self.source.name, entity) for entity in self._landed(read)]
        if not marks or None in marks:
            return None
        return min(marks, key=lambda mark: datetime.fromisoformat(mark.replace("Z", "+00:00")))

    def _open(self, read: Read, scopes: list[str]) -> None:
        for entity in self._landed(read):
            new = [scope for scope in scopes if (entity, scope) not in self.extractions]
            if new:
                started = Extraction.start(self.warehouse, run_id=self.result.run_id, source=self.source.name,
                                           entity=entity, scopes=new, mode=self.result.mode)
                self.extractions.update({(entity, scope): pull for scope, pull in started.items()})
            for scope in scopes:
                self.owing[(entity, scope)].add(read.name)

    def _landed(self, read: Read) -> list[str]:
        return [entity for entity in read.lands if entity in self.wanted]

    def _consume(self, read: Read, scope: str, event: PullEvent) -> None:
        if not event.final:
            self._landing(read).add(event.records, scope)
            return
        if event.error is not None and read.name in self.landings:
            self.landings[read.name].discard(scope)
        self.ended.append((read, scope, event))

    def _settle(self) -> None:
        """Commit what the reads landed, then account for the pulls that ended.

        Ends are settled after the reads, not as each pull ends, so that the pages of many small
        scopes (schools) land together, and a read's rows are committed before any pull of it
        completes (or fails and drops its rows)."""
        for landing in self.landings.values():
            landing.commit()
        ended, self.ended = self.ended, []
        self._finish([done for read, scope, event in ended for done in self._end(read, scope, event)])

    def abandon(self) -> None:
        """A bug broke off the run: drop what the reads landed and did not commit."""
        for landing in self.landings.values():
            landing.rollback()

    def _end(self, read: Read, scope: str, event: PullEvent) -> list[tuple[tuple[str, str], dict]]:
        """Account for a pull that ended: the keys ``(entity, scope)`` it leaves owing nothing, with its stats."""
        stats = _stats(event.stats)
        done = []
        for entity in self._landed(read):
            key = (entity, scope)
            self.owing[key].discard(read.name)
            if event.error is not None:
                self.errors[key] = str(event.error)
            outcome = self.result.entities[entity]
            outcome.warnings += stats.get("warnings", [])
            if not self.owing[key]:
                done.append((key, stats))
        return done

    def _land_bundle(self, reads: list[Read]) -> None:
        """Land each read of a CSV bundle in a transaction of its own; a read whose file the bundle does
        not provide records its entities as absent."""
        absent = {read.name for read in self.client.reads() if read.absent}
        for read in reads:
            if read.name in absent:
                record_absent(self.warehouse, run_id=self.result.run_id, source=self.source.name,
                              entities=self._landed(read))
                for entity in self._landed(read):
                    ensure_raw_table(self.warehouse, self.source.name, entity)  # later stages read it
                    self.result.entities[entity].absent = True
                continue
            self._open(read, [WHOLE_SOURCE])
            transaction = self.warehouse.transaction()
            try:
                with transaction.writing() as con:
                    self.client.land(read.name, con, {entity: self.extractions[(entity, WHOLE_SOURCE)]
                                                      for entity in self._landed(read)})
                transaction.commit()
                event = PullEvent(read.name)
            except SourceError as error:
                transaction.rollback()
                event = PullEvent(read.name, error=error)
            except BaseException:
                transaction.rollback()
                raise
            self.ended.append((read, WHOLE_SOURCE, event))
        self._settle()

    def _landing(self, read: Read) -> PageLanding:
        if read.name not in self.landings:
            self.landings[read.name] = PageLanding(
                self.warehouse, _mapping(self.client, read.name), self._landed(read),
                self._quarantine_entity(read), self.extractions)
        return self.landings[read.name]

    def _quarantine_entity(self, read: Read) -> str:
        return read.lands[0] if read.lands[0] in self.wanted else self._landed(read)[0]

    def _finish(self, done: list[tuple[tuple[str, str], dict]]) -> None:
        """Complete or fail the pulls that owe nothing more, all at once."""
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

    def _school_ids(self) -> list[str]:
        mapping = self.source.advanced.schools_mapping
        if mapping.mode == "explicit":
            return list(mapping.schools)
        table = raw_table(self.source.name, "schools")
        try:
            rows = self.warehouse.reading().execute(
                f"SELECT DISTINCT sis_id FROM {table} WHERE org_type = 'school' ORDER BY sis_id").fetchall()
        except Exception:  # noqa: BLE001 - no schools landed yet: ask the source
            rows = []
        if rows:
            return [sis_id for (sis_id,) in rows]
        pages = self.client.pull("schools")
        return [r["sis_id"] for page in pages for r in normalize_oneroster("orgs", page).rows.get("schools", [])
                if r["org_type"] == "school"]


def _mapping(client, read: str) -> SqlMapping:
    """The SQL normalization of a read's records."""
    if isinstance(client, SmsClient):
        return SMS_SQL[read]
    collection, _ = ENTITY_READS.get(read, (read, None))
    return ONEROSTER_SQL[oneroster_kind(collection)]


def _stats(stats) -> dict:
    if stats is None:
        return {}
    return {"pages": stats.pages, "rows": stats.rows, "duplicates": stats.duplicates,
            "clamped_limit": stats.clamped_limit, "total": stats.total,
            "total_changes": stats.total_changes, "seconds": round(stats.seconds, 3),
            "warnings": stats.warnings}
