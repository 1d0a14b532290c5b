"""Fixtures of the rule stages' tests: what extraction would have recorded in ``sync.extractions``.

The stages look up references only into entities whose latest extraction is complete
(:mod:`passport_pipeline.rules.known`), so tests that hand-build stage tables also write the
extraction rows they mean, directly (extraction itself is not under test here).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from passport_pipeline.entities import ENTITIES

EXTRACTED_AT = datetime(2026, 9, 1, 6)


def record_extractions(warehouse, entities=tuple(ENTITIES), *, source: str = "sis", run_id: str = "extract",
                       status: str = "complete", scopes=("*",), started_at: datetime = EXTRACTED_AT) -> None:
    """One ``sync.extractions`` row per entity and scope, of ``run_id``, with ``status``."""
    with warehouse.writing() as con:
        con.executemany(
            "INSERT INTO sync.extractions (run_id, source, entity, scope, mode, status, started_at)"
            " VALUES (?, ?, ?, ?, 'full', ?, ?)",
            [[run_id, source, entity, scope, status, started_at] for entity in entities for scope in scopes])


@pytest.fixture(scope="session")
def extracted():
    """:func:`record_extractions`, for tests and module fixtures."""
    return record_extractions


@pytest.fixture(scope="session")
def readme() -> str:
    """The README's text, each run of spaces and line breaks as one space: a message it quotes
    across a line break is found whole."""
    return " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
