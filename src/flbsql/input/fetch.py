"""The poll reader's background thread: settle a bound, read pages up to it, queue them.

The input reads one or more sources (:class:`Lane`: a table of ``table`` or ``tables``,
or the ``query``), one thread for all of them, in turn: each step takes the next lane
and either moves its bound (:class:`~flbsql.input.horizon.Horizon`) or reads one keyset
page after its read position and up to its bound (:class:`~flbsql.input.page.Pager`),
then queues it in the bounded :class:`~flbsql.input.handoff.ChunkQueue`, whose ``put``
blocks while it is full. A page is about one collect's worth, so a large table gets
one page per turn like a small one and cannot starve it. The thread issues no query
while the queue is full or Fluent Bit paused the input. A failed step is retried
after the one backoff policy (:class:`~flbsql.conn.backoff.Backoff`,
``pool.backoff_initial`` doubling to ``pool.backoff_max``): a connection problem holds
every table back, a table's own problem (dropped, no permission) only that table. A
whole round of empty reads waits ``poll_interval``.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from typing import TYPE_CHECKING

from flbsql.conn.backoff import Backoff
from flbsql.errors import ConfigError, FlbSqlError, TerminalError
from flbsql.failures import FailureLog
from flbsql.input.horizon import Horizon
from flbsql.input.page import Pager, ReadAhead
from flbsql.input.position import Position, describe
from flbsql.input.progress import Progress, rows_behind
from flbsql.input.spec import resolve
from flbsql.input.tables import expand_tables, is_wildcard

if TYPE_CHECKING:
    import datetime as dt
    import logging

    from flbsql.conn.pool import Pool
    from flbsql.input.keyset import KeysetQuery
    from flbsql.input.spec import SourceSpec
    from flbsql.input.store import PositionStore
    from flbsql.input.tracker import PositionTracker
    from flbsql.settings import InputConfig

__all__ = ["RELIST_EVERY", "Fetcher", "Lane"]

RELIST_EVERY = 60.0  # seconds between two listings of a `schema.*` wildcard


@dataclasses.dataclass
class Lane:
    """One source of the input and its bound.

    Attributes:
        spec: what is read (its position name is the lane's name).
        query: its statements.
        horizon: its late-commit bound.
        idle: its last step found nothing to read.
        caught_up: ``time.time()`` as of which every row of it was read (None: not yet,
            and ``added``, when the input began to read it, stands in for it).
        backoff, failures, retry_at: a table whose reads fail for a reason of its own
            (dropped, a permission revoked: a terminal error) waits on its own backoff,
            while the others are read on; a connection problem waits for all.
    """

    spec: SourceSpec
    query: KeysetQuery
    horizon: Horizon
    backoff: Backoff
    failures: FailureLog
    idle: bool = False
    caught_up: float | None = None
    retry_at: float = 0.0  # time.monotonic() before which a failing table is left out
    added: float = dataclasses.field(default_factory=time.time)  # read since (time.time())


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
        self.lanes: list[Lane] | None = None  # None until the database answered once
        self.failed: BaseException | None = None  # a ConfigError that stopped reading
        self.pager = Pager(cfg, pool.dialect, zone, time_column)
        self.ahead = ReadAhead(pool, self.pager)
        self.progress = Progress(cfg, log)
        self.failures = FailureLog(log, "reading")
        self._backoff = Backoff(cfg.pool_backoff_initial, cfg.pool_backoff_max, pool.address)
        self._stop = threading.Event()
        self._paused = False
        self._turn = 0
        self._idle_steps = 0  # idle steps in a row: a whole round of them waits
        self._sources: dict[str, str] = {}  # position name -> identity, never shrinks
        self._wildcard = any(is_wildcard(t) for t in cfg.tables)
        self._listed_at = 0.0
        self._refused: set[str | None] = set()  # new tables that cannot be read
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
        """List the tables, resolve each against the database; load their stored positions."""
        lanes = [self._lane(table) for table in self._tables()]
        if len(lanes) > 1:
            self.log.info("reading %d tables in turn", len(lanes))
            # start the turns anywhere: frequent restarts do not favour the first tables
            self._turn = random.randrange(len(lanes))
        self._listed_at = time.monotonic()
        self.lanes = lanes

    def _lane(self, table: str | None) -> Lane:
        """Resolve one source and start it at its stored position (or at ``start``)."""
        cfg, tracker = self.cfg, self.tracker
        spec, query = resolve(cfg, self.pool, self.time_column, table)
        horizon = Horizon(self.pool.dialect, table, cfg.settle, cfg.horizon_timeout, self.log)
        pos = self.store.load(spec.name, spec.source, spec.order)
        if pos is not None:
            tracker.start_at(spec.name, pos)
            self.log.info(
                "resuming %s after %s (%d rows so far)", spec.name, describe(pos.last), pos.rows
            )
        elif cfg.start == "beginning":
            tracker.start_at(spec.name, Position(spec.order, spec.tracked))
        # start=end: the first settled signpost becomes the position
        self._sources[spec.name] = spec.source
        backoff = Backoff(cfg.pool_backoff_initial, cfg.pool_backoff_max)
        return Lane(spec, query, horizon, backoff, FailureLog(self.log, spec.name))

    def _relist(self) -> None:
        """List the wildcards again: read the tables that appeared, drop the ones gone."""
        assert self.lanes is not None
        self._listed_at = time.monotonic()
        try:
            names = self._tables()
        except ConfigError as exc:  # listed nothing now: keep reading what was listed
            self.log.warning("%s; reading the tables listed before", exc)
            return
        keep = [lane for lane in self.lanes if lane.spec.table in names]
        for lane in self.lanes:
            if lane not in keep:
                self.log.info("table %s is no longer listed: not read any more", lane.spec.table)
        known = {lane.spec.table for lane in self.lanes}
        for table in names:
            if table in known or table in self._refused:
                continue
            try:
                keep.append(self._lane(table))
            except ConfigError as exc:  # one new table that cannot be read stops nothing
                self._refused.add(table)
                self.log.warning("new table %s is not read: %s", table, exc)
                continue
            self.log.info("new table %s: reading it", table)
        self.lanes = keep

    def _tables(self) -> list[str | None]:
        """The tables read (wildcards listed now); [None] for the query."""
        cfg = self.cfg
        if not cfg.tables:
            return [cfg.table or None]
        with self.pool.connection() as conn:
            try:
                return list(expand_tables(self.pool.dialect, conn, cfg.tables))
            finally:
                conn.rollback()

    @property
    def sources(self) -> dict[str, str]:
        """Position name -> the identity stored with it, for every source read so far."""
        return self._sources

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        cv, queue = self.tracker.cv, self.tracker.queue
        while True:
            with cv:
                while not self._stop.is_set() and (self._paused or queue.full()):
                    cv.wait()
            if self._stop.is_set():
                return
            lane = None
            try:
                if self.lanes is None:
                    self.setup()
                if self._wildcard and time.monotonic() - self._listed_at >= RELIST_EVERY:
                    self._relist()
                lane = self._next_lane()
                if lane is None:  # every table waits after its own failure
                    self._stop.wait(0.1)
                    continue
                lane.idle = self._step(lane)
            except ConfigError as exc:
                self.log.error("input stopped: %s", exc)
                self.failed = exc
                return
            except Exception as exc:
                err = exc if isinstance(exc, FlbSqlError) else self.pool.dialect.classify(exc)
                many = len(self.lanes or ()) > 1
                if lane is not None and isinstance(err, TerminalError) and many:
                    delay = lane.backoff.failure()
                    lane.retry_at = time.monotonic() + delay
                    lane.failures.failed(err, f"reading the other tables; this one in {delay:.1f}s")
                    continue
                delay = self._backoff.failure()
                self.failures.failed(err, f"reading again in {delay:.1f}s")
                self._stop.wait(delay)
                continue
            self._backoff.success()
            self.failures.succeeded()
            if lane.retry_at:
                lane.retry_at = 0.0
                lane.backoff.success()
                lane.failures.succeeded()
            lanes = self.lanes
            assert lanes is not None
            self.progress.report(self._rows_behind, [la.horizon for la in lanes])
            self.progress.fresh_as_of(min(la.caught_up or la.added for la in lanes))
            self._idle_steps = self._idle_steps + 1 if lane.idle else 0
            if self._idle_steps >= len(lanes):
                self._idle_steps = 0
                self._sleep(self.cfg.poll_interval)

    def _next_lane(self) -> Lane | None:
        """The next table in turn that is not waiting after a failure of its own."""
        lanes = self.lanes
        assert lanes is not None
        now = time.monotonic()
        for _ in range(len(lanes)):
            lane = lanes[self._turn % len(lanes)]
            self._turn += 1
            if lane.retry_at <= now:
                return lane
        return None

    def _sleep(self, seconds: float) -> None:
        """Wait, woken early by the input (a batch taken, a rewind, a resume) or a stop."""
        with self.tracker.cv:
            if not self._stop.is_set():
                self.tracker.cv.wait(seconds)

    def _step(self, lane: Lane) -> bool:
        """Read one page of ``lane`` (taking a signpost first when needed). True when idle."""
        spec, horizon, name, tracker = lane.spec, lane.horizon, lane.spec.name, self.tracker
        at = tracker.read_from(name)
        if horizon.bound is None or at.after == horizon.bound.last:
            moved = self._advance_bound(lane)
            if at.base is None and horizon.bound is not None:
                # start=end: begin at the first settled signpost
                start = Position(spec.order, spec.tracked, horizon.bound.last)
                tracker.start_at(name, start)
                self.store.save(name, spec.source, start)
                self.log.info("start=end: reading %s after %s", name, describe(start.last))
                return False
            if horizon.bound is not None and at.after == horizon.bound.last:
                lane.caught_up = horizon.as_of
            if not moved or (horizon.bound is not None and at.after == horizon.bound.last):
                return True
        bound = horizon.bound
        assert bound is not None and bound.last is not None and at.base is not None
        t0 = time.monotonic()
        page = self.ahead.take((name, at.epoch, at.after, bound.last))
        if page is None:
            sql, params = lane.query.page(at.after, bound.last, self.pager.page_rows())
            with self.pool.connection() as conn:
                page = self.pager.read(conn, sql, params)
        names, rows = page
        if not rows:
            # the signpost row vanished (deleted) or the filter excludes it
            tracker.skip_to(name, at, bound.last)
            return False
        nxt = self.pager.last_of(names, rows, spec)
        # one table: its next page is read while this one is encoded (many tables take
        # turns a page at a time, so the next page read is another table's)
        if nxt != bound.last and len(self.lanes or ()) == 1 and not self.cfg.max_rows_per_second:
            sql, params = lane.query.page(nxt, bound.last, self.pager.page_rows())
            self.ahead.start((name, at.epoch, nxt, bound.last), sql, params)
        last, chunk = self.pager.encode(names, rows, spec, lane.query.hidden, at.base, at.dedup)
        self.log.debug("%s: page of %d rows in %.3fs", name, len(rows), time.monotonic() - t0)
        if not tracker.page_read(name, at, last, chunk):
            return False  # rewound meanwhile
        if chunk is not None and not tracker.queue.put(chunk, self._stop, at.epoch):
            return False  # rewound (or stopped) while waiting for room
        self.progress.count(chunk.rows if chunk is not None else 0)
        delay = self.pager.pace(len(rows))
        if delay:
            self._sleep(delay)
        return False

    def _advance_bound(self, lane: Lane) -> bool:
        with self.pool.connection() as conn:
            self.pager.prepare(conn)
            return lane.horizon.advance(conn, lane.query, lane.spec.tracked)

    def _rows_behind(self) -> int | None:
        total = 0
        for lane in self.lanes or ():
            bound = lane.horizon.bound
            if bound is None or bound.last is None:
                continue
            after = self.tracker.read_from(lane.spec.name).after
            behind = rows_behind(self.pool, lane.query, after, bound.last)
            if behind is None:
                return None
            total += behind
        return total
