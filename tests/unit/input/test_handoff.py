"""The bounded hand-off queue both input modes use (poll pages, cdc chunks)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from flbsql.input import handoff
from flbsql.input.handoff import Chunk, ChunkQueue, CollectClock, Marker


def chunk(size: int, rows: int = 1, tag: int = 0) -> Chunk:
    return Chunk(b"x" * size, rows, Marker(lsn=tag))


def tags(chunks: list[Chunk]) -> list[int | None]:
    return [c.marker.lsn if c.marker else None for c in chunks]


def put_in_thread(
    q: ChunkQueue, c: Chunk, stop: threading.Event, **kw: Any
) -> tuple[threading.Thread, list[bool]]:
    result: list[bool] = []
    t = threading.Thread(target=lambda: result.append(q.put(c, stop, **kw)), daemon=True)
    t.start()
    return t, result


def test_put_blocks_while_the_bytes_would_pass_the_bound_and_a_handed_over_take_makes_room():
    """A batch taken still counts until released: it is in memory until Fluent Bit has it."""
    q = ChunkQueue(100)
    stop = threading.Event()
    assert q.put(chunk(60, tag=1), stop)
    t, result = put_in_thread(q, chunk(60, tag=2), stop)
    t.join(0.3)
    assert t.is_alive() and len(q) == 1  # 120 > 100: waits
    assert tags(q.take(10, 1000)) == [1]
    t.join(0.3)
    assert t.is_alive() and len(q) == 0  # taken, being copied: still 120 > 100
    q.release()
    t.join(2)
    assert result == [True] and tags(q.take(10, 1000)) == [2]


def test_one_oversize_chunk_still_passes_alone():
    q = ChunkQueue(100)
    assert q.put(chunk(500, tag=1), threading.Event())
    assert q.full()
    assert tags(q.take(10, 10)) == [1]  # take hands over at least one
    assert q.full()  # until it is released
    q.release()
    assert not q.full()


def test_rows_bound_when_given():
    q = ChunkQueue(10_000, max_rows=5)
    stop = threading.Event()
    assert q.put(chunk(1, rows=3, tag=1), stop)
    assert not q.full()
    stop.set()
    assert not q.put(chunk(1, rows=3, tag=2), stop)  # 6 rows > 5: no room, stopped
    assert q.put(chunk(1, rows=2, tag=3), stop)
    assert q.full() and tags(q.take(10, 1000)) == [1, 3]


def test_stop_unblocks_a_waiting_put():
    q = ChunkQueue(10)
    stop = threading.Event()
    assert q.put(chunk(10), stop)
    t, result = put_in_thread(q, chunk(10), stop)
    time.sleep(0.15)
    stop.set()
    t.join(2)
    assert not t.is_alive() and result == [False] and len(q) == 1


def test_take_stops_at_the_row_and_byte_limits():
    q = ChunkQueue(10_000)
    stop = threading.Event()
    for i in range(6):
        q.put(chunk(10, rows=2, tag=i), stop)
    assert tags(q.take(max_rows=5, max_bytes=1000)) == [0, 1]  # a third would be 6 rows
    assert tags(q.take(max_rows=100, max_bytes=25)) == [2, 3]  # a third would be 30 bytes
    assert tags(q.take(max_rows=100, max_bytes=1000)) == [4, 5]
    assert q.take(100, 1000) == []


def test_push_front_gives_a_batch_back_in_order():
    q = ChunkQueue(10_000)
    stop = threading.Event()
    for i in range(4):
        q.put(chunk(10, tag=i), stop)
    batch = q.take(max_rows=2, max_bytes=1000)
    assert tags(batch) == [0, 1]
    q.push_front(batch)
    assert len(q) == 4
    assert tags(q.take(100, 1000)) == [0, 1, 2, 3]
    assert not q.full()


def test_push_front_counts_towards_the_bound():
    q = ChunkQueue(25)
    stop = threading.Event()
    q.put(chunk(10, tag=0), stop)
    q.put(chunk(10, tag=1), stop)
    q.push_front(q.take(100, 1000))
    stop.set()
    assert not q.put(chunk(10, tag=2), stop)  # still 20 bytes queued


def test_clear_drops_everything_and_ends_the_epoch():
    q = ChunkQueue(10)
    stop = threading.Event()
    epoch = q.epoch
    assert q.put(chunk(10, tag=1), stop, epoch)
    t, result = put_in_thread(q, chunk(10, tag=2), stop, epoch=epoch)
    time.sleep(0.15)
    q.clear()  # a rewind: the waiting chunk was read before it
    t.join(2)
    assert result == [False] and len(q) == 0 and not q.full()
    assert not q.put(chunk(1, tag=3), stop, epoch)  # stale epoch: dropped
    assert q.put(chunk(1, tag=4), stop, q.epoch)
    assert tags(q.take(10, 100)) == [4]


def test_an_idle_reader_polls_just_before_the_next_collect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr(handoff, "time", type("T", (), {"monotonic": staticmethod(lambda: now[0])}))
    clock = CollectClock()
    assert clock.idle_wait(0.2, 0.05) == 0.2  # no callback seen: the plain poll
    clock.collected()
    now[0] = 100.5
    assert clock.idle_wait(0.2, 0.05) == 0.2  # the callback is 0.5 s away
    now[0] = 100.8
    assert clock.idle_wait(0.2, 0.05) == pytest.approx(0.15)  # wake 0.05 s before it
    now[0] = 100.96
    assert clock.idle_wait(0.2, 0.05) == 0.2  # that poll was done: back to the plain one
    for t in (101.0, 102.0, 103.0, 104.0):  # the interval follows the callbacks seen
        now[0] = t
        clock.collected()
    now[0] = 104.9
    assert clock.idle_wait(0.2, 0.05) == pytest.approx(0.05)


def pages_80ms_apart(q: ChunkQueue) -> threading.Thread:
    """A reader putting six 100-byte chunks (tags 0-5), 80 ms apart, from now on."""
    stop = threading.Event()

    def reader() -> None:
        for i in range(6):
            q.put(chunk(100, tag=i), stop)
            time.sleep(0.08)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    return t


def timed_take(limit: handoff.CollectLimit, q: ChunkQueue) -> tuple[list[Chunk], float]:
    """One callback's chunks and the seconds it took to get them."""
    before = time.monotonic()
    taken = limit.take(q.take)
    return taken, time.monotonic() - before


