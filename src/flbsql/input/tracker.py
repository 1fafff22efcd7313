"""Where the poll reader stands: what Fluent Bit acknowledged, what is in flight, what is next.

Two threads share a :class:`PositionTracker`, under its one condition variable: the
fetch thread (:class:`~flbsql.input.fetch.Fetcher`) reads pages from :attr:`ReadFrom.after`
and queues them; the input callback hands queued pages over, commits and rewinds.

Position protocol (docs/fluent-bit-abi.md §9):

1. :meth:`~PositionTracker.hand_over` (``next_batch()``) takes queued pages, at most
   ``rows_per_collect`` rows and ``bytes_per_collect`` bytes; the position after the
   last one (its chunk's marker) becomes *pending*.
2. :meth:`~PositionTracker.commit` (the cleanup callback: Fluent Bit appended the
   bytes) makes the pending position the acknowledged one, and *unsaved*: the
   source writes it to the position file at the next callback (or at exit), when
   Fluent Bit's engine has taken the records off the ring buffer, which the cleanup
   callback does not promise. A kill -9 re-reads at most the one batch after the
   stored position.
3. :meth:`~PositionTracker.rewind` drops the pending batch and everything queued;
   reading resumes at the acknowledged position, dropping its boundary rows again.
"""

from __future__ import annotations

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


class PositionTracker:
    """Acknowledged, pending and unsaved positions; the read position; the queue."""

    def __init__(self, queue: ChunkQueue) -> None:
        """``queue``: the hand-off the fetch thread fills (cleared on rewind)."""
        self.cv = threading.Condition()
        self.queue = queue
        self._committed: Position | None = None  # acknowledged by Fluent Bit
        self._pending: Position | None = None  # handed over, not acknowledged yet
        self._unsaved: Position | None = None  # acknowledged, not stored yet
        self._read: Position | None = None  # after the last page queued
        self._after: tuple[Any, ...] | None = None
        self._dedup_next = True

    # -- the fetch thread ---------------------------------------------------------------------

    def start_at(self, pos: Position) -> None:
        """A stored position, or the first one (``start``): acknowledged, read from."""
        with self.cv:
            self._committed = self._read = pos
            self._after = pos.last

    def read_from(self) -> ReadFrom:
        """Where the next page starts."""
        with self.cv:
            return ReadFrom(
                self.queue.epoch,
                self._after,
                self._read,
                self._committed if self._dedup_next else None,
            )

    def skip_to(self, at: ReadFrom, last: tuple[Any, ...]) -> None:
        """Read on after ``last``: the bound's row vanished (deleted, or filtered out)."""
        with self.cv:
            if at.epoch == self.queue.epoch:
                self._after = last

    def page_read(self, at: ReadFrom, last: tuple[Any, ...], chunk: Chunk | None) -> bool:
        """Move the read position past a page; False when a rewind came first.

        The caller then queues ``chunk`` with ``at.epoch``, so a rewind in between
        drops it.
        """
        with self.cv:
            if at.epoch != self.queue.epoch:
                return False
            self._after = last
            self._dedup_next = False
            if chunk is not None and chunk.marker is not None:
                self._read = chunk.marker.position
            return True

    # -- the input callback -------------------------------------------------------------------

    def hand_over(self, max_rows: int, max_bytes: int) -> list[Chunk]:
        """Queued pages within the limits; the position after them becomes pending."""
        with self.cv:
            if self._pending is not None:  # handed over, never confirmed: read it again
                self._rewind_locked()
            if self._committed is None:
                return []
            chunks = self.queue.take(max_rows, max_bytes)
            if chunks:
                marker = chunks[-1].marker
                assert marker is not None and marker.position is not None
                self._pending = marker.position
                self.cv.notify_all()  # room in the queue
            return chunks

    def commit(self) -> None:
        """Fluent Bit appended the pending batch: it is acknowledged (and to be stored)."""
        with self.cv:
            if self._pending is None:
                return
            self._committed = self._unsaved = self._pending
            self._pending = None

    def rewind(self) -> None:
        """Forget the batch in flight and the queue; re-read from the acknowledged end."""
        with self.cv:
            self._rewind_locked()

    def take_unsaved(self) -> Position | None:
        """The acknowledged position not stored yet (once)."""
        with self.cv:
            pos, self._unsaved = self._unsaved, None
            return pos

    def _rewind_locked(self) -> None:
        self._pending = None
        self.queue.clear()
        self._read = self._committed
        if self._committed is not None:
            self._after = self._committed.last
        self._dedup_next = True
        self.cv.notify_all()
