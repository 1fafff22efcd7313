"""Poll mode: stream a table (or a query) in key order, resume exactly where it stopped.

:class:`PollSource` is the :class:`~flbsql.plugin.input.BatchSource` of ``mode
poll``. A background thread reads keyset pages (:mod:`flbsql.input.keyset`), encodes
them (:mod:`flbsql.input.encoding`) and queues them, bounded by bytes and rows; the
input callback only takes what is queued, so it returns within milliseconds.

Position protocol (ABI doc section 9):

1. ``next_batch()`` hands over queued pages, at most ``rows_per_collect`` rows
   and ``bytes_per_collect`` bytes; the batch's end becomes *pending*.
2. ``commit()`` (the cleanup callback: Fluent Bit appended the bytes) makes the
   pending end the acknowledged position. It is written to the position file at
   the next callback (or at exit): by then Fluent Bit's engine has taken the
   records off the ring buffer, which the cleanup callback does not promise.
   A kill -9 re-reads at most the one batch after the stored position.
3. ``rewind()`` drops the pending batch and everything queued; reading resumes
   at the acknowledged position.

Late commits: the thread never reads past a settled :class:`Signpost`
(see :mod:`flbsql.input.position`).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import logging
import threading
import time
from typing import Any

from flbsql.conn.pool import Pool
from flbsql.errors import ConfigError, FlbSqlError
from flbsql.input.encoding import RowEncoder
from flbsql.input.keyset import KeysetQuery
from flbsql.input.position import BOUNDARY_MAX, Position, Signpost
from flbsql.input.store import PositionStore
from flbsql.metrics import Metrics
from flbsql.settings import Config
from flbsql.timestamps import parse_zone

__all__ = ["PollSource", "SourceSpec"]


@dataclasses.dataclass
class _Page:
    data: bytes
    rows: int
    last: tuple[Any, ...]
    tail: list[tuple[Any, ...]]  # order tuples of the page's last rows (boundary)


@dataclasses.dataclass(frozen=True)
class SourceSpec:
    """What is read, resolved against the database once."""

    order: tuple[str, ...]
    tracked: bool
    kinds: dict[str, str]
    name: str  # position_name
    source: str  # identity checked against the stored row


def _default_name(cfg: Config, database: str | None) -> str:
    what = cfg.table if cfg.table else "query-" + hashlib.sha1(cfg.query.encode()).hexdigest()[:12]
    return f"{database or 'db'}/{what}"


class PollSource:
    """Keyset polling with a background fetch thread."""

    def __init__(
        self, cfg: Config, pool: Pool, log: logging.Logger, store: PositionStore | None = None
    ) -> None:
        """Validate the options; try to resolve the source (a database outage is fine)."""
        if bool(cfg.table) == bool(cfg.query):
            raise ConfigError("table", "set exactly one of `table` or `query`")
        if cfg.query and "{position}" not in cfg.query:
            raise ConfigError(
                "query",
                "must contain {position} where the keyset "
                "condition goes, e.g. SELECT * FROM t WHERE {position}",
            )
        if cfg.query and not cfg.key:
            raise ConfigError("key", "required with `query` (the columns that identify a row)")
        self.cfg = cfg
        self.pool = pool
        self.log = log
        self.metrics: Metrics | None = None  # set by the plugin
        self.batch_rows = 0
        self.d = pool.dialect
        self.zone = parse_zone(cfg.time_zone)
        self.time_column = (
            cfg.time_column
            if cfg.is_set("time_column") and (cfg.time_column.lower() != "none")
            else None
        )
        self._check_names()
        self.store = (
            store if store is not None else PositionStore(cfg.db or "in_sql.db", cfg["db.sync"])
        )
        self._own_store = store is None
        self.spec: SourceSpec | None = None
        self.query: KeysetQuery | None = None
        self._cv = threading.Condition()
        self._pages: collections.deque[_Page] = collections.deque()
        self._buf_bytes = 0
        self._buf_rows = 0
        self._gen = 0
        self._paused = False
        self._closing = False
        self._failed: BaseException | None = None
        self._committed: Position | None = None
        self._pending: Position | None = None
        self._unsaved: Position | None = None
        self._after: tuple[Any, ...] | None = None
        self._dedup_next = True
        self._signposts: collections.deque[Signpost] = collections.deque(maxlen=64)
        self._bound: Signpost | None = None
        self._encoder: RowEncoder | None = None
        self._row_bytes = 200.0
        self._prepared: set[int] = set()
        self._stats = {"rows": 0, "pages": 0, "since_rows": 0, "since": time.monotonic()}
        self._rate_t = time.monotonic()
        self._rate_rows = 0.0
        try:
            self._setup()
        except ConfigError:
            raise
        except FlbSqlError as exc:
            log.warning("database not reachable at init (%s); retrying in the background", exc)
        self._thread = threading.Thread(target=self._run, name="flbsql-in-fetch", daemon=True)
        self._thread.start()

    # -- BatchSource ------------------------------------------------------------------------

    def next_batch(self) -> bytes:
        """Queued pages up to the per-collect limits; b"" when nothing is due."""
        self._save_acknowledged()
        cfg = self.cfg
        with self._cv:
            if self._pending is not None:  # handed over, never confirmed: read it again
                self._rewind_locked()
            self.batch_rows = 0
            if not self._pages or self._committed is None:
                return b""
            taken: list[_Page] = []
            rows = size = 0
            while self._pages:
                p = self._pages[0]
                if taken and (
                    rows + p.rows > cfg.rows_per_collect
                    or size + len(p.data) > cfg.bytes_per_collect
                ):
                    break
                taken.append(self._pages.popleft())
                rows += p.rows
                size += len(p.data)
            self._buf_rows -= rows
            self._buf_bytes -= size
            tail = [o for p in taken[-2:] for o in p.tail]
            self._pending = self._committed.advance(taken[-1].last, tail, rows)
            self.batch_rows = rows
            self._cv.notify_all()
        return b"".join(p.data for p in taken)

    def commit(self) -> None:
        """Fluent Bit appended the last batch: acknowledge its end."""
        with self._cv:
            if self._pending is None:
                return
            self._committed = self._pending
            self._unsaved = self._pending
            self._pending = None

    def rewind(self) -> None:
        """Forget the batch in flight and the queue; re-read from the acknowledged end."""
        with self._cv:
            self._rewind_locked()

    def pause(self) -> None:
        """Stop issuing queries (Fluent Bit paused the input)."""
        with self._cv:
            self._paused = True

    def resume(self) -> None:
        """Fetch again."""
        with self._cv:
            self._paused = False
            self._cv.notify_all()

    def close(self) -> None:
        """Stop the thread and store the acknowledged position."""
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        self._thread.join(timeout=self.cfg.statement_timeout + 5)
        self._save_acknowledged()
        if self._own_store:
            self.store.close()

    # -- position ---------------------------------------------------------------------------

    def _rewind_locked(self) -> None:
        self._pending = None
        self._gen += 1
        self._pages.clear()
        self._buf_bytes = self._buf_rows = 0
        if self._committed is not None:
            self._after = self._committed.last
        self._dedup_next = True
        self._cv.notify_all()

    def _save_acknowledged(self) -> None:
        with self._cv:
            pos, self._unsaved = self._unsaved, None
        if pos is not None and self.spec is not None:
            self.store.save(self.spec.name, self.spec.source, pos)

    # -- setup ------------------------------------------------------------------------------

    def _named_columns(self, key: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
        """(option, column) for every column the options name."""
        cfg = self.cfg
        return [
            *(("key", k) for k in key),
            *([("tracking_column", cfg.tracking_column)] if cfg.tracking_column else []),
            *([("time_column", self.time_column)] if self.time_column else []),
            *(("columns", c) for c in cfg.columns),
        ]

    def _check_names(self) -> None:
        """Refuse at Init a name the dialect cannot quote, naming its option.

        Otherwise the ValueError came from the first query: an Init traceback that
        named no option, or, with the database down at Init, a fetch thread retrying
        a query that can never be built.
        """
        option = "table"
        try:
            if self.cfg.table:
                self.d.table_sql(self.cfg.table)
            for option, name in self._named_columns(self.cfg.key):  # noqa: B007 - in the error
                self.d.quote(name)
        except ValueError as exc:
            raise ConfigError(option, str(exc)) from None

    def _setup(self) -> None:
        """Resolve key, order and column kinds; load the stored position."""
        cfg, d = self.cfg, self.d
        with self.pool.connection() as conn:
            try:
                kinds: dict[str, str] = {}
                exprs: dict[str, str] = {}
                cols: list[str] = []
                if cfg.table:
                    schema, table = d.split_name(cfg.table)
                    described = d.columns(conn, schema, table)
                    cols = [c.name for c in described]
                    if not cols:
                        raise ConfigError(
                            "table",
                            f"table {cfg.table} does not exist (or is not visible to this user)",
                        )
                    key = list(cfg.key) or d.primary_key(conn, schema, table)
                    if not key:
                        raise ConfigError(
                            "key",
                            f"table {cfg.table} has no primary key: set `key` to "
                            "the columns that identify a row (e.g. key id or key a,b)",
                        )
                    by_lower = {c.lower(): c for c in cols}
                    for option, c in self._named_columns(key):
                        if c.lower() not in by_lower:
                            raise ConfigError(
                                option,
                                f"column {c!r} is not in table "
                                f"{cfg.table} (it has {', '.join(cols)})",
                            )
                    key = [by_lower[k.lower()] for k in key]
                    kinds = d.input_column_kinds(conn, schema, table)
                    # values the server renders faster than Python (PostgreSQL: ISO
                    # timestamps); never order columns, whose typed values are the position,
                    # nor the time column, whose typed value gives the event time
                    raw = {
                        *(k.lower() for k in key),
                        (cfg.tracking_column or "").lower(),
                        (self.time_column or "").lower(),
                    }
                    for col in described:
                        expr = d.input_select_expr(d.quote(col.name), col.type)
                        if expr and col.name.lower() not in raw:
                            exprs[col.name] = expr
                else:
                    key = list(cfg.key)
            finally:
                conn.rollback()
        order = tuple(([cfg.tracking_column] if cfg.tracking_column else []) + key)
        source = (
            f"table:{cfg.table}"
            if cfg.table
            else "query:" + hashlib.sha1(cfg.query.encode()).hexdigest()[:12]
        )
        name = cfg.position_name or _default_name(cfg, self.pool.params.database)
        spec = SourceSpec(order, bool(cfg.tracking_column), kinds, name, source)
        query = KeysetQuery(
            d,
            order,
            table=cfg.table,
            query=cfg.query,
            columns=cfg.columns,
            where=cfg.where,
            exprs=exprs,
            table_columns=cols,
        )
        pos = self.store.load(name, source, order)
        with self._cv:
            self.spec, self.query = spec, query
            if pos is not None:
                self._committed = pos
                self._after = pos.last
                self.log.info(
                    "resuming %s after %s (%d rows so far)", name, _show(pos.last), pos.rows
                )
            elif cfg.start == "beginning":
                self._committed = Position(order, spec.tracked)
            # start=end: the first settled signpost becomes the position

    # -- fetch thread -----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._closing and (self._paused or self._full()):
                    self._cv.wait()
                if self._closing:
                    return
            try:
                if self.spec is None:
                    self._setup()
                idle = self._step()
            except ConfigError as exc:
                self.log.error("input stopped: %s", exc)
                with self._cv:
                    self._failed = exc
                    while not self._closing:
                        self._cv.wait()
                return
            except Exception as exc:
                err = exc if isinstance(exc, FlbSqlError) else self.d.classify(exc)
                self.log.warning(
                    "read failed, retrying in %.1fs: %s", max(self.cfg.poll_interval, 1.0), err
                )
                self._sleep(max(self.cfg.poll_interval, 1.0))
                continue
            self._progress()
            if idle:
                self._sleep(self.cfg.poll_interval)

    def _full(self) -> bool:
        cfg = self.cfg
        return bool(
            self._buf_bytes >= 2 * cfg.bytes_per_collect
            or self._buf_rows >= 2 * cfg.rows_per_collect
        )

    def _sleep(self, seconds: float) -> None:
        with self._cv:
            if not self._closing:
                self._cv.wait(seconds)

    def _step(self) -> bool:
        """Read one page (taking a signpost first when needed). True when idle."""
        assert self.spec is not None and self.query is not None
        with self._cv:
            gen, after, committed = self._gen, self._after, self._committed
            dedup = self._dedup_next
        if self._bound is None or after == self._bound.last:
            moved = self._advance_bound()
            if committed is None and self._bound is not None:
                # start=end: begin at the first settled signpost
                start = Position(self.spec.order, self.spec.tracked, self._bound.last)
                with self._cv:
                    self._committed = start
                    self._after = start.last
                self.store.save(self.spec.name, self.spec.source, start)
                self.log.info("start=end: reading rows after %s", _show(start.last))
                return False
            if not moved or (self._bound is not None and after == self._bound.last):
                return True
        assert self._bound is not None and self._bound.last is not None
        limit = self._page_rows()
        sql, params = self.query.page(after, self._bound.last, limit)
        t0 = time.monotonic()
        with self.pool.connection() as conn:
            self._prepare(conn)
            cur = self.d.input_cursor(conn)
            try:
                cur.execute(sql, params)
                names = [c[0] for c in cur.description]
                rows = cur.fetchall()
            finally:
                cur.close()
                conn.rollback()
        if not rows:
            # the signpost row vanished (deleted) or the filter excludes it
            with self._cv:
                if gen == self._gen:
                    self._after = self._bound.last
            return False
        page = self._encode(names, rows, committed if dedup else None)
        self.log.debug("page of %d rows in %.3fs", len(rows), time.monotonic() - t0)
        with self._cv:
            if gen != self._gen:
                return False  # rewound meanwhile
            self._after = page.last
            self._dedup_next = False
            if page.rows:
                self._pages.append(page)
                self._buf_rows += page.rows
                self._buf_bytes += len(page.data)
            self._stats["rows"] += page.rows
            self._stats["since_rows"] += page.rows
            self._stats["pages"] += 1
        self._pace(len(rows))
        return False

    def _page_rows(self) -> int:
        cfg = self.cfg
        n = min(
            cfg.fetch_size,
            cfg.rows_per_collect,
            max(1, int(cfg.bytes_per_collect / max(self._row_bytes, 1.0))),
        )
        if cfg.max_rows_per_second:
            n = min(n, cfg.max_rows_per_second)
        return max(1, int(n))

    def _pace(self, rows: int) -> None:
        limit = self.cfg.max_rows_per_second
        if not limit:
            return
        self._rate_rows += rows
        ahead = self._rate_rows / limit - (time.monotonic() - self._rate_t)
        if ahead > 0:
            self._sleep(ahead)
        if time.monotonic() - self._rate_t > 10:
            self._rate_t, self._rate_rows = time.monotonic(), 0.0

    def _prepare(self, conn: Any) -> None:
        if id(conn) not in self._prepared:
            self.d.input_prepare(conn)
            self._prepared.add(id(conn))

    def _encode(self, names: list[str], rows: list[Any], dedup: Position | None) -> _Page:
        assert self.spec is not None and self.query is not None
        lower = [n.lower() for n in names]
        idx = [lower.index(c.lower()) for c in self.spec.order]
        if self._encoder is None or self._encoder.names != names:
            self._encoder = RowEncoder(
                names,
                zone=self.zone,
                decimal_float=self.cfg.decimal == "float",
                hidden=self.query.hidden,
                kinds=self.spec.kinds,
                time_column=self.time_column,
            )
        last_row = rows[-1]
        last = tuple(last_row[i] for i in idx)
        if dedup is not None and dedup.boundary:
            rows = [r for r in rows if not dedup.is_boundary_row(tuple(r[i] for i in idx))]
        tail: list[tuple[Any, ...]] = []
        if self.spec.tracked:
            for r in reversed(rows[-BOUNDARY_MAX:]):
                o = tuple(r[i] for i in idx)
                if o[0] != last[0]:
                    break
                tail.append(o)
            tail.reverse()
        data = self._encoder.encode(rows, time.time())
        if rows:
            self._row_bytes = 0.7 * self._row_bytes + 0.3 * (len(data) / len(rows))
        return _Page(data, len(rows), last, tail)

    # -- signposts --------------------------------------------------------------------------

    def _advance_bound(self) -> bool:
        """Sample the newest row; move the bound to the newest settled sample."""
        assert self.spec is not None and self.query is not None
        d = self.d
        horizon_sql = d.input_horizon_sql(self.cfg.table)
        sql, params = self.query.newest()
        if horizon_sql:
            sql = (
                f"SELECT ({horizon_sql}) AS flbsql_h, flbsql_n.* FROM (SELECT 1 AS "
                f"flbsql_one) flbsql_s LEFT JOIN ({sql}) flbsql_n ON 1=1"
            )
        with self.pool.connection() as conn:
            self._prepare(conn)
            cur = conn.cursor()
            try:
                cur.execute(sql, params)
                row = cur.fetchone()
                horizon = None
                if horizon_sql:
                    horizon, row = row[0], row[1:]
                last = None if row is None or all(v is None for v in row) else tuple(row)
                sample = Signpost(last, time.monotonic(), horizon)
                if self._bound is None or sample.last != self._bound.last:
                    self._signposts.append(sample)
                settled = self._settled(conn)
            finally:
                cur.close()
                conn.rollback()
        if settled is None:
            return False
        moved = self._bound is None or settled.last != self._bound.last
        self._bound = settled
        return moved and settled.last is not None

    def _settled(self, conn: Any) -> Signpost | None:
        """The newest sample no running transaction can still commit below; drop older."""
        assert self.spec is not None
        d, spec = self.d, self.spec
        now = time.monotonic()
        best = None
        for s in list(self._signposts):
            if s.horizon is not None:
                ok = not s.horizon or d.input_settled(conn, s.horizon)
            elif d.input_serial_writers and not spec.tracked:
                ok = True
            else:
                ok = now - s.taken >= self.cfg.settle
            if ok:
                best = s
        if best is not None:
            while self._signposts and self._signposts[0] is not best:
                self._signposts.popleft()
            self._signposts.popleft()
        return best if best is not None else self._bound

    # -- progress ---------------------------------------------------------------------------

    def _progress(self) -> None:
        interval = self.cfg.progress_interval
        st = self._stats
        elapsed = time.monotonic() - st["since"]
        if not interval or elapsed < interval:
            return
        if st["since_rows"]:
            behind = self._rows_behind()
            if self.metrics is not None:
                self.metrics.set("lag_rows", behind)
            self.log.info(
                "read %d rows (%d in total), %s rows behind, %.0f rows/s",
                st["since_rows"],
                st["rows"],
                "?" if behind is None else behind,
                st["since_rows"] / elapsed,
            )
        elif self._signposts and time.monotonic() - self._signposts[0].taken > max(
            interval, self.cfg.settle
        ):
            self.log.info(
                "waiting for transactions in flight: rows newer than %s are held back",
                _show(self._bound.last if self._bound else None),
            )
        st["since_rows"] = 0
        st["since"] = time.monotonic()

    def _rows_behind(self) -> int | None:
        if self.query is None or self._bound is None or self._bound.last is None:
            return None
        sql, params = self.query.count(self._after, self._bound.last)
        try:
            with self.pool.connection() as conn:
                cur = conn.cursor()
                try:
                    cur.execute(sql, params)
                    return int(cur.fetchone()[0])
                finally:
                    cur.close()
                    conn.rollback()
        except Exception:
            return None


def _show(last: tuple[Any, ...] | None) -> str:
    if last is None:
        return "the beginning"
    text = ", ".join(repr(v) for v in last)
    return f"({text[:120]})"
