"""The poll reader's position protocol, without a database: hand over, commit, rewind."""

from __future__ import annotations

import threading

from flbsql.input.handoff import Chunk, ChunkQueue, Marker
from flbsql.input.position import Position
from flbsql.input.tracker import PositionTracker

START = Position(("id",))


def page(tracker: PositionTracker, last: int, rows: int = 1) -> bool:
    """What the fetch thread does with a page ending at ``id = last``."""
    at = tracker.read_from()
    assert at.base is not None
    chunk = Chunk(b"e" * rows, rows, Marker(position=at.base.advance((last,), [], rows)))
    if not tracker.page_read(at, (last,), chunk):
        return False
    return tracker.queue.put(chunk, threading.Event(), at.epoch)


def tracker() -> PositionTracker:
    t = PositionTracker(ChunkQueue(1000, 1000))
    t.start_at(START)
    return t


def test_nothing_is_handed_over_before_a_start():
    t = PositionTracker(ChunkQueue(1000))
    assert t.read_from().base is None
    assert t.hand_over(10, 10) == []


def test_commit_acknowledges_the_end_of_the_batch_once():
    t = tracker()
    assert page(t, 3, rows=3) and page(t, 5, rows=2)
    assert t.read_from().after == (5,) and t.read_from().dedup is None
    batch = t.hand_over(max_rows=3, max_bytes=100)
    assert [c.rows for c in batch] == [3]
    assert t.take_unsaved() is None
    t.commit()
    saved = t.take_unsaved()
    assert saved is not None and saved.last == (3,) and saved.rows == 3
    assert t.take_unsaved() is None
    t.hand_over(10, 100)
    t.commit()
    saved = t.take_unsaved()
    assert saved is not None and saved.last == (5,) and saved.rows == 5


def test_rewind_drops_the_queue_and_reads_again_from_the_acknowledged_end():
    t = tracker()
    page(t, 3, rows=3)
    t.hand_over(10, 100)
    t.commit()
    assert t.take_unsaved() is not None
    page(t, 6, rows=3)
    page(t, 9, rows=3)
    assert [c.rows for c in t.hand_over(3, 100)] == [3]
    t.rewind()
    assert len(t.queue) == 0
    at = t.read_from()
    assert at.after == (3,) and at.base is not None and at.base.last == (3,)
    assert at.dedup is not None and at.dedup.last == (3,)  # the boundary is dropped again
    t.commit()  # nothing pending any more
    assert t.take_unsaved() is None


def test_a_batch_neither_committed_nor_rewound_is_read_again():
    t = tracker()
    page(t, 2, rows=2)
    assert t.hand_over(10, 100)
    page(t, 4, rows=2)  # queued before the next collect
    assert t.hand_over(10, 100) == []  # rewound: the queue went too
    assert t.read_from().after is None


def test_a_page_read_before_a_rewind_is_dropped():
    t = tracker()
    at = t.read_from()
    t.rewind()
    chunk = Chunk(b"e", 1, Marker(position=START.advance((1,), [], 1)))
    assert not t.page_read(at, (1,), chunk)
    assert t.read_from().after is None
    t.skip_to(at, (7,))
    assert t.read_from().after is None  # the same for a vanished bound


def test_skip_to_moves_the_read_position_only():
    t = tracker()
    t.skip_to(t.read_from(), (7,))
    at = t.read_from()
    assert at.after == (7,) and at.base == START
