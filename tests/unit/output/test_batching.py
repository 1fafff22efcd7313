"""Batch sizes, savepoints, and isolating the rows a database refuses (no database)."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from flbsql.dialects import get_dialect
from flbsql.errors import RecordError, TerminalError, TransientError
from flbsql.output.batching import ISOLATE_SLICE, Savepoints, chunked, isolate, rows_per_batch


class Cur:
    """Records the savepoint statements."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def execute(self, stmt: str, params: Any = None) -> None:
        self.statements.append(stmt)


class FakeTable:
    """A writer that refuses given rows; what it accepted stays (minus rolled-back work)."""

    def __init__(self, bad: set[int], error: Exception | None = None) -> None:
        self.bad = bad
        self.error = error  # default: the row's own IntegrityError
        self.written: list[int] = []
        self.sizes: list[int] = []

    def write(self, rows: Any) -> None:
        self.sizes.append(len(rows))
        refused = [r for r in rows if r in self.bad]
        if refused:
            raise self.error or sqlite3.IntegrityError(f"row {refused[0]} refused")
        self.written.extend(rows)


def _isolate(rows: list[int], table: FakeTable, **kw: Any) -> list[tuple[int, Exception]]:
    sp = Savepoints(Cur(), get_dialect("sqlite"))
    return isolate(sp, table.write, rows, **kw)


@pytest.mark.parametrize(
    ("n", "bad"),
    [
        (1, {0}),
        (5, set()),
        (5, {0, 4}),
        (8, {1, 2, 3, 4, 5, 6}),
        (10, set(range(10))),
        (1000, {0, 257, 511, 999}),
    ],
)
def test_every_good_row_is_written_once_and_every_bad_one_reported(n, bad):
    rows = list(range(n))
    table = FakeTable(bad)
    found = _isolate(rows, table)
    assert sorted(table.written) == [r for r in rows if r not in bad]
    assert len(table.written) == len(set(table.written))
    assert [i for i, _ in found] == sorted(bad)
    assert all(isinstance(e, RecordError) and "refused" in str(e) for _, e in found)


def test_the_known_first_error_is_not_sent_again():
    table = FakeTable({3})
    rows = list(range(4))
    first = RecordError("row 3 refused")
    found = _isolate(rows, table, first_error=first)
    assert [i for i, _ in found] == [3] and table.written == [0, 1, 2]
    assert table.sizes == [2, 2, 1, 1]  # halves, then single rows: never the whole batch


def test_large_batches_are_cut_into_slices_before_halving():
    rows = list(range(3 * ISOLATE_SLICE))
    table = FakeTable({ISOLATE_SLICE + 1})
    found = _isolate(rows, table, first_error=RecordError("x"))
    assert [i for i, _ in found] == [ISOLATE_SLICE + 1]
    assert len(table.written) == len(rows) - 1
    assert table.sizes[:3] == [ISOLATE_SLICE, ISOLATE_SLICE, ISOLATE_SLICE // 2]  # then halving
    assert len(table.sizes) < 30


def test_a_named_failing_row_keeps_the_rows_before_it():
    table = FakeTable({6})
    rows = list(range(10))
    found = _isolate(rows, table, locate=lambda exc: 6, first_error=RecordError("x"))
    assert [i for i, _ in found] == [6]
    assert table.written == [0, 1, 2, 3, 4, 5, 7, 8, 9]
    assert table.sizes == [6, 3]  # rows before it, rows after it: no bisection


def test_a_transient_error_is_not_isolated_but_raised():
    table = FakeTable({1}, sqlite3.OperationalError("database is locked"))
    with pytest.raises(TransientError):
        _isolate([0, 1, 2], table)


def test_savepoints_roll_back_a_failed_write_and_release_a_good_one():
    cur = Cur()
    sp = Savepoints(cur, get_dialect("sqlite"))
    assert sp.attempt(lambda rows: None, [1]) is None
    err = sp.attempt(FakeTable({1}).write, [1])
    assert isinstance(err, RecordError) and isinstance(err.__cause__, sqlite3.IntegrityError)
    assert cur.statements == [
        "SAVEPOINT flbsql_sp1",
        "RELEASE SAVEPOINT flbsql_sp1",
        "SAVEPOINT flbsql_sp2",
        "ROLLBACK TO SAVEPOINT flbsql_sp2",
    ]


def test_a_terminal_error_about_the_statement_is_reported_for_every_row():
    table = FakeTable({0, 1}, sqlite3.OperationalError("no such table: t"))
    found = _isolate([0, 1], table)
    assert [type(e) for _, e in found] == [TerminalError, TerminalError]


def test_chunked_and_rows_per_batch():
    assert [list(c) for c in chunked([1, 2, 3, 4, 5], 2)] == [[1, 2], [3, 4], [5]]
    assert [list(c) for c in chunked([1, 2], 0)] == [[1, 2]]
    assert list(chunked([], 3)) == []
    assert rows_per_batch(get_dialect("postgresql").caps, 3) == 0  # COPY: unbounded
    assert rows_per_batch(get_dialect("postgresql").caps, 3, 500) == 500
    assert rows_per_batch(get_dialect("mssql").caps, 3) == 699  # 2,099 parameters
    assert rows_per_batch(get_dialect("mssql").caps, 1) == 1000  # 1,000 rows per VALUES
