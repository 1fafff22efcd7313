"""The late-commit horizon: the poll reader never reads past a settled signpost.

A row can commit *after* a row with a higher key (a long transaction took its
sequence value first). Reading up to the newest row would skip it for good. So the
reader samples the newest order tuple (a :class:`~flbsql.input.position.Signpost`)
and reads only up to the newest sample that is *settled*: no transaction still
running can commit a row below it.

- PostgreSQL reports the snapshot horizon (``pg_snapshot_xmax``) with the sample; it
  is settled once the oldest running transaction is at or past it.
- A dialect whose writers are serial (``input_serial_writers``, SQLite) settles at
  once, without a tracking column.
- Elsewhere a sample settles ``settle`` seconds after it was taken.
"""

from __future__ import annotations

import collections
import time
from typing import TYPE_CHECKING, Any

from flbsql.input.position import Signpost

if TYPE_CHECKING:
    from flbsql.dialects.base import Dialect
    from flbsql.input.keyset import KeysetQuery

__all__ = ["Horizon"]


class Horizon:
    """Signposts sampled, and the bound: the newest settled one."""

    def __init__(self, dialect: Dialect, table: str | None, settle: float) -> None:
        """``table``: the table read (None with ``query``), for the dialect's horizon SQL."""
        self.d = dialect
        self.table = table
        self.settle = settle
        self.bound: Signpost | None = None
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
            sample = Signpost(last, time.monotonic(), horizon)
            if self.bound is None or sample.last != self.bound.last:
                self._samples.append(sample)
            settled = self._settled(conn, tracked)
        finally:
            cur.close()
            conn.rollback()
        if settled is None:
            return False
        moved = self.bound is None or settled.last != self.bound.last
        self.bound = settled
        return moved and settled.last is not None

    def _settled(self, conn: Any, tracked: bool) -> Signpost | None:
        """The newest sample no running transaction can still commit below; drop older."""
        d = self.d
        now = time.monotonic()
        best = None
        for s in list(self._samples):
            if s.horizon is not None:
                ok = not s.horizon or d.input_settled(conn, s.horizon)
            elif d.input_serial_writers and not tracked:
                ok = True
            else:
                ok = now - s.taken >= self.settle
            if ok:
                best = s
        if best is not None:
            while self._samples and self._samples[0] is not best:
                self._samples.popleft()
            self._samples.popleft()
        return best if best is not None else self.bound
