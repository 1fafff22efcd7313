"""in_sql.so through the C test host: kill -9 mid-stream loses nothing."""

from __future__ import annotations

import io
import pathlib
import random
import struct
import subprocess
import time

import msgpack
import pytest
from tests.fix_db import unique_table
from tests.fix_host import BUILD

STUB_OUT = BUILD / "stub_out.so"


def sink_ids(path: pathlib.Path) -> list[int]:
    """Ids in a sink file, ignoring a frame cut short by SIGKILL."""
    data = path.read_bytes() if path.exists() else b""
    ids: list[int] = []
    off = 0
    while off + 4 <= len(data):
        (tlen,) = struct.unpack_from("<I", data, off)
        if off + 8 + tlen > len(data):
            break
        (dlen,) = struct.unpack_from("<I", data, off + 4 + tlen)
        start = off + 8 + tlen
        if start + dlen > len(data):
            break
        unpacker = msgpack.Unpacker(io.BytesIO(data[start : start + dlen]), raw=False)
        ids.extend(ev[1]["id"] for ev in unpacker)
        off = start + dlen
    return ids


def _args(url, table, tmp_path, sink, rows_per_collect, interval, busy_ms=0):
    # busy_ms: a second output whose flush holds the engine thread (workers 0, as out_sql
    # by default), so batches wait in the ring buffer after the cleanup callback
    busy = ["-o", "stub", "-m", "*", "-p", f"sleep_ms={busy_ms}"] if busy_ms else []
    return [
        "-i",
        "sql",
        "-p",
        f"url={url}",
        "-p",
        f"table={table}",
        "-p",
        f"db={tmp_path / 'pos.db'}",
        "-p",
        f"rows_per_collect={rows_per_collect}",
        "-p",
        "fetch_size=5000",
        "-p",
        "progress_interval=0",
        # as the docs require for at-least-once: Fluent Bit (and the host) keep chunks
        # on disk; with memory storage a kill loses what was appended and not flushed
        "-p",
        "storage.type=filesystem",
        "--storage-path",
        str(tmp_path / "storage"),
        "-o",
        "sink",
        "-m",
        "*",
        "-p",
        f"file={sink}",
        "--interval",
        str(interval),
        *busy,
    ]


def _kill_run(host, pg_db, tmp_path, rows, kills, rows_per_collect, interval, busy_ms=0):
    table = unique_table("kill")
    pg_db.execute(f"CREATE TABLE {table} (id bigserial PRIMARY KEY, msg text NOT NULL)")
    pg_db.execute(f"INSERT INTO {table} (msg) SELECT 'row ' || g FROM generate_series(1, {rows}) g")
    rng = random.Random(rows)
    plugins = (host.in_sql, STUB_OUT) if busy_ms else None
    sinks = []
    for i in range(kills):
        sinks.append(tmp_path / f"sink{i}.bin")
        proc = host.start(
            *_args(pg_db.url, table, tmp_path, sinks[-1], rows_per_collect, interval, busy_ms),
            stderr=subprocess.DEVNULL,
            plugins=plugins,
        )
        time.sleep(rng.uniform(0.6, 0.6 + 4 * interval / 1000 + 2 * busy_ms / 1000))
        proc.kill()
        proc.wait()
        proc.stdout.close()
    delivered_before_final = {i for s in sinks for i in sink_ids(s)}
    sinks.append(tmp_path / "final.bin")
    # the final run only drains: larger batches (no kill follows, so no more duplicates)
    proc = host.start(
        *_args(pg_db.url, table, tmp_path, sinks[-1], max(rows_per_collect, rows // 10), interval),
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30 + rows / 20_000
        while time.monotonic() < deadline:
            if len(set(sink_ids(sinks[-1])) | delivered_before_final) >= rows:
                break
            time.sleep(0.5)
        time.sleep(2 * interval / 1000)  # anything extra would show up now
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()
    got = [i for s in sinks for i in sink_ids(s)]
    missing = set(range(1, rows + 1)) - set(got)
    assert not missing, f"{len(missing)} rows lost, e.g. {sorted(missing)[:5]}"
    duplicates = len(got) - len(set(got))
    # at-least-once: a kill re-delivers the batches after the stored position: those still
    # in the ring buffer or counted by the engine since the last collect, and the next one
    assert duplicates <= kills * rows_per_collect * (3 + 2 * busy_ms // interval), duplicates
    assert 0 < len(delivered_before_final) < rows, "the kills must land mid-stream"
    return duplicates


@pytest.mark.postgres
@pytest.mark.chaos
def test_sigkill_ten_times_during_a_stream_loses_no_row(host, pg_db, tmp_path):
    _kill_run(host, pg_db, tmp_path, rows=100_000, kills=10, rows_per_collect=2000, interval=250)


@pytest.mark.postgres
@pytest.mark.chaos
def test_sigkill_while_an_output_holds_the_engine_thread_loses_no_row(host, pg_db, tmp_path):
    """The cleanup callback comes before the engine took the batch off the ring buffer."""
    _kill_run(
        host,
        pg_db,
        tmp_path,
        rows=60_000,
        kills=6,
        rows_per_collect=2000,
        interval=250,
        busy_ms=700,
    )


@pytest.mark.postgres
@pytest.mark.chaos
@pytest.mark.slow
def test_sigkill_ten_times_during_a_million_row_stream(host, pg_db, tmp_path):
    _kill_run(
        host, pg_db, tmp_path, rows=1_000_000, kills=10, rows_per_collect=20_000, interval=1000
    )
