"""One page of the poll reader: its size, its round trip, its events, its pace.

A page is one keyset query (:meth:`~flbsql.input.keyset.KeysetQuery.page`). Its size
follows the per-collect limits and the average encoded row seen so far, so a page is
about one collect's worth. :meth:`Pager.encode` turns the rows into Fluent Bit
events (:class:`~flbsql.input.encoding.RowEncoder`) and a
:class:`~flbsql.input.handoff.Chunk` whose marker is the position after its last row.
"""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from flbsql.input.encoding import RowEncoder
from flbsql.input.handoff import Chunk, Marker
from flbsql.input.position import BOUNDARY_MAX
from flbsql.timestamps import local_time_rule

if TYPE_CHECKING:
    from collections.abc import Sequence

    from flbsql.conn.pool import Pool
    from flbsql.dialects.base import Dialect
    from flbsql.input.position import Position
    from flbsql.input.spec import SourceSpec
    from flbsql.settings import InputConfig

__all__ = ["Pager", "ReadAhead"]


class Pager:
    """Page size, the page's round trip and its encoding; rows-per-second pacing."""

    def __init__(
        self, cfg: InputConfig, dialect: Dialect, zone: dt.tzinfo, time_column: str | None
    ) -> None:
        """``zone``: the ``time_zone`` of naive timestamps; ``time_column``: the event time."""
        self.cfg = cfg
        self.d = dialect
        self.zone = zone
        self.time_column = time_column
        self.local_rule = local_time_rule(cfg.time_zone_ambiguous, dialect.caps.local_time_rule)
        self._encoders: dict[str, RowEncoder] = {}  # by source (position name)
        self._row_bytes = 200.0  # moving average of an encoded row
        self._prepared: set[int] = set()
        self._rate_t = time.monotonic()
        self._rate_rows = 0.0

    def page_rows(self) -> int:
        """Rows to ask for: about one collect's worth, and no more than the pace allows."""
        cfg = self.cfg
        n = min(
            cfg.fetch_size,
            cfg.rows_per_collect or cfg.fetch_size,
            max(1, int(cfg.bytes_per_collect / max(self._row_bytes, 1.0))),
        )
        if cfg.max_rows_per_second:
            n = min(n, cfg.max_rows_per_second)
        return max(1, int(n))

    def prepare(self, conn: Any) -> None:
        """The dialect's per-connection setup of a reading connection, once per connection."""
        if id(conn) not in self._prepared:
            self.d.input_prepare(conn)
            self._prepared.add(id(conn))

    def read(self, conn: Any, sql: str, params: Any) -> tuple[list[str], list[Any]]:
        """Run one page query: the result's column names and rows."""
        self.prepare(conn)
        cur = self.d.input_cursor(conn)
        try:
            cur.execute(sql, params)
            names = [c[0] for c in cur.description]
            rows = cur.fetchall()
        finally:
            cur.close()
            conn.rollback()
        return names, list(rows)

    @staticmethod
    def last_of(names: list[str], rows: Sequence[Any], spec: SourceSpec) -> tuple[Any, ...]:
        """The order tuple of the page's last row (where the next page starts)."""
        lower = [n.lower() for n in names]
        return tuple(rows[-1][lower.index(c.lower())] for c in spec.order)

    def encode(
        self,
        names: list[str],
        rows: Sequence[Any],
        spec: SourceSpec,
        hidden: Sequence[str],
        base: Position,
        dedup: Position | None,
    ) -> tuple[tuple[Any, ...], Chunk | None]:
        """The page's last order tuple, and its chunk (None when every row was a repeat).

        ``base`` is the position before the page; the chunk's marker is the position
        after it. ``dedup``: drop the rows at this position's boundary (they were
        delivered before a restart or a rewind).
        """
        lower = [n.lower() for n in names]
        idx = [lower.index(c.lower()) for c in spec.order]
        encoder = self._encoders.get(spec.name)
        if encoder is None or encoder.names != names:
            encoder = self._encoders[spec.name] = RowEncoder(
                names,
                zone=self.zone,
                decimal_float=self.cfg.decimal == "float",
                hidden=hidden,
                kinds=spec.kinds,
                time_column=self.time_column,
                local_rule=local_time_rule(
                    self.cfg.time_zone_ambiguous, self.d.caps.local_time_rule
                ),
                extra=spec.extra,
            )
        last = tuple(rows[-1][i] for i in idx)
        if dedup is not None and dedup.boundary:
            rows = [r for r in rows if not dedup.is_boundary_row(tuple(r[i] for i in idx))]
        tail: list[tuple[Any, ...]] = []
        if spec.tracked:
            for r in reversed(rows[-BOUNDARY_MAX:]):
                o = tuple(r[i] for i in idx)
                if o[0] != last[0]:
                    break
                tail.append(o)
            tail.reverse()
        if not rows:
            return last, None
        data = encoder.encode(rows, time.time())
        self._row_bytes = 0.7 * self._row_bytes + 0.3 * (len(data) / len(rows))
        after = base.advance(last, tail, len(rows))
        return last, Chunk(data, len(rows), Marker(position=after, name=spec.name))

    def pace(self, rows: int) -> float:
        """Count ``rows`` read; seconds to wait to stay under ``max_rows_per_second``."""
        limit = self.cfg.max_rows_per_second
        if not limit:
            return 0.0
        self._rate_rows += rows
        now = time.monotonic()
        ahead = max(0.0, float(self._rate_rows / limit - (now - self._rate_t)))
        if now + ahead - self._rate_t > 10:  # start a new window after the wait
            self._rate_t, self._rate_rows = now + ahead, 0.0
        return ahead


class ReadAhead:
    """Reads the next page on its own thread (and pooled connection) meanwhile.

    While the fetch thread encodes a page and waits for room in the queue, the
    database already runs the query of the page after it: the server's time per
    page is hidden behind the encoding instead of added to it. A page read ahead is
    used only when the fetch thread asks for exactly that page (same epoch, same
    start, same bound); anything else (a rewind, a new bound, an error, which the
    fetch thread then meets itself) drops it.
    """

    def __init__(self, pool: Pool, pager: Pager) -> None:
        """Nothing is read before :meth:`start`."""
        self.pool = pool
        self.pager = pager
        self._exec = ThreadPoolExecutor(1, thread_name_prefix="flbsql-in-readahead")
        self._key: tuple[Any, ...] | None = None
        self._future: Future[tuple[list[str], list[Any]]] | None = None

    def start(self, key: tuple[Any, ...], sql: str, params: Any) -> None:
        """Read the page ``key`` (epoch, after, upto) with this query, in the background."""
        self.take(None)  # one page ahead at most
        self._key = key
        self._future = self._exec.submit(self._read, sql, params)

    def _read(self, sql: str, params: Any) -> tuple[list[str], list[Any]]:
        with self.pool.connection() as conn:
            return self.pager.read(conn, sql, params)

    def take(self, key: tuple[Any, ...] | None) -> tuple[list[str], list[Any]] | None:
        """The page read ahead when it is ``key``'s, else None (it is dropped)."""
        future, ahead = self._future, self._key
        self._future = self._key = None
        if future is None:
            return None
        try:
            page = future.result()
        except Exception:  # the fetch thread reads it again and meets the error itself
            return None
        return page if key is not None and ahead == key else None

    def close(self) -> None:
        """Drop what is read ahead; wait for a query in flight."""
        self.take(None)
        self._exec.shutdown(wait=True, cancel_futures=True)
