"""Per-school reads: a school's records read on their own, complete only once the collection agrees.

School-owned entities (OneRoster courses, classes, students, enrollments) land one scope per
school, so a failed school keeps its previous picture and the rest move on. How a read gets
each school's records:

- **nested** (``schools/{id}/<collection>``, full runs with ``roster.readonly``, when every
  school of the source is read and the collection gives its count): each school on its own, up
  to ``max_concurrency`` at once. The schools' records must then add up to the collection's own
  count (``X-Total-Count``), or the read is not trusted: real servers leave nested endpoints
  unimplemented (404), answer them with another collection, or build them from enrollments (a
  student without one is missing) — so on any failed school, wrong kind or count mismatch the
  read starts over the other way, and the run says why, naming the endpoint;
- **split**: the collection read once and split by school locally (delta runs, no nested scope,
  a subset of the schools, no count, or a nested read that did not reconcile). It is complete by
  its own count; records naming no school land in the source-wide scope ``*``.

Either way scope ``*`` is accounted for: after a nested read that reconciled, nothing lies
outside the schools and ``*`` completes empty, so older rows there are replaced too.
"""

from __future__ import annotations

from passport_pipeline.sources import SourceError
from passport_pipeline.sources.reads import Read
from passport_pipeline.warehouse.raw import WHOLE_SOURCE, raw_table


def read_per_school(run, read: Read) -> None:
    """Land ``read`` (a per-school read) for ``run``, one scope per school plus ``*``; settle it."""
    source_schools = _source_schools(run)
    schools = _schools(run.source, source_schools)
    scopes = [*schools, WHOLE_SOURCE]
    run.open(read, scopes)
    expected = _countable(run, read, schools, source_schools)
    if expected is not None:
        run.log(f"{run.source.name}: reading {read.name} for {len(schools)} schools")
        run.consume(run.client.by_school(read.name, schools), lambda school: (read, _scope(school)))
        run.commit()
        why = _unreconciled(run, read, schools, expected)
        if why is None:
            run.end_empty(read, WHOLE_SOURCE)
            run.settle(read)
            return
        _start_over(run, read, scopes, why)
    run.consume(run.client.split_by_school(read.name, schools, since=run.since(read)),
                lambda school: (read, _scope(school)))
    run.settle(read)


def _scope(school: str | None) -> str:
    return WHOLE_SOURCE if school is None else school


def _countable(run, read: Read, schools: list[str], source_schools: list[str]) -> int | None:
    """The collection's own count when ``read`` may go school by school — a full run, nested scope
    granted, every school read — and the server counts it; else None: read it whole and split it."""
    if run.delta or not run.client.can_read_nested() or set(schools) != set(source_schools):
        return None
    try:
        return run.client.total(read.name)
    except SourceError as error:
        run.note(read, f"/{read.name} could not be counted ({error}): read whole and split by school instead "
                       "of per school")
        return None


def _unreconciled(run, read: Read, schools: list[str], expected: int) -> str | None:
    """Why the per-school pages of ``read`` cannot be taken as the whole collection (None: they can)."""
    failed = [(scope, event.error) for done, scope, event in run.ended if done is read and event.error is not None]
    if failed:
        return f"schools/{{id}}/{read.name} failed for {len(failed)} of {len(schools)} schools ({failed[0][1]})"
    entity = run.landed(read)[0]
    (landed,) = run.warehouse.reading().execute(
        f"SELECT count(DISTINCT sis_id) FROM {raw_table(run.source.name, entity)}"
        " WHERE run_id = $run AND list_contains($schools::VARCHAR[], scope)",
        {"run": run.result.run_id, "schools": schools}).fetchone()
    landed += sum(run.extractions[(entity, school)].quarantined for school in schools)
    if landed != expected:
        return (f"schools/{{id}}/{read.name} gave {landed:,} {entity} over {len(schools)} schools, but "
                f"/{read.name} counts {expected:,}")
    return None


def _start_over(run, read: Read, scopes: list[str], why: str) -> None:
    """Forget what the per-school pulls of ``read`` landed, to read the collection instead."""
    run.forget(read, scopes)
    run.note(read, f"{why}: read /{read.name} whole and split it by school instead")


def _source_schools(run) -> list[str]:
    """The source's schools: those landed in raw (this run read them first), else asked of the source."""
    try:
        rows = run.warehouse.reading().execute(
            f"SELECT DISTINCT sis_id FROM {raw_table(run.source.name, 'schools')}"
            " WHERE org_type = 'school' AND sis_id IS NOT NULL ORDER BY sis_id").fetchall()
    except Exception:  # noqa: BLE001 - no schools landed yet: ask the source
        rows = []
    return [sis_id for (sis_id,) in rows] or run.client.school_ids()


def _schools(source, source_schools: list[str]) -> list[str]:
    """The schools to read: every school of the source, or the explicitly mapped ones it has."""
    mapping = source.advanced.schools_mapping
    if mapping.mode != "explicit":
        return source_schools
    present = set(source_schools)
    return [school for school in mapping.schools if school in present] if present else list(mapping.schools)
