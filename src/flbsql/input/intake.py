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
- At cleanup (:meth:`Intake.appended`): when Fluent Bit's ring-buffer retry failures grew
  during the append, Fluent Bit dropped the batch, and it is read again; when its
  ring-buffer writes did not grow, the batch made no entry (processors dropped every
  record) and there is nothing to wait for.
- While a batch waits uncounted in the ring buffer at a collect, the input hands over
  nothing more (:meth:`Intake.waiting`): the engine is behind. The collect first waits
  up to :data:`ENGINE_WAIT` for the engine to count it (:meth:`Intake.wait`), so a
  batch handed over late in one second does not cost the next.
- Without the counters (a host that does not export cmetrics' encoder), or when the
  records counter has not moved at all :data:`NEVER_COUNTED` seconds after a batch was
  handed over (a Fluent Bit that counts elsewhere: one warning), a batch counts as
  taken at the next collect.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable

__all__ = ["ENGINE_WAIT", "NEVER_COUNTED", "Counters", "Intake", "no_counters"]

NEVER_COUNTED = 60.0  # seconds a batch may wait before a counter that never moved is ignored
ENGINE_WAIT = 0.5  # seconds a collect waits for the engine to count the last batch

Counters = tuple[int, int, int]
"""The input's ``fluentbit_input_records_total`` (what the engine took),
``..._ring_buffer_retry_failures_total`` (batches Fluent Bit dropped from a full ring
buffer) and ``..._ring_buffer_writes_total`` (entries written into the ring buffer)."""


@dataclasses.dataclass
class _Batch:
    expect: int  # records the engine will count for it (0: it made no ring-buffer entry)
    counted: int = 0  # records of it the counter covers
    seen: bool = False  # covered at an earlier collect
    since: float = dataclasses.field(default_factory=time.monotonic)


class Intake:
    """The batches handed over and not yet known to be in Fluent Bit's chunks."""

    def __init__(self, counters: Callable[[], Counters | None], log: logging.Logger) -> None:
        """``counters``: reads the instance's counters (None: this host has none)."""
        self._read = counters
        self.log = log
        self._batches: collections.deque[_Batch] = collections.deque()
        self._consumed: int | None = None  # counter value up to the oldest batch not taken
        self._at_collect: Counters | None = None
        self._short: int | None = None  # the remainder seen at the last collect
        self._warned = False
        self._first: int | None = None  # the counter at the first collect
        self._moved = False  # the counter grew since the first collect

    def appended(self, rows: int) -> bool:
        """At cleanup: False when Fluent Bit dropped the batch (read it again), else noted.

        A batch that made no ring-buffer entry (the input's processors dropped every
        record) has nothing to wait for.
        """
        got, before = self._read(), self._at_collect
        if got is None or before is None:
            self._batches.append(_Batch(rows))
            return True
        if got[1] > before[1]:
            return False
        batch = _Batch(rows if got[2] > before[2] else 0)
        batch.seen = batch.expect == 0
        self._batches.append(batch)
        return True

    def landed(self, final: bool = False) -> int:
        """How many of the oldest batches are in Fluent Bit's chunks now (then forgotten).

        Called at each collect, before the next batch. ``final``: at exit, when the
        engine has stopped: a batch counted lands at once.
        """
        got = self._at_collect = self._read()
        if got is not None and not self._moved:
            got = self._check_moving(got)
        if got is None:
            n = len(self._batches)
            self._batches.clear()
            return n
        if self._consumed is None or not self._batches:
            self._consumed = got[0]  # nothing of ours is between the ring and the chunks
            return 0
        self._cover(got[0])
        n = 0
        for b in self._batches:
            if not (b.seen or (final and b.counted >= b.expect)):
                break
            n += 1
        for _ in range(n):
            self._consumed += self._batches.popleft().expect
        for b in self._batches:
            if b.counted >= b.expect:
                b.seen = True
        if not self._batches:
            self._consumed = got[0]
        return n

    def _check_moving(self, got: Counters) -> Counters | None:
        """A Fluent Bit whose records counter never moves for this input is not trusted."""
        if self._first is None:
            self._first = got[0]
        self._moved = got[0] > self._first
        if self._moved or not self._batches:
            return got
        if time.monotonic() - self._batches[0].since < NEVER_COUNTED:
            return got
        self.log.warning(
            "Fluent Bit has not counted any record of this input in %.0fs "
            "(fluentbit_input_records_total); positions are stored one callback after "
            "Fluent Bit copied a batch, as without the counter",
            NEVER_COUNTED,
        )
        self._read = no_counters
        self._at_collect = None
        return None

    def waiting(self) -> bool:
        """A batch handed over at an earlier collect is still in the ring buffer, uncounted.

        The engine thread is busy (an output flushing on it): handing over more would
        only pile batches up in the ring, where Fluent Bit drops what does not fit, and
        make a kill re-deliver more.
        """
        return any(b.counted == 0 < b.expect for b in self._batches)

    def wait(self, timeout: float, step: float = 0.02) -> bool:
        """Wait, up to ``timeout`` seconds, until :meth:`waiting` ends; False when it did not.

        A batch handed over late in a second (a collect that waited for a whole batch)
        is often still in the engine's hands at the next callback: waiting a little for
        it costs less than skipping the whole second. Reads the counters only; what
        landed is still decided at the next collect (:meth:`landed`).
        """
        deadline = time.monotonic() + timeout
        while True:
            got = self._read()
            if got is None or self._consumed is None or not self._uncounted(got[0]):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(step, left))

    def _uncounted(self, total: int) -> bool:
        """:meth:`waiting` as if the records counter read ``total`` (nothing is changed)."""
        assert self._consumed is not None
        avail = total - self._consumed
        for b in self._batches:
            if b.expect > 0 and avail <= 0 and b.counted == 0:
                return True
            avail -= b.expect
        return False

    def _cover(self, total: int) -> None:
        assert self._consumed is not None
        avail = total - self._consumed
        head = None
        for b in self._batches:
            b.counted = min(b.expect, max(avail, 0))
            avail -= b.expect
            if b.counted < b.expect:
                head = b
                break
        # the ring is FIFO and the engine counts an entry whole: a batch counted in part
        # was taken, with fewer records (a processor or a route dropped some), once the
        # remainder stays the same for one collect
        if head is None or head.counted == 0:
            self._short = None
            return
        if self._short != head.counted:
            self._short = head.counted
            return
        self._consumed -= head.expect - head.counted
        head.counted = head.expect
        self._short = None
        if not self._warned:
            self._warned = True
            self.log.info(
                "Fluent Bit counted fewer records than handed over (a processor or a route "
                "dropped some); positions follow its count"
            )


def no_counters() -> Counters | None:
    """A host that does not expose the engine's counters."""
    return None
