"""Fixtures shared by every test: one small generated district per session, and copies of it.

The pristine district is generated once per test session (seed 7, 300 students, clean data);
tests that change a district take ``district_copy``, a private writable copy, so the pristine
file never changes under another test. No test sees the secrets another registered.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from passport_pipeline import redaction
from passport_pipeline.simulator.district import generate_district, working_copy

SMALL_SEED = 7
SMALL_STUDENTS = 300


@pytest.fixture(scope="session")
def small_district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a pristine clean district (seed 7, 300 students). Read it; never write to it."""
    path = tmp_path_factory.mktemp("small_district") / "district.duckdb"
    generate_district(path, seed=SMALL_SEED, students=SMALL_STUDENTS)
    return path


@pytest.fixture
def district_copy(small_district: Path, tmp_path: Path) -> Path:
    """Path of a writable copy of ``small_district``, private to one test."""
    return working_copy(small_district, tmp_path / "district.duckdb")


@pytest.fixture(autouse=True)
def secrets_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts knowing no secret, as a new process does: what one test registers for
    scrubbing (:mod:`passport_pipeline.redaction`) never scrubs another's text."""
    monkeypatch.setattr(redaction, "_forms", set())
    monkeypatch.setattr(redaction, "_pattern", None)
