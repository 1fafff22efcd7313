"""Which batches Fluent Bit's engine has taken into its chunks, so their positions may be stored.

The cleanup callback says only that Fluent Bit *copied* a batch into the input's ring
buffer; the engine thread takes it from there into a chunk (and, with ``storage.type
filesystem``, into a file) on its next ring-buffer pass: every 250 ms, or later when
that thread is busy, for instance flushing an output that runs on it
(docs/fluent-bit-abi.md §9). A position stored before that pass is a batch lost by a
kill -9. So the input stores a batch's position only once the engine has counted its
records: the input's own ``fluentbit_input_records_total``, which the engine thread adds
to as it appends a ring-buffer entry, read through the input's cmetrics context.

Rules (:meth:`Intake.landed`, called at every collect before the next batch):

- The ring is FIFO, one entry per batch: the counter's growth since the oldest batch
  not yet counted covers batches in hand-over order.
- A batch counts as *taken* at the collect after the one that first saw it covered
  (about 1 s later), so the engine has also finished writing it: the count is added
  before filters run and the chunk is written.
- A counter that stays short of a batch by a stable remainder (a processor or a route
  dropped records) takes that batch once the remainder held for one collect.
- ``dropped()`` (at cleanup): Fluent Bit's ring-buffer retry failures grew while the batch
  was appended: Fluent Bit dropped it, and it is read again.
- Without the counters (a host that does not export cmetrics' encoder) a batch counts
  as taken at the next collect, as before this module existed.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable

__all__ = ["Counters", "Intake"]

Counters = tuple[int, int]
"""(records the engine took, ring-buffer batches it dropped), or None when unknown."""


@dataclasses.dataclass
class _Batch:
    rows: int
    counted: int = 0  # records of it the counter covers
    seen: bool = False  # covered at an earlier collect


class Intake:
    """The batches handed over and not yet known to be in Fluent Bit's chunks."""

    def __init__(self, counters: Callable[[], Counters | None], log: logging.Logger) -> None:
        """``counters``: reads the instance's two counters (None: this host has none)."""
        self._read = counters
        self.log = log
        self._batches: collections.deque[_Batch] = collections.deque()
        self._consumed: int | None = None  # counter value up to the oldest batch not taken
        self._failures = 0
        self._short: int | None = None  # the remainder seen at the last collect
        self._warned = False

    def dropped(self) -> bool:
        """At cleanup: True when Fluent Bit dropped the batch it just appended."""
        got = self._read()
        return got is not None and got[1] > self._failures

    def handed(self, rows: int) -> None:
        """At cleanup: a batch of ``rows`` records is in the ring buffer."""
        self._batches.append(_Batch(rows))

    def landed(self, final: bool = False) -> int:
        """How many of the oldest batches are in Fluent Bit's chunks now (then forgotten).

        Called at each collect, before the next batch. ``final``: at exit, when the
        engine has stopped: a batch counted lands at once.
        """
        got = self._read()
        if got is None:
            n = len(self._batches)
            self._batches.clear()
            return n
        self._failures = got[1]
        if self._consumed is None or not self._batches:
            self._consumed = got[0]  # nothing of ours is between the ring and the chunks
            return 0
        self._cover(got[0])
        n = 0
        for b in self._batches:
            if not (b.seen or (final and b.counted >= b.rows)):
                break
            n += 1
        for _ in range(n):
            self._consumed += self._batches.popleft().rows
        for b in self._batches:
            if b.counted >= b.rows:
                b.seen = True
        if not self._batches:
            self._consumed = got[0]
        return n

    def _cover(self, total: int) -> None:
        assert self._consumed is not None
        avail = total - self._consumed
        for b in self._batches:
            b.counted = min(b.rows, max(avail, 0))
            avail -= b.rows
            if b.counted < b.rows:
                break
        head = next((b for b in self._batches if b.counted < b.rows), None)
        if head is None or head.counted == 0:  # a busy engine leaves whole batches uncounted
            self._short = None
            return
        if self._short == head.counted:  # short by the same remainder for one collect
            self._consumed -= head.rows - head.counted
            head.counted = head.rows
            if not self._warned:
                self._warned = True
                self.log.info(
                    "Fluent Bit counted fewer records than handed over (a processor or a "
                    "route dropped some); positions follow its count"
                )
            self._short = None
        else:
            self._short = head.counted
