"""The test host's engine behaves as Fluent Bit v5.1.1's (tests/host/README.md).

Flush timer with per-tag chunks, the threaded-input ring buffer, the scheduler's retry
backoff, Match routing and filesystem storage, driven with the host's built-in `feed`,
`sink` and `null` plugins and the C stub plugins (no Python plugin involved).
"""

from __future__ import annotations

import re
import signal
import time

import pytest

from tests.fix_host import BUILD, event_v2, props, read_sink, sink_records, write_frames

pytestmark = pytest.mark.shim

STUBS = (BUILD / "stub_in.so", BUILD / "stub_out.so")


def _frames(tmp_path, n, name="f.bin", key="i"):
    return write_frames(tmp_path / name, [event_v2({key: i}) for i in range(n)])


def test_two_tags_in_one_flush_interval_arrive_as_one_chunk_per_tag_after_the_timer(host, tmp_path):
    sink = tmp_path / "s.bin"
    # 100 ms collects for 1.5 s, flush every 2 s: nothing is dispatched before the stop
    r = host.run(
        "--interval",
        "100",
        "--first-delay",
        "50",
        "--duration",
        "1500",
        "--flush",
        "2",
        "-i",
        "stub",
        "-t",
        "a",
        "-i",
        "stub",
        "-t",
        "b",
        "-o",
        "sink",
        "-m",
        "*",
        *props(file=sink),
        plugins=STUBS,
    )
    assert r.returncode == 0, r.log
    chunks = read_sink(sink)
    assert sorted(tag for tag, _ in chunks) == ["a", "b"], chunks
    assert r.stats["flush_ticks"] == 0 and r.stats["chunks_in"] == 2, r.stats
    # every collect (3 records each) of a tag went into that tag's one open chunk
    assert r.stats["appends"] == r.stats["input_collects"] >= 20, r.stats
    assert r.stats["records_out"] == r.stats["input_records"] == 3 * r.stats["appends"]


def test_chunks_wait_for_the_flush_timer(host, tmp_path):
    frames = _frames(tmp_path, 3)
    t0 = time.monotonic()
    fast = host.run("--flush", "0.05", "-i", "feed", *props(file=frames), "-o", "null")
    t1 = time.monotonic()
    slow = host.run("--flush", "1.5", "-i", "feed", *props(file=frames), "-o", "null")
    t2 = time.monotonic()
    assert fast.stats["flush_ok"] == slow.stats["flush_ok"] == 3
    assert slow.stats["flush_ticks"] == 1 and t2 - t1 >= 1.5 > t1 - t0, (t1 - t0, t2 - t1)


