"""Progress and lag of the poll reader: a log line every ``progress_interval``, and gauges.

With rows read since the last line: how many, the rate, and how many rows are
between the read positions and the bounds (``lag_rows`` in the metrics, summed over
the tables). Without: if a horizon has held rows back for longer than the interval
(and ``settle``), a line that says so, so a long transaction does not look like a
stuck input. :meth:`Progress.fresh_as_of` keeps ``cursor_age_seconds``: the time up
to which every table was read.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from flbsql.input.position import describe

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Sequence

    from flbsql.conn.pool import Pool
    from flbsql.input.horizon import Horizon
    from flbsql.input.keyset import KeysetQuery
    from flbsql.metrics import Metrics
    from flbsql.settings import InputConfig

__all__ = ["Progress", "rows_behind"]


def rows_behind(
    pool: Pool, query: KeysetQuery, after: tuple[Any, ...] | None, upto: tuple[Any, ...]
) -> int | None:
    """Rows after ``after`` up to ``upto`` (None when the count fails)."""
    sql, params = query.count(after, upto)
    try:
        with pool.connection() as conn:
            cur = conn.cursor()
            try:
                cur.execute(sql, params)
                return int(cur.fetchone()[0])
            finally:
                cur.close()
                conn.rollback()
    except Exception:
        return None


class Progress:
    """Rows and pages read; the periodic progress line."""

    def __init__(self, cfg: InputConfig, log: logging.Logger) -> None:
        """Report every ``progress_interval`` (0: never)."""
        self.cfg = cfg
        self.log = log
        self.metrics: Metrics | None = None  # set by the plugin
        self.rows = 0
        self.pages = 0
        self._since_rows = 0
        self._since = time.monotonic()

    def count(self, rows: int) -> None:
        """A page of ``rows`` rows was queued."""
        self.rows += rows
        self._since_rows += rows
        self.pages += 1

    def fresh_as_of(self, wall: float) -> None:
        """Every row committed before ``wall`` (``time.time()``) was read."""
        if self.metrics is not None:
            self.metrics.set_cursor_time(wall)

    def report(self, behind: Callable[[], int | None], horizons: Sequence[Horizon]) -> None:
        """Log a progress line when the interval is over; ``behind`` counts the lag."""
        interval = self.cfg.progress_interval
        elapsed = time.monotonic() - self._since
        if not interval or elapsed < interval:
            return
        if self._since_rows:
            lag = behind()
            if self.metrics is not None:
                self.metrics.set("lag_rows", lag)
            self.log.info(
                "read %d rows (%d in total), %s rows behind, %.0f rows/s",
                self._since_rows,
                self.rows,
                "?" if lag is None else lag,
                self._since_rows / elapsed,
            )
        else:
            for horizon in horizons:
                waiting = horizon.waiting_since()
                if waiting is None or time.monotonic() - waiting <= max(interval, self.cfg.settle):
                    continue
                self.log.info(
                    "waiting for transactions in flight: rows%s newer than %s are held back",
                    f" of {horizon.table}" if horizon.table and len(horizons) > 1 else "",
                    describe(horizon.bound.last if horizon.bound else None),
                )
                break
        self._since_rows = 0
        self._since = time.monotonic()
