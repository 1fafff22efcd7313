"""Splitting rows by capabilities, and isolating the rows a database rejects.

One flush is one transaction. Inside it, rows go to the database in batches of
at most ``batch_rows`` (or the dialect's row/parameter limits). When a batch
fails on data, :func:`isolate` finds the bad rows with savepoints: rows before a
position the database names (PostgreSQL's ``COPY ..., line N``) are kept as they
are; otherwise the batch is cut into slices of ``ISOLATE_SLICE`` rows and a
failing slice is halved until single rows remain. Every good row is written,
every bad one is reported with its error; nothing is retried forever.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from flbsql.errors import FlbSqlError, RecordError, TerminalError

if TYPE_CHECKING:
    from flbsql.dialects.base import Capabilities, Dialect

__all__ = ["ISOLATE_SLICE", "chunked", "isolate", "rows_per_batch"]

T = TypeVar("T")
ISOLATE_SLICE = 256

Write = Callable[[Sequence[Any]], None]
Locate = Callable[[BaseException], "int | None"]


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most ``size`` items."""
    if size <= 0 or len(items) <= size:
        if items:
            yield items
        return
    for start in range(0, len(items), size):
        yield items[start : start + size]


def rows_per_batch(caps: Capabilities, ncols: int, batch_rows: int = 0) -> int:
    """Rows per bulk call: the option, else unbounded (0) within the dialect limits."""
    limits = [n for n in (batch_rows, caps.max_rows_per_insert) if n]
    if caps.max_rows_per_insert:  # VALUES lists also bind one parameter per value
        limits.append(max(1, caps.max_params // max(1, ncols)))
    return min(limits) if limits else 0


class Savepoints:
    """Numbered savepoints on one cursor, with the dialect's syntax."""

    def __init__(self, cur: Any, dialect: Dialect) -> None:
        self.cur = cur
        self.dialect = dialect
        self._ids = itertools.count(1)

    def attempt(self, write: Write, rows: Sequence[Any]) -> Exception | None:
        """Run ``write(rows)`` under a savepoint; undo it and return the error on failure."""
        name = f"flbsql_sp{next(self._ids)}"
        self.cur.execute(self.dialect.savepoint_sql(name))
        try:
            write(rows)
        except Exception as exc:
            err = exc if isinstance(exc, FlbSqlError) else self.dialect.classify(exc)
            if not isinstance(err, TerminalError):
                raise err from exc  # transient/disconnect: the whole flush is retried
            err.__cause__ = exc
            self.cur.execute(self.dialect.rollback_to_sql(name))
            return err
        release = self.dialect.release_sql(name)
        if release:
            self.cur.execute(release)
        return None


def isolate(
    sp: Savepoints,
    write: Write,
    rows: Sequence[Any],
    locate: Locate | None = None,
    first_error: Exception | None = None,
) -> list[tuple[int, Exception]]:
    """Write every good row of ``rows``; return ``(index, error)`` of each bad one.

    ``first_error`` is the failure already seen for the whole of ``rows`` (so it
    is not sent again when the database cannot say which row failed). A batch that
    fails with a terminal error that is not about one row (a missing table,
    permission denied) fails the same way for every single row; then every row is
    reported with that error, which the writer turns into a failed flush.
    """
    bad: list[tuple[int, Exception]] = []
    stack: list[tuple[int, int, Exception | None]] = []
    if first_error is not None and locate is None and len(rows) > ISOLATE_SLICE:
        stack.extend(
            (s, min(s + ISOLATE_SLICE, len(rows)), None)
            for s in reversed(range(0, len(rows), ISOLATE_SLICE))
        )
    else:
        stack.append((0, len(rows), first_error))
    while stack:
        lo, hi, known = stack.pop()
        if lo >= hi:
            continue
        err = known if known is not None else sp.attempt(write, rows[lo:hi])
        if err is None:
            continue
        if hi - lo == 1:
            bad.append((lo, err))
            continue
        at = locate(err.__cause__ or err) if locate is not None else None
        if at is not None and 0 <= at < hi - lo:
            # rows before the failing one went through: write them again, then skip it
            stack.append((lo + at + 1, hi, None))
            stack.append((lo + at, lo + at + 1, _single(err)))
            stack.append((lo, lo + at, None))
            continue
        mid = (lo + hi) // 2
        stack.append((mid, hi, None))
        stack.append((lo, mid, None))
    bad.sort(key=lambda pair: pair[0])
    return bad


def _single(err: Exception) -> Exception:
    """The error of a batch whose failing row is known is that row's error."""
    if isinstance(err, RecordError):
        return err
    rec = RecordError(str(err), getattr(err, "sqlstate", None))
    rec.__cause__ = err.__cause__
    return rec
