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


@pytest.fixture
def make_applier() -> Iterator[Any]:
    """Factory of apply-mode writers on a test database; connections close at teardown."""
    from tests.behaviour import apply_helpers

    made: list[Any] = []

    def factory(db: Any, **props: Any) -> Any:
        w = apply_helpers.make_applier(db, **props)
        made.append(w)
        return w

    yield factory
    for w in made:
        w.pool.close()
