"""The input's batch source for ``mode cdc``: a bounded hand-off between two threads.

A background :class:`~flbsql.cdc.worker.Worker` does all database I/O and hands
encoded chunks to :meth:`CdcSource.put`, which queues them in a bounded queue (so
memory stays bounded however large a transaction is); Fluent Bit's collect callback
only takes queued chunks and returns within milliseconds. Each chunk carries a
:class:`Marker`: the position that becomes safe once Fluent Bit took the chunk.
:meth:`CdcSource.landed` passes the markers of the batches Fluent Bit's engine has
taken into its chunks (:mod:`flbsql.input.intake`) back to the worker
(:meth:`~flbsql.cdc.worker.Worker.took`), which advances the slot / saves the
snapshot progress after :data:`CONFIRM_DELAY`. A chunk in the middle of a transaction
carries no position: a crash re-delivers the whole transaction (at-least-once).
"""

from __future__ import annotations

import collections
import threading
import time
from typing import TYPE_CHECKING

from flbsql.cdc.worker import CONFIRM_DELAY, Worker
from flbsql.input.handoff import FILL_WAIT, Chunk, ChunkQueue, CollectClock, CollectLimit, Marker

if TYPE_CHECKING:
    import logging

    from flbsql.metrics import Metrics
    from flbsql.settings import InputConfig

__all__ = ["CONFIRM_DELAY", "CdcSource"]


class CdcSource:
    """BatchSource for ``mode cdc``: next_batch/commit/rewind/pause/resume/close."""

    def __init__(self, cfg: InputConfig, log: logging.Logger) -> None:
        """Validate options, try the server once (clear errors at Init), start the worker."""
        self.cfg = cfg
        self.log = log
        self.batch_rows = 0
        self.queue = ChunkQueue(cfg.bytes_per_collect)
        self.clock = CollectClock()
        self.worker = Worker(cfg, log, self.put, self.clock)
        self._limit = CollectLimit(  # a backlog fills each batch; a trickle is not held back
            self.queue,
            cfg.bytes_per_collect,
            cfg.rows_per_collect,
            fill=FILL_WAIT,
            behind=self.worker.behind,
        )
        self.worker.try_setup()  # TerminalError fails Init; an unreachable server does not
        self._inflight: list[Chunk] | None = None
        # committed batches, by batch, until they landed: their positions only (Fluent Bit
        # holds their data: keeping it too would cost a batch of memory per batch in flight)
        self._ring: collections.deque[list[Marker]] = collections.deque()
        self._paused = False
        self._fatal_logged = 0.0
        self.worker.start()

    def next_batch(self) -> list[bytes]:
        """Queued chunks within the collect limit (no DB I/O); [] when nothing is due."""
        self.batch_rows = 0
        self.clock.collected()
        if self._inflight is not None:  # neither commit nor rewind: not delivered
            self.rewind()
        fatal = self.worker.fatal
        if fatal is not None:
            now = time.monotonic()
            if now - self._fatal_logged > 60:
                self._fatal_logged = now
                self.log.error("CDC stopped: %s", fatal)
            return []
        if self._paused:
            return []
        while True:
            chunks = self._limit.take(self.queue.take)
            if not chunks:
                return []
            data = [c.data for c in chunks if c.data]
            if data:
                self._inflight = chunks
                self.batch_rows = sum(c.rows for c in chunks)
                return data
            if self._ring:  # only positions (idle stream): they follow the batches before
                self._ring[-1].extend(markers(chunks))
            else:
                self._taken(markers(chunks))

    def put(
        self,
        data: bytes,
        rows: int,
        marker: Marker | None,
        stop: threading.Event,
    ) -> bool:
        """The worker's hand-off: queue a chunk (waits for room); False when stopped."""
        return self.queue.put(Chunk(data, rows, marker), stop)

    def _taken(self, positions: list[Marker]) -> None:
        for marker in positions:
            self.worker.took(marker)

    def commit(self) -> None:
        """Fluent Bit copied the last batch into its ring buffer."""
        if self._inflight is not None:
            self._ring.append(markers(self._inflight))
            self._inflight = None
            self._limit.taken()

    def landed(self, batches: int) -> None:
        """The oldest ``batches`` committed batches are in Fluent Bit's chunks: confirm them."""
        if batches:
            for _ in range(min(batches, len(self._ring))):
                self._taken(self._ring.popleft())
            self.worker.wake()

    def rewind(self) -> None:
        """The last batch was not handed over: it is handed again next time."""
        if self._inflight is not None:
            self.queue.push_front(self._inflight)
            self._inflight = None
            self._limit.shrink()

    def pause(self) -> None:
        """Hand nothing over (the worker fills the bounded queue, then waits)."""
        self._paused = True
        self._limit.shrink()

    def resume(self) -> None:
        """Hand over again."""
        self._paused = False

    @property
    def metrics(self) -> Metrics | None:
        """Where the worker reports the slot's retention and the lag (set by the plugin)."""
        return self.worker.metrics

    @metrics.setter
    def metrics(self, metrics: Metrics | None) -> None:
        self.worker.metrics = metrics

    def connection_stats(self) -> dict[str, int]:
        """The CDC connections' counters (connects, failures, timeouts, rotations)."""
        return self.worker.pg.stats()

    def close(self) -> None:
        """Stop the worker; positions not yet confirmed are delivered again next time."""
        self.worker.stop()


def markers(chunks: list[Chunk]) -> list[Marker]:
    """The positions of ``chunks`` (what a batch handed over still needs to be confirmed)."""
    return [c.marker for c in chunks if c.marker is not None]
