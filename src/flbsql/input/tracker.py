"""Where the poll reader stands: what Fluent Bit acknowledged, what is in flight, what is next.

Two threads share a :class:`PositionTracker`, under its one condition variable: the
fetch thread (:class:`~flbsql.input.fetch.Fetcher`) reads pages from :attr:`ReadFrom.after`
and queues them; the input callback hands queued pages over, commits and rewinds.
Each source of the input (one per table of ``tables``; one for ``table`` or ``query``)
has its own positions, under its position name (*lane*); its pages carry that name in
their marker, and the queue is shared, so one batch may hold pages of several tables.

Position protocol (docs/fluent-bit-abi.md §9):

1. :meth:`~PositionTracker.hand_over` (``next_batch()``) takes queued pages, at most
   ``rows_per_collect`` rows and ``bytes_per_collect`` bytes; for each table in them,
   the position after its last page (its chunk's marker) becomes *pending*.
2. :meth:`~PositionTracker.commit` (the cleanup callback: Fluent Bit copied the
   bytes into its ring buffer) makes the pending positions the acknowledged ones, read
   on from; :meth:`~PositionTracker.landed` later makes them *unsaved*, once Fluent
   Bit's engine has taken the batch into its chunks (:mod:`flbsql.input.intake`), and
   the source writes them to the position file. A kill -9 re-reads the batches after
   the stored positions.
3. :meth:`~PositionTracker.rewind` drops the pending batch and everything queued;
   every table resumes at its acknowledged position, dropping its boundary rows again.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flbsql.input.handoff import Chunk, ChunkQueue
    from flbsql.input.position import Position

__all__ = ["PositionTracker", "ReadFrom"]


@dataclasses.dataclass(frozen=True)
class ReadFrom:
    """Where the next page starts, as the fetch thread saw it (under the lock).

    Attributes:
        epoch: the queue's epoch; a rewind ends it, and the page is dropped.
        after: the order tuple the page starts after (None: the beginning).
        base: the position before the page (None: no start yet, ``start end``).
        dedup: the first page after a (re)start drops this position's boundary rows.
    """

    epoch: int
    after: tuple[Any, ...] | None
    base: Position | None
    dedup: Position | None


@dataclasses.dataclass
class _Lane:
    """The positions of one source."""

    committed: Position | None = None  # acknowledged by Fluent Bit
    read: Position | None = None  # after the last page queued
    after: tuple[Any, ...] | None = None
    dedup_next: bool = True


class PositionTracker:
    """Acknowledged, pending and unsaved positions per lane; the read positions; the queue."""

    def __init__(self, queue: ChunkQueue) -> None:
        """``queue``: the hand-off the fetch thread fills (cleared on rewind)."""
        self.cv = threading.Condition()
        self.queue = queue
        self._lanes: dict[str, _Lane] = {}
        self._pending: dict[str, Position] = {}  # handed over, not acknowledged yet
        self._ring: collections.deque[dict[str, Position]] = collections.deque()  # by batch
        self._unsaved: dict[str, Position] = {}  # in Fluent Bit's chunks, not stored yet

    # -- the fetch thread ---------------------------------------------------------------------

    def start_at(self, lane: str, pos: Position) -> None:
        """A stored position, or the first one (``start``): acknowledged, read from."""
        with self.cv:
            state = self._lanes.setdefault(lane, _Lane())
            state.committed = state.read = pos
            state.after = pos.last

    def read_from(self, lane: str) -> ReadFrom:
        """Where the next page of ``lane`` starts."""
        with self.cv:
            state = self._lanes.setdefault(lane, _Lane())
            return ReadFrom(
                self.queue.epoch,
                state.after,
                state.read,
                state.committed if state.dedup_next else None,
            )

    def skip_to(self, lane: str, at: ReadFrom, last: tuple[Any, ...]) -> None:
        """Read on after ``last``: the bound's row vanished (deleted, or filtered out)."""
        with self.cv:
            if at.epoch == self.queue.epoch:
                self._lanes[lane].after = last

    def page_read(
        self, lane: str, at: ReadFrom, last: tuple[Any, ...], chunk: Chunk | None
    ) -> bool:
        """Move the read position past a page; False when a rewind came first.

        The caller then queues ``chunk`` with ``at.epoch``, so a rewind in between
        drops it.
        """
        with self.cv:
            if at.epoch != self.queue.epoch:
                return False
            state = self._lanes[lane]
            state.after = last
            state.dedup_next = False
            if chunk is not None and chunk.marker is not None:
                state.read = chunk.marker.position
            return True

    # -- the input callback -------------------------------------------------------------------

    def hand_over(self, max_rows: int, max_bytes: int) -> list[Chunk]:
        """Queued pages within the limits; the positions after them become pending."""
        with self.cv:
            if self._pending:  # handed over, never confirmed: read it again
                self._rewind_locked()
            chunks = self.queue.take(max_rows, max_bytes)
            for chunk in chunks:
                marker = chunk.marker
                assert marker is not None and marker.position is not None
                self._pending[marker.name] = marker.position
            if chunks:
                self.cv.notify_all()  # room in the queue
            return chunks

    def commit(self) -> None:
        """Fluent Bit copied the pending batch into its ring buffer: it is acknowledged."""
        with self.cv:
            for lane, pos in self._pending.items():
                self._lanes[lane].committed = pos
            self._ring.append(self._pending)
            self._pending = {}

    def landed(self, batches: int) -> None:
        """The oldest ``batches`` acknowledged batches are in Fluent Bit's chunks: to store."""
        with self.cv:
            for _ in range(min(batches, len(self._ring))):
                self._unsaved.update(self._ring.popleft())

    def rewind(self) -> None:
        """Forget the batch in flight and the queue; re-read from the acknowledged ends."""
        with self.cv:
            self._rewind_locked()

    def take_unsaved(self) -> dict[str, Position]:
        """The acknowledged positions not stored yet, by lane (once)."""
        with self.cv:
            out, self._unsaved = self._unsaved, {}
            return out

    def _rewind_locked(self) -> None:
        self._pending.clear()
        self.queue.clear()
        for state in self._lanes.values():
            state.read = state.committed
            if state.committed is not None:
                state.after = state.committed.last
            state.dedup_next = True
        self.cv.notify_all()
