"""The bounded hand-off between a source's reading thread and Fluent Bit's collect callback.

Both input modes use it. The reading thread (poll: :class:`~flbsql.input.fetch.Fetcher`,
cdc: :class:`~flbsql.cdc.worker.Worker`) does all database I/O and puts encoded
:class:`Chunk` objects into a :class:`ChunkQueue`; the collect callback only takes what
is queued (the bridge copies the pieces once into Fluent Bit's buffer), so it returns
within milliseconds. The queue is bounded by bytes (and optionally rows), so memory
stays bounded however fast the database is and however large a transaction is:
``put`` blocks while the queue is full.

Each chunk carries a :class:`Marker`: the position that becomes safe once Fluent Bit
took the chunk. A rewind either gives chunks back (:meth:`ChunkQueue.push_front`, cdc)
or drops everything queued (:meth:`ChunkQueue.clear`, poll: the reader reads again
from the acknowledged position). ``clear`` starts a new *epoch*; a ``put`` tagged with
an older epoch is dropped, so a page read before the rewind never reaches the queue.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from flbsql.input.position import Position

__all__ = ["FILL_WAIT", "Chunk", "ChunkQueue", "CollectClock", "CollectLimit", "Marker"]

FILL_WAIT = 0.7  # seconds a callback may wait for a whole batch while the reader catches up


@dataclasses.dataclass(frozen=True)
class Marker:
    """The position reached after a chunk.

    Attributes:
        lsn: cdc stream: the LSN the slot may advance to.
        state: cdc snapshot: the progress to save.
        position: poll: the keyset position after the chunk's last row.
        name: poll: the name of that position (one per table of the input).
        seqs: cdc stream: each table's change number at ``lsn`` (:mod:`flbsql.cdc.sequence`).
    """

    lsn: int | None = None
    state: dict[str, Any] | None = None
    position: Position | None = None
    name: str = ""
    seqs: dict[str, int] | None = None


@dataclasses.dataclass
class Chunk:
    """Encoded events and the position after them (None: in the middle of a transaction)."""

    data: bytes
    rows: int
    marker: Marker | None


class ChunkQueue:
    """A FIFO bounded by bytes (and rows); ``put`` blocks, checking ``stop``, while it is full."""

    def __init__(self, max_bytes: int, max_rows: int | None = None) -> None:
        """``max_bytes``/``max_rows``: queued at most (one chunk alone may exceed them)."""
        self.max_bytes = max_bytes
        self.max_rows = max_rows
        self._items: collections.deque[Chunk] = collections.deque()
        self._bytes = 0
        self._rows = 0
        self._held = 0  # bytes taken and still in memory until Fluent Bit has the batch
        self._epoch = 0
        self._last_put = 0.0  # time.monotonic() of the last put
        self._gap = 0.0  # moving average of the time between two puts of a reader streaming
        self._cv = threading.Condition()

    @property
    def epoch(self) -> int:
        """Counts :meth:`clear` calls; pass it to :meth:`put` to drop stale chunks."""
        with self._cv:
            return self._epoch

    def full(self) -> bool:
        """True when the queued bytes (or rows) reached the bound."""
        with self._cv:
            return self._bytes + self._held >= self.max_bytes or (
                self.max_rows is not None and self._rows >= self.max_rows
            )

    def _no_room(self, chunk: Chunk) -> bool:
        if not self._items and not self._held:
            return False  # an oversize chunk passes alone
        if self._bytes + self._held + len(chunk.data) > self.max_bytes:
            return True
        return self.max_rows is not None and self._rows + chunk.rows > self.max_rows

    def put(self, chunk: Chunk, stop: threading.Event, epoch: int | None = None) -> bool:
        """Queue a chunk; False when stopped first, or when ``epoch`` ended (a clear)."""
        with self._cv:
            while True:
                if epoch is not None and epoch != self._epoch:
                    return False
                if not self._no_room(chunk):
                    break
                if stop.is_set():
                    return False
                self._cv.wait(0.1)
            self._items.append(chunk)
            self._bytes += len(chunk.data)
            self._rows += chunk.rows
            now = time.monotonic()
            if now - self._last_put < 1.0:  # a reader streaming pages, not one after a pause
                gap = now - self._last_put
                self._gap = 0.8 * self._gap + 0.2 * gap if self._gap else gap
            self._last_put = now
            self._cv.notify_all()
            return True

    def fill(
        self,
        max_rows: int,
        max_bytes: int,
        timeout: float,
        quiet: float = 0.05,
        behind: Callable[[], bool] | None = None,
    ) -> None:
        """Wait, at most ``timeout``, while less than a batch is queued and chunks still come.

        Chunks "still come" when one was put in the last ``quiet`` seconds, or twice the
        usual time between two puts when that is longer (large pages): a reader catching
        up. A reader that is idle or waits for new rows ends the wait soon. A reader that
        knows (``behind``) says so instead: the wait lasts while it is behind.
        """
        deadline = time.monotonic() + timeout
        with self._cv:
            quiet = min(max(quiet, 2 * self._gap), timeout)
            poll = quiet if behind is None else 0.02  # a source may stop being behind unannounced
            while self._bytes < max_bytes and self._rows < max_rows:
                now = time.monotonic()
                coming = now - self._last_put <= quiet if behind is None else behind()
                if now >= deadline or not coming:
                    return
                self._cv.wait(min(poll, deadline - now))

    def take(self, max_rows: int, max_bytes: int) -> list[Chunk]:
        """Pop chunks while within the limits (at least one when any is queued).

        Their bytes still count against the bound until :meth:`release`: a batch being
        copied into Fluent Bit is in memory as well, and the reader must not queue a
        whole bound more meanwhile (the peak would depend on when the copy happens).
        """
        out: list[Chunk] = []
        rows = size = 0
        with self._cv:
            while self._items:
                nxt = self._items[0]
                if out and (rows + nxt.rows > max_rows or size + len(nxt.data) > max_bytes):
                    break
                self._items.popleft()
                out.append(nxt)
                rows += nxt.rows
                size += len(nxt.data)
            self._bytes -= size
            self._rows -= rows
            self._held += size
            self._cv.notify_all()
        return out

    def release(self) -> None:
        """The batch taken is out of memory (Fluent Bit has it, or it was given back)."""
        with self._cv:
            if self._held:
                self._held = 0
                self._cv.notify_all()

    def push_front(self, chunks: list[Chunk]) -> None:
        """Give chunks back (a batch that could not be handed over), in their order."""
        with self._cv:
            for chunk in reversed(chunks):
                self._items.appendleft(chunk)
                self._bytes += len(chunk.data)
                self._rows += chunk.rows
                self._held = max(0, self._held - len(chunk.data))

    def clear(self) -> None:
        """Drop everything queued and start a new epoch."""
        with self._cv:
            self._items.clear()
            self._bytes = self._rows = self._held = 0
            self._epoch += 1
            self._cv.notify_all()

    def __len__(self) -> int:
        return len(self._items)


class CollectLimit:
    """How much one collect callback hands over: as much as Fluent Bit takes, within budget.

    Fluent Bit calls a proxy input once a second, fixed (docs/fluent-bit-abi.md §9), so
    an input's throughput is the size of what each callback hands over. The limit
    starts at the budget (``bytes_per_collect``), the most a callback may cost, so an
    input that starts behind (a table to catch up with) runs at full rate from its first
    callbacks. It doubles back, up to the budget, after each batch that Fluent Bit took
    (the cleanup callback came) while more was queued than the batch could carry: the
    source is ahead and the engine keeps up.
    It halves when Fluent Bit pauses the input (its buffers are full: ``mem_buf_limit``
    or storage limits) and when a batch could not be handed over, down to 1 MiB.
    The queue holds one limit and a half (:attr:`ChunkQueue.max_bytes` follows it): the
    batch of the next callback and half a batch read ahead, enough for a reader faster
    than a batch a second to keep the next callback's batch whole. The batch being
    handed over counts until Fluent Bit has it (:meth:`ChunkQueue.release`), so what
    the reader holds never exceeds that, whenever the copy happens: memory stays within
    a few times the budget however large the table is.
    ``rows_per_collect`` (0: none) caps the rows of a batch as well.

    ``fill``: while the reader is catching up, a callback waits up to this many seconds
    for a whole batch (:meth:`ChunkQueue.fill`). The next callback still comes on its 1 s
    tick, so the wait costs no cadence and makes the batches full; it delays only what
    else Fluent Bit does on the input's thread (pause, exit) by as much. ``behind``, when
    given, says whether the reader is catching up (a CDC stream: until its first read,
    then while its last read found more than one read carries), and the wait lasts while
    it is; otherwise chunks that still come say so. A source that is not behind (changes
    trickling in) hands over what it has at once: no latency is added.
    """

    FLOOR = 1 << 20

    def __init__(
        self,
        queue: ChunkQueue,
        budget: int,
        max_rows: int = 0,
        fill: float = 0.0,
        behind: Callable[[], bool] | None = None,
    ) -> None:
        """``budget``: bytes per callback at most; ``max_rows``: rows at most (0: no cap)."""
        self.queue = queue
        self.fill = fill
        self.behind = behind
        self.budget = max(budget, 1)
        self.max_rows = max_rows or (1 << 62)
        self.bytes = self.budget
        self._behind = False  # the last batch left chunks queued
        self._set_queue()

    def _set_queue(self) -> None:
        # the batch being handed over, and half a batch read ahead: when the reader is
        # faster than a batch a second, chunks are left after a take and the limit grows
        self.queue.max_bytes = self.bytes + self.bytes // 2
        if self.max_rows < (1 << 62):
            self.queue.max_rows = self.max_rows

    def take(self, take: Callable[[int, int], list[Chunk]]) -> list[Chunk]:
        """Chunks for one callback, taken through ``take(max_rows, max_bytes)``."""
        self.queue.release()  # the last batch was committed or given back by now
        if self.fill:
            self.queue.fill(self.max_rows, self.bytes, self.fill, behind=self.behind)
        chunks = take(self.max_rows, self.bytes)
        self._behind = bool(chunks) and len(self.queue) > 0
        return chunks

    def taken(self) -> None:
        """Fluent Bit took the batch: grow when the source is ahead of it."""
        self.queue.release()
        if self._behind and self.bytes < self.budget:
            self.bytes = min(self.budget, self.bytes * 2)
            self._set_queue()
        self._behind = False

    def shrink(self) -> None:
        """Fluent Bit paused the input, or a batch did not reach it: hand over less."""
        self.queue.release()
        self.bytes = max(min(self.budget, self.FLOOR), self.bytes // 2)
        self._behind = False
        self._set_queue()


class CollectClock:
    """When Fluent Bit's next collect callback is due, so an idle reader polls just before it.

    The callback comes once a second, fixed (docs/fluent-bit-abi.md §9): a row read
    just after a callback waits for the next one whatever the reader does, but a row
    committed shortly before it is handed over only if the reader polled in between.
    An idle reader therefore waits ``poll`` as usual, except that it wakes ``lead``
    seconds before the next callback is due, once per callback. That takes about
    ``poll`` off the worst commit-to-Fluent Bit latency at no extra load.
    """

    def __init__(self) -> None:
        """No callback seen yet: :meth:`idle_wait` is plain ``poll``."""
        self._last: float | None = None
        self._interval = 1.0

    def collected(self) -> None:
        """A collect callback came (Fluent Bit's thread)."""
        now = time.monotonic()
        if self._last is not None and 0.2 < now - self._last < 5.0:
            self._interval = 0.8 * self._interval + 0.2 * (now - self._last)
        self._last = now

    def idle_wait(self, poll: float, lead: float) -> float:
        """Seconds an idle reader waits: ``poll``, or less to poll ``lead`` before the callback."""
        last = self._last
        if last is None:
            return poll
        until = last + self._interval - lead - time.monotonic()
        return until if 0.0 < until < poll else poll