def test_a_collect_waits_for_a_whole_batch_while_large_pages_keep_coming():
    """Pages 80 ms apart (large pages): the fill wait does not end between two of them."""
    q = ChunkQueue(10_000)
    t = pages_80ms_apart(q)
    time.sleep(0.2)  # three pages in: the gap between two puts is known
    q.fill(max_rows=1000, max_bytes=600, timeout=2.0)
    assert len(q) == 6  # a fixed 50 ms quiet would have stopped after the third or fourth
    t.join(2)
    before = time.monotonic()
    q.fill(max_rows=1000, max_bytes=10_000, timeout=2.0)  # the reader stopped: ends soon
    assert time.monotonic() - before < 0.5


@pytest.mark.parametrize("behind", [True, False])
def test_a_collect_fills_its_batch_only_while_the_source_says_it_is_behind(behind: bool) -> None:
    """CDC: a backlog fills each batch; changes trickling in are handed over at once."""
    q = ChunkQueue(10_000)
    limit = handoff.CollectLimit(q, 600, fill=2.0, behind=lambda: behind)
    t = pages_80ms_apart(q)
    time.sleep(0.2)  # three chunks in, more coming
    taken, waited = timed_take(limit, q)
    t.join(2)
    if behind:
        assert tags(taken) == [0, 1, 2, 3, 4, 5]
    else:  # what was queued, at once
        assert 3 <= len(taken) < 6
        assert tags(taken) == list(range(len(taken)))
        assert waited < 0.05


def test_a_collect_waits_for_a_source_behind_before_its_first_chunk_until_it_caught_up():
    """CDC at start: the first read is still under way; the wait ends when it caught up."""
    q = ChunkQueue(10_000)
    stop = threading.Event()
    state = {"behind": True}
    limit = handoff.CollectLimit(q, 10_000, fill=2.0, behind=lambda: state["behind"])

    def reader() -> None:
        time.sleep(0.3)  # nothing put yet: a quiet reader would have ended the wait
        for i in range(3):
            q.put(chunk(100, tag=i), stop)
        state["behind"] = False

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    taken, waited = timed_take(limit, q)
    t.join(2)
    assert tags(taken) == [0, 1, 2]
    assert 0.3 <= waited < 1.0  # not the whole fill timeout: it caught up
