"""in_sql.so through the C test host: one input reads 20 tables (``tables schema.*``), and
SIGKILL in the middle: each table resumes at its own stored position, nothing is lost."""

from __future__ import annotations

import collections
import io
import json
import pathlib
import random
import re
import secrets
import sqlite3
import struct
import subprocess
import time

import msgpack
import pytest

TABLES = 20
ROWS = 5000  # per table
KILLS = 5
ROWS_PER_COLLECT = 1000


def sink_keys(path: pathlib.Path) -> list[tuple[str, int]]:
    """(table, id) of every record in a sink file, ignoring a frame cut short by SIGKILL."""
    data = path.read_bytes() if path.exists() else b""
    keys: list[tuple[str, int]] = []
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
        keys.extend((ev[1]["_table"], ev[1]["id"]) for ev in unpacker)
        off = start + dlen
    return keys


def stored_positions(db: pathlib.Path) -> dict[str, int]:
    """Table -> the last id stored in the position file."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT name, position FROM in_sql_positions").fetchall()
    finally:
        conn.close()
    out = {}
    for name, text in rows:
        last = json.loads(text)["last"]
        out[name.split("/", 1)[1]] = 0 if last is None else int(last[0][1])
    return out


def _args(url: str, schema: str, tmp_path: pathlib.Path, sink: pathlib.Path) -> list[str]:
    return [
        "-i",
        "sql",
        "-p",
        f"url={url}",
        "-p",
        f"tables={schema}.*",
        "-p",
        f"db={tmp_path / 'pos.db'}",
        "-p",
        f"rows_per_collect={ROWS_PER_COLLECT}",
        "-p",
        "fetch_size=500",
        "-p",
        "progress_interval=0",
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
        "250",
    ]


@pytest.mark.postgres
@pytest.mark.chaos
def test_sigkill_while_reading_twenty_tables_each_resumes_at_its_own_position(
    host, pg_db, tmp_path
):
    schema = f"flbsql_t_{secrets.token_hex(4)}"
    pg_db.execute(f"CREATE SCHEMA {schema}")
    try:
        for i in range(TABLES):
            n = ROWS if i % 2 == 0 else ROWS // 5  # big and small tables
            pg_db.execute(f"CREATE TABLE {schema}.t{i:02d} (id bigint PRIMARY KEY, v text)")
            pg_db.execute(
                f"INSERT INTO {schema}.t{i:02d} SELECT g, 'r' || g FROM generate_series(1, {n}) g"
            )
        want = {
            (f"{schema}.t{i:02d}", k)
            for i in range(TABLES)
            for k in range(1, (ROWS if i % 2 == 0 else ROWS // 5) + 1)
        }
        rng = random.Random(14)
        sinks: list[pathlib.Path] = []
        # KILLS kills, and more (up to 4 x KILLS) until half the tables have a stored
        # position: how far a 1-2 s run gets depends on the machine's speed
        while len(sinks) < KILLS or (
            len(sinks) < 4 * KILLS
            and sum(1 for v in stored_positions(tmp_path / "pos.db").values() if v) < TABLES // 2
        ):
            sinks.append(tmp_path / f"sink{len(sinks)}.bin")
            proc = host.start(
                *_args(pg_db.url, schema, tmp_path, sinks[-1]), stderr=subprocess.DEVNULL
            )
            time.sleep(rng.uniform(1.0, 2.0))
            proc.kill()
            proc.wait()
            proc.stdout.close()
        before = [k for s in sinks for k in sink_keys(s)]
        stored = stored_positions(tmp_path / "pos.db")
        sinks.append(tmp_path / "final.bin")
        log = (tmp_path / "final.log").open("w")
        proc = host.start(*_args(pg_db.url, schema, tmp_path, sinks[-1]), stderr=log)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if set(sink_keys(sinks[-1])) | set(before) >= want:
                    break
                time.sleep(0.5)
            time.sleep(1)  # anything extra would show up now
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            proc.stdout.close()
            log.close()
    finally:
        pg_db.execute(f"DROP SCHEMA {schema} CASCADE")
    final = sink_keys(sinks[-1])
    got = before + final
    missing = want - set(got)
    assert not missing, f"{len(missing)} rows lost, e.g. {sorted(missing)[:5]}"
    assert not set(got) - want
    duplicates = len(got) - len(set(got))
    # a kill re-delivers the batches after the stored positions: the one in flight, one
    # counted by the engine since the last collect, and what waits in the ring buffer
    assert duplicates <= 3 * (len(sinks) - 1) * ROWS_PER_COLLECT, duplicates
    assert 0 < len(set(before)) < len(want), "the kills must land mid-stream"
    # every table with a stored position resumed right after it, not from its start
    resumed = {
        m.group(1): int(m.group(2))
        for m in re.finditer(
            r"resuming [^/\s]+/(\S+) after \((\d+)\)", (tmp_path / "final.log").read_text()
        )
    }
    assert resumed == {t: last for t, last in stored.items() if last}
    assert len(resumed) >= TABLES // 2, stored
    print(
        f"\n{TABLES} tables, {len(want)} rows, {len(sinks) - 1} kills: {duplicates} repeated; "
        f"tables resumed mid-way: {sum(1 for v in stored.values() if v)}; "
        f"per table before the last run: {collections.Counter(t for t, _ in set(before))}"
    )
