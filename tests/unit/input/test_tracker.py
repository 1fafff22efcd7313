"""The poll reader's position protocol, without a database: hand over, commit, rewind."""

from __future__ import annotations

import threading

from flbsql.input.handoff import Chunk, ChunkQueue, Marker
from flbsql.input.position import Position
from flbsql.input.tracker import PositionTracker

START = Position(("id",))
L = "db/t"  # the lane of a single-table input


def page(tracker: PositionTracker, last: int, rows: int = 1, lane: str = L) -> bool:
    """What the fetch thread does with a page ending at ``id = last``."""
    at = tracker.read_from(lane)
    assert at.base is not None
    marker = Marker(position=at.base.advance((last,), [], rows), name=lane)
    chunk = Chunk(b"e" * rows, rows, marker)
    if not tracker.page_read(lane, at, (last,), chunk):
        return False
    return tracker.queue.put(chunk, threading.Event(), at.epoch)


def tracker(*lanes: str) -> PositionTracker:
    t = PositionTracker(ChunkQueue(1000, 1000))
    for lane in lanes or (L,):
        t.start_at(lane, START)
    return t


def test_nothing_is_handed_over_before_a_start():
    t = PositionTracker(ChunkQueue(1000))
    assert t.read_from(L).base is None
    assert t.hand_over(10, 10) == []


def test_each_table_is_acknowledged_and_rewound_at_its_own_position():
    t = tracker("db/a", "db/b")
    assert page(t, 3, rows=3, lane="db/a") and page(t, 10, rows=1, lane="db/b")
    assert page(t, 5, rows=2, lane="db/a")
    assert [c.rows for c in t.hand_over(10, 100)] == [3, 1, 2]  # one batch, both tables
    t.commit()
    t.landed(1)
    saved = t.take_unsaved()
    assert {k: (v.last, v.rows) for k, v in saved.items()} == {
        "db/a": ((5,), 5),
        "db/b": ((10,), 1),
    }
    page(t, 7, rows=2, lane="db/a")
    page(t, 11, rows=1, lane="db/b")
    assert [c.rows for c in t.hand_over(2, 100)] == [2]  # only a's page went out
    t.rewind()
    assert t.read_from("db/a").after == (5,) and t.read_from("db/b").after == (10,)
    t.commit()
    t.landed(1)
    assert t.take_unsaved() == {}


def test_commit_acknowledges_the_end_of_the_batch_once():
    t = tracker()
    assert page(t, 3, rows=3) and page(t, 5, rows=2)
    assert t.read_from(L).after == (5,) and t.read_from(L).dedup is None
    batch = t.hand_over(max_rows=3, max_bytes=100)
    assert [c.rows for c in batch] == [3]
    assert t.take_unsaved() == {}
    t.commit()
    t.landed(1)
    saved = t.take_unsaved()[L]
    assert saved.last == (3,) and saved.rows == 3
    assert t.take_unsaved() == {}
    t.hand_over(10, 100)
    t.commit()
    t.landed(1)
    saved = t.take_unsaved()[L]
    assert saved.last == (5,) and saved.rows == 5


def test_rewind_drops_the_queue_and_reads_again_from_the_acknowledged_end():
    t = tracker()
    page(t, 3, rows=3)
    t.hand_over(10, 100)
    t.commit()
    t.landed(1)
    assert t.take_unsaved()
    page(t, 6, rows=3)
    page(t, 9, rows=3)
    assert [c.rows for c in t.hand_over(3, 100)] == [3]
    t.rewind()
    assert len(t.queue) == 0
    at = t.read_from(L)
    assert at.after == (3,) and at.base is not None and at.base.last == (3,)
    assert at.dedup is not None and at.dedup.last == (3,)  # the boundary is dropped again
    t.commit()  # nothing pending any more
    assert t.take_unsaved() == {}


def test_a_batch_neither_committed_nor_rewound_is_read_again():
    t = tracker()
    page(t, 2, rows=2)
    assert t.hand_over(10, 100)
    page(t, 4, rows=2)  # queued before the next collect
    assert t.hand_over(10, 100) == []  # rewound: the queue went too
    assert t.read_from(L).after is None


def test_a_page_read_before_a_rewind_is_dropped():
    t = tracker()
    at = t.read_from(L)
    t.rewind()
    chunk = Chunk(b"e", 1, Marker(position=START.advance((1,), [], 1), name=L))
    assert not t.page_read(L, at, (1,), chunk)
    assert t.read_from(L).after is None
    t.skip_to(L, at, (7,))
    assert t.read_from(L).after is None  # the same for a vanished bound


def test_skip_to_moves_the_read_position_only():
    t = tracker()
    t.skip_to(L, t.read_from(L), (7,))
    at = t.read_from(L)
    assert at.after == (7,) and at.base == START


def test_a_position_is_stored_only_once_fluent_bit_took_its_batch_into_a_chunk():
    t = tracker()
    page(t, 3, rows=3)
    t.hand_over(10, 100)
    t.commit()  # in Fluent Bit's ring buffer only
    page(t, 5, rows=2)
    t.hand_over(10, 100)
    t.commit()
    assert t.take_unsaved() == {}
    assert t.read_from(L).after == (5,)  # reading goes on meanwhile
    t.landed(1)
    assert t.take_unsaved()[L].last == (3,)
    t.landed(1)
    assert t.take_unsaved()[L].last == (5,)