def test_a_chunk_above_2_mb_is_closed_and_the_next_append_opens_another(host, tmp_path):
    big = event_v2({"pad": "x" * 700_000})  # three of these pass FLB_INPUT_CHUNK_FS_MAX_SIZE
    frames = write_frames(tmp_path / "f.bin", [big] * 4)
    sink = tmp_path / "s.bin"
    r = host.run(
        "-i",
        "feed",
        *props(file=frames, merge=True),
        "-o",
        "sink",
        *props(file=sink),
    )
    assert r.returncode == 0, r.log
    assert [len(c) // len(big) for _, c in read_sink(sink)] == [3, 1]


def test_an_output_without_match_gets_nothing_unless_it_is_one_input_to_one_output(host, tmp_path):
    a, b = _frames(tmp_path, 2, "a.bin"), _frames(tmp_path, 3, "b.bin")
    s_all, s_none, s_re = tmp_path / "all.bin", tmp_path / "none.bin", tmp_path / "re.bin"
    r = host.run(
        "--flush",
        "0.05",
        "-i",
        "feed",
        "-t",
        "app.a",
        *props(file=a),
        "-i",
        "feed",
        "-t",
        "sys.b",
        *props(file=b),
        "-o",
        "sink",
        "-m",
        "app.*",
        *props(file=s_all),
        "-o",
        "sink",
        *props(file=s_none),
        "-o",
        "sink",
        *props(file=s_re, match_regex="^sys\\.[a-z]$"),
    )
    assert r.returncode == 0, r.log
    assert [t for t, _ in read_sink(s_all)] == ["app.a"] * 2
    assert read_sink(s_none) == []
    assert [t for t, _ in read_sink(s_re)] == ["sys.b"] * 3
    assert r.log.count("[router] NO match for sink.1 output instance") == 2, r.log

    one = tmp_path / "one.bin"
    r = host.run("--flush", "0.05", "-i", "feed", *props(file=a), "-o", "sink", *props(file=one))
    assert len(read_sink(one)) == 2, r.log


def test_retries_follow_the_scaled_full_jitter_backoff(host, tmp_path):
    frames = _frames(tmp_path, 1)
    t0 = time.monotonic()
    r = host.run(
        "--flush",
        "0.05",
        "--retry-scale",
        "0.01",
        "-i",
        "feed",
        *props(file=frames),
        "-o",
        "stub",
        *props(result=2, retry_limit=3),
        plugins=STUBS,
    )
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.log
    assert r.stats["flush_retry"] == 4 and r.stats["chunks_dropped"] == 1, r.stats
    waits = [int(s) for s in re.findall(r"retry in (\d+) seconds", r.log)]
    # random(5, min(2000, 5 * 2^n)) + 1 for n = 1, 2, 3
    assert len(waits) == 3 and 6 <= waits[0] <= 11 and 6 <= waits[1] <= 21 and 6 <= waits[2] <= 41
    assert "cannot be retried" in r.log
    assert elapsed >= sum(waits) * 0.01, (elapsed, waits)


def test_a_ring_buffer_that_stays_full_drops_with_fluent_bits_message(host, tmp_path):
    # a 2.5 s flush on the engine thread stops the ring collector; a one-entry ring fills
    r = host.run(
        "--interval",
        "50",
        "--first-delay",
        "50",
        "--flush",
        "0.1",
        "--duration",
        "2000",
        "-i",
        "stub",
        *props(**{"thread.ring_buffer.capacity": 1}),
        "-o",
        "stub",
        *props(sleep_ms=2500),
        plugins=STUBS,
    )
    assert r.returncode == 0, r.log
    assert "[error] [input:stub:stub.0] could not enqueue records into the ring buffer" in r.log
    assert r.stats["rb_drops"] >= 1 and r.stats["rb_retries"] >= 10, r.stats
    assert r.stats["rb_dropped_records"] == 3 * r.stats["rb_drops"]
    # nothing else was lost: each record made was dropped, delivered or still buffered at exit
    assert r.stats["input_records"] >= r.stats["records_out"] + r.stats["rb_dropped_records"]


@pytest.mark.parametrize("storage", ["filesystem", "memory"])
def test_sigkill_loses_no_chunk_with_filesystem_storage_and_all_with_memory(
    host, tmp_path, storage
):
    frames = _frames(tmp_path, 10)
    store = tmp_path / "store"
    first = host.start(
        "--flush",
        "0.05",
        "--storage-path",
        str(store),
        "-i",
        "feed",
        *props(file=frames, **{"storage.type": storage}),
        "-o",
        "stub",
        "-m",
        "*",
        *props(result=2, retry_limit="no_limits"),  # never delivers
        plugins=STUBS,
        stderr=None,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and first.poll() is None:
            files = list(store.glob("feed.0/*.flb"))
            if storage == "filesystem" and len(files) == 10:
                break
            if storage == "memory":
                time.sleep(1)  # the chunks are in memory, dispatched and retried
                break
            time.sleep(0.05)
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    sink = tmp_path / "s.bin"
    second = host.run(
        "--flush", "0.05", "--storage-path", str(store), "-o", "sink", "-m", "*", *props(file=sink)
    )
    assert second.returncode == 0, second.log
    got = sorted(r[1]["i"] for r in sink_records(sink)) if sink.exists() else []
    if storage == "filesystem":
        assert got == list(range(10)), second.log
        assert second.stats["backlog_chunks"] == 10
        assert "[input:storage_backlog:storage_backlog.0] register feed.0/" in second.log
        assert "flush backlog chunk" in second.log
        assert list(store.glob("*/*.flb")) == []  # delivered chunks are deleted
    else:
        assert got == [] and second.stats["backlog_chunks"] == 0


def test_a_filesystem_chunk_without_a_route_stays_on_disk(host, tmp_path):
    frames = _frames(tmp_path, 2)
    store = tmp_path / "store"
    host.run(
        "--flush",
        "0.05",
        "--storage-path",
        str(store),
        "--duration",
        "1000",
        "--grace",
        "300",
        "--retry-wait",
        "1000",
        "-i",
        "feed",
        *props(file=frames, **{"storage.type": "filesystem"}),
        "-o",
        "stub",
        "-m",
        "*",
        *props(result=2, retry_limit="no_limits"),
        plugins=STUBS,
    )
    # grace expired with the chunks still retried: they stay for the next start
    assert len(list(store.glob("feed.0/*.flb"))) == 2
    r = host.run("--storage-path", str(store), "-o", "null", "-m", "other")
    assert r.stats["backlog_chunks"] == 0 and "keeping it on disk" in r.log, r.log
    assert len(list(store.glob("feed.0/*.flb"))) == 2
