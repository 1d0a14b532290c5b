"""Fixtures of the source clients' tests: a scripted stub server per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from stub_server import StubServer, serving


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with serving() as server:
        yield server
