"""The late-commit horizon: the poll reader never reads past a settled signpost.

A row can commit *after* a row with a higher key (a long transaction took its
sequence value first). Reading up to the newest row would skip it for good. So the
reader samples the newest order tuple (a :class:`~flbsql.input.position.Signpost`)
and reads only up to the newest sample that is *settled*: no transaction still
running can commit a row below it.

- PostgreSQL names the transactions of the database in progress with the sample (their
  virtual ids); it is settled once all of them have ended. One that stays open (an
  idle-in-transaction session, a long report) is named in a warning after
  :data:`WARN_AFTER` seconds and stops holding the reader back after
  ``horizon_timeout``.
- A dialect whose writers are serial (``input_serial_writers``, SQLite) settles at
  once, without a tracking column.
- Elsewhere a sample settles ``settle`` seconds after it was taken.
"""

from __future__ import annotations

import collections
import logging
import time
from typing import TYPE_CHECKING, Any

from flbsql.input.position import Signpost

if TYPE_CHECKING:
    from flbsql.dialects.base import Dialect
    from flbsql.input.keyset import KeysetQuery

__all__ = ["WARN_AFTER", "Horizon"]

WARN_AFTER = 60.0  # seconds a sample may wait before the transactions holding it are named


class Horizon:
    """Signposts sampled, and the bound: the newest settled one."""

    def __init__(
        self,
        dialect: Dialect,
        table: str | None,
        settle: float,
        timeout: float = 0.0,
        log: logging.Logger | None = None,
    ) -> None:
        """``table``: the table read (None with ``query``), for the dialect's horizon SQL.

        ``timeout``: seconds a sample waits for its transactions at most (0: no bound).
        """
        self.d = dialect
        self.table = table
        self.settle = settle
        self.timeout = timeout
        self.log = log or logging.getLogger(__name__)
        self._warned: set[int] = set()  # id() of the samples already named in a warning
        self._given_up: set[Any] = set()  # transactions past horizon_timeout
        self.bound: Signpost | None = None
        # time.time() up to which the bound's row was the newest the source had: a
        # reader at the bound has read every row committed before it
        self.as_of: float | None = None
        self._samples: collections.deque[Signpost] = collections.deque(maxlen=64)

    def waiting_since(self) -> float | None:
        """``time.monotonic()`` of the oldest sample not settled yet, or None."""
        return self._samples[0].taken if self._samples else None

    def advance(self, conn: Any, query: KeysetQuery, tracked: bool) -> bool:
        """Sample the newest row; move the bound to the newest settled sample.

        True when the bound moved to a row (there is something new to read).
        """
        d = self.d
        horizon_sql = d.input_horizon_sql(self.table)
        sql, params = query.newest()
        if horizon_sql:
            sql = (
                f"SELECT ({horizon_sql}) AS flbsql_h, flbsql_n.* FROM (SELECT 1 AS "
                f"flbsql_one) flbsql_s LEFT JOIN ({sql}) flbsql_n ON 1=1"
            )
        cur = conn.cursor()
        try:
            cur.execute(sql, params)
            row = cur.fetchone()
            horizon = None
            if horizon_sql:
                horizon, row = row[0], row[1:]
            last = None if row is None or all(v is None for v in row) else tuple(row)
            sample = Signpost(last, time.monotonic(), horizon, time.time())
            if self.bound is None or sample.last != self.bound.last:
                self._samples.append(sample)
            else:  # nothing newer than the bound yet
                self.as_of = sample.wall
            settled = self._settled(conn, tracked)
        finally:
            cur.close()
            conn.rollback()
        if settled is None:
            return False
        moved = self.bound is None or settled.last != self.bound.last
        if moved:
            self.as_of = settled.wall
        self.bound = settled
        return moved and settled.last is not None

    def _settled(self, conn: Any, tracked: bool) -> Signpost | None:
        """The newest sample no running transaction can still commit below; drop older."""
        d = self.d
        now = time.monotonic()
        best = None
        for s in list(self._samples):
            if s.horizon is not None:
                waiting = [v for v in s.horizon if v not in self._given_up]
                ok = not waiting or d.input_settled(conn, waiting)
                if not ok:
                    ok = self._held(conn, s, waiting, now - s.taken)
            elif d.input_serial_writers and not tracked:
                ok = True
            else:
                ok = now - s.taken >= self.settle
            if ok:
                best = s
        if best is not None:
            while self._samples and self._samples[0] is not best:
                self._warned.discard(id(self._samples.popleft()))
            self._warned.discard(id(self._samples.popleft()))
        return best if best is not None else self.bound

    def _held(self, conn: Any, sample: Signpost, waiting: list[Any], waited: float) -> bool:
        """A sample held back by open transactions: name them; True past the timeout.

        Past the timeout they are given up on for good: they hold no later sample back.
        """
        over = bool(self.timeout) and waited >= self.timeout
        if waited < WARN_AFTER and not over:
            return False
        if id(sample) in self._warned and not over:
            return False
        self._warned.add(id(sample))
        who = ", ".join(self.d.input_blockers(conn, waiting)) or "transactions"
        if over:
            if len(self._given_up) > 10_000:  # long gone; never grows without bound
                self._given_up.clear()
            self._given_up.update(waiting)
            self.log.warning(
                "%s still open after horizon_timeout %.0fs: reading on past them; a row they "
                "commit below the read position will not be read",
                who,
                self.timeout,
            )
            return True
        self.log.warning(
            "new rows held back %.0fs by %s, open since before they were sampled (they may "
            "still commit rows below them); reading on after horizon_timeout %s",
            waited,
            who,
            f"{self.timeout:.0f}s" if self.timeout else "(none: waiting while they are open)",
        )
        return False
