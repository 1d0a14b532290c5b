"""Writing what a stage found into ``sync.issues``: one row per record and problem.

A stage first clears the issues it raised earlier in the same run (:func:`clear_issues`), so
re-running a stage gives the same rows; then each check inserts its findings from a query
(:func:`record_issues`). Severities: ``Error`` (the record is kept, the problem reported),
``Skipped`` (the record is left out of the candidate roster).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

ERROR = "Error"
SKIPPED = "Skipped"


def now() -> datetime:
    """The time issues are stamped with (UTC, naive, as DuckDB's TIMESTAMP)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def clear_issues(con, *, run_id: str, source: str, rules: Iterable[str]) -> None:
    """Forget the issues of ``rules`` this run already raised for ``source``."""
    con.execute(
        "DELETE FROM sync.issues WHERE run_id = $run AND source = $source AND list_contains($rules, rule)",
        {"run": run_id, "source": source, "rules": list(rules)},
    )


def record_issues(con, *, run_id: str, source: str, entity: str, select: str,
                  params: Mapping[str, Any] | None = None) -> int:
    """Insert the issues of the query ``select`` and return how many.

    ``select`` yields ``record_id, attribute, rule, severity, message`` and may use named
    parameters from ``params`` (not ``$issue_*``, which are this function's own).
    """
    values = {**(params or {}), "issue_run": run_id, "issue_source": source, "issue_entity": entity,
              "issue_at": now()}
    (count,) = con.execute(
        f"""WITH inserted AS (
                INSERT INTO sync.issues
                SELECT $issue_run, $issue_source, $issue_entity, found.*, $issue_at
                FROM ({select}) AS found(record_id, attribute, rule, severity, message)
                RETURNING 1)
            SELECT count(*) FROM inserted""",
        values,
    ).fetchone()
    return count
