"""The poll reader's background thread: settle a bound, read pages up to it, queue them.

Each step of :class:`Fetcher` either moves the bound (:class:`~flbsql.input.horizon.Horizon`)
or reads one keyset page after the read position and up to the bound
(:class:`~flbsql.input.page.Pager`), then queues it in the bounded
:class:`~flbsql.input.handoff.ChunkQueue`, whose ``put`` blocks while it is full. The
thread issues no query while the queue is full or Fluent Bit paused the input. A
failed step is retried after the one backoff policy (:class:`~flbsql.conn.backoff.Backoff`,
``pool.backoff_initial`` doubling to ``pool.backoff_max``); an empty read waits
``poll_interval``.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from flbsql.conn.backoff import Backoff
from flbsql.errors import ConfigError, FlbSqlError
from flbsql.failures import FailureLog
from flbsql.input.horizon import Horizon
from flbsql.input.page import Pager, ReadAhead
from flbsql.input.position import Position, describe
from flbsql.input.progress import Progress, rows_behind
from flbsql.input.spec import resolve

if TYPE_CHECKING:
    import datetime as dt
    import logging

    from flbsql.conn.pool import Pool
    from flbsql.input.keyset import KeysetQuery
    from flbsql.input.spec import SourceSpec
    from flbsql.input.store import PositionStore
    from flbsql.input.tracker import PositionTracker
    from flbsql.settings import InputConfig

__all__ = ["Fetcher"]


class Fetcher:
    """The fetch thread of a :class:`~flbsql.input.poll.PollSource`."""

    def __init__(
        self,
        cfg: InputConfig,
        pool: Pool,
        log: logging.Logger,
        store: PositionStore,
        tracker: PositionTracker,
        zone: dt.tzinfo,
        time_column: str | None,
    ) -> None:
        """Prepare; :meth:`start` starts the thread."""
        self.cfg = cfg
        self.pool = pool
        self.log = log
        self.store = store
        self.tracker = tracker
        self.time_column = time_column
        self.spec: SourceSpec | None = None
        self.query: KeysetQuery | None = None
        self.failed: BaseException | None = None  # a ConfigError that stopped reading
        self.pager = Pager(cfg, pool.dialect, zone, time_column)
        self.ahead = ReadAhead(pool, self.pager)
        self.horizon = Horizon(pool.dialect, cfg.table, cfg.settle, cfg.horizon_timeout, log)
        self.progress = Progress(cfg, log)
        self.failures = FailureLog(log, "reading")
        self._backoff = Backoff(cfg.pool_backoff_initial, cfg.pool_backoff_max, pool.address)
        self._stop = threading.Event()
        self._paused = False
        self._thread = threading.Thread(target=self._run, name="flbsql-in-fetch", daemon=True)

    # -- control (any thread) -----------------------------------------------------------------

    def start(self) -> None:
        """Start reading in the background."""
        self._thread.start()

    def pause(self) -> None:
        """Issue no more queries."""
        with self.tracker.cv:
            self._paused = True

    def resume(self) -> None:
        """Query again."""
        with self.tracker.cv:
            self._paused = False
            self.tracker.cv.notify_all()

    def stop(self, timeout: float) -> None:
        """Stop the thread; wait up to ``timeout`` seconds for a query in flight."""
        with self.tracker.cv:
            self._stop.set()
            self.tracker.cv.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)
        self.ahead.close()

    # -- setup --------------------------------------------------------------------------------

    def setup(self) -> None:
        """Resolve the source against the database; load the stored position."""
        cfg = self.cfg
        spec, query = resolve(cfg, self.pool, self.time_column)
        pos = self.store.load(spec.name, spec.source, spec.order)
        if pos is not None:
            self.tracker.start_at(pos)
            self.log.info(
                "resuming %s after %s (%d rows so far)", spec.name, describe(pos.last), pos.rows
            )
        elif cfg.start == "beginning":
            self.tracker.start_at(Position(spec.order, spec.tracked))
        # start=end: the first settled signpost becomes the position
        self.spec, self.query = spec, query

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        cv, queue = self.tracker.cv, self.tracker.queue
        while True:
            with cv:
                while not self._stop.is_set() and (self._paused or queue.full()):
                    cv.wait()
            if self._stop.is_set():
                return
            try:
                if self.spec is None:
                    self.setup()
                idle = self._step()
            except ConfigError as exc:
                self.log.error("input stopped: %s", exc)
                self.failed = exc
                return
            except Exception as exc:
                err = exc if isinstance(exc, FlbSqlError) else self.pool.dialect.classify(exc)
                delay = self._backoff.failure()
                self.failures.failed(err, f"reading again in {delay:.1f}s")
                self._stop.wait(delay)
                continue
            self._backoff.success()
            self.failures.succeeded()
            self.progress.report(self._rows_behind, self.horizon)
            if idle:
                self._sleep(self.cfg.poll_interval)

    def _sleep(self, seconds: float) -> None:
        """Wait, woken early by the input (a batch taken, a rewind, a resume) or a stop."""
        with self.tracker.cv:
            if not self._stop.is_set():
                self.tracker.cv.wait(seconds)

    def _step(self) -> bool:
        """Read one page (taking a signpost first when needed). True when idle."""
        assert self.spec is not None and self.query is not None
        spec, horizon = self.spec, self.horizon
        at = self.tracker.read_from()
        if horizon.bound is None or at.after == horizon.bound.last:
            moved = self._advance_bound()
            if at.base is None and horizon.bound is not None:
                # start=end: begin at the first settled signpost
                start = Position(spec.order, spec.tracked, horizon.bound.last)
                self.tracker.start_at(start)
                self.store.save(spec.name, spec.source, start)
                self.log.info("start=end: reading rows after %s", describe(start.last))
                return False
            if not moved or (horizon.bound is not None and at.after == horizon.bound.last):
                return True
        bound = horizon.bound
        assert bound is not None and bound.last is not None and at.base is not None
        t0 = time.monotonic()
        page = self.ahead.take((at.epoch, at.after, bound.last))
        if page is None:
            sql, params = self.query.page(at.after, bound.last, self.pager.page_rows())
            with self.pool.connection() as conn:
                page = self.pager.read(conn, sql, params)
        names, rows = page
        if not rows:
            # the signpost row vanished (deleted) or the filter excludes it
            self.tracker.skip_to(at, bound.last)
            return False
        nxt = self.pager.last_of(names, rows, spec)
        if nxt != bound.last and not self.cfg.max_rows_per_second:  # more rows to read
            sql, params = self.query.page(nxt, bound.last, self.pager.page_rows())
            self.ahead.start((at.epoch, nxt, bound.last), sql, params)
        last, chunk = self.pager.encode(names, rows, spec, self.query.hidden, at.base, at.dedup)
        self.log.debug("page of %d rows in %.3fs", len(rows), time.monotonic() - t0)
        if not self.tracker.page_read(at, last, chunk):
            return False  # rewound meanwhile
        if chunk is not None and not self.tracker.queue.put(chunk, self._stop, at.epoch):
            return False  # rewound (or stopped) while waiting for room
        self.progress.count(chunk.rows if chunk is not None else 0)
        delay = self.pager.pace(len(rows))
        if delay:
            self._sleep(delay)
        return False

    def _advance_bound(self) -> bool:
        assert self.spec is not None and self.query is not None
        with self.pool.connection() as conn:
            self.pager.prepare(conn)
            return self.horizon.advance(conn, self.query, self.spec.tracked)

    def _rows_behind(self) -> int | None:
        bound = self.horizon.bound
        if self.query is None or bound is None or bound.last is None:
            return None
        return rows_behind(self.pool, self.query, self.tracker.read_from().after, bound.last)
