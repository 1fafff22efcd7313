"""Fixtures of the output behaviour suite."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.behaviour import output_helpers


@pytest.fixture
def make_writer() -> Iterator[Any]:
    """Factory of Writers on a test database; their connections close at teardown."""
    made: list[Any] = []

    def factory(db: Any, table: str, **props: Any) -> Any:
        w = output_helpers.make_writer(db, table, **props)
        made.append(w)
        return w

    yield factory
    for w in made:
        w.pool.close()
