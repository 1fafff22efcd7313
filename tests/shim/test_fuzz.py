"""Fuzzing what crosses the ABI: random chunks and random property sets.

The host must survive everything and exits 0 even when every flush fails, so the
exit code says little: the tests check the flushes themselves (every flush OK, no
retry, no error; the chunks without a record never flushed) and the rows: every
well-formed record lands and nothing else does (the oracle is the test's own
construction of each chunk, not the plugin's decoder). A property set either fails
Init naming the option, or its one record is written by one OK flush.
"""

from __future__ import annotations

import random
import re
import sqlite3
import struct
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fix_host import event_classic, event_time, event_v2, group_marker, props, write_frames

pytestmark = [pytest.mark.shim, pytest.mark.fuzz]


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(12 if depth < 4 else 8)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.randint(-(2**63), 2**64 - 1)
    if kind == 3:
        return rng.choice([0.0, -0.0, 1e308, float("inf"), float("-inf"), float("nan"), 3.25])
    if kind == 4:
        return "".join(
            chr(rng.choice([0, 0x7F, 0xE9, 0x1F600, 0xFFFD, 0x41]))
            for _ in range(rng.randrange(20))
        )
    if kind == 5:
        return rng.randbytes(rng.randrange(40))
    if kind == 6:
        return msgpack.ExtType(rng.randrange(1, 127), rng.randbytes(rng.randrange(9)))
    if kind == 7:
        return "x" * rng.choice([0, 1, 255, 70_000])
    if kind in (8, 9):
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {f"k{rng.randrange(5)}": _random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _good_event(rng: random.Random, n: int) -> bytes:
    body = {"n": n, "v": _random_value(rng), "s": "ok"}
    style = rng.randrange(4)
    if style == 0:
        return event_v2(body, sec=rng.randrange(0, 2**32 - 2), nsec=rng.randrange(10**9))
    if style == 1:
        return event_classic(body, event_time(rng.randrange(0, 2**31), rng.randrange(10**9)))
    if style == 2:  # any integer a SQL timestamp can hold (up to year 9999)
        return event_classic(body, rng.randrange(0, 253_402_300_799))
    return event_classic(body, rng.uniform(0, 2**31))


def _garbage(rng: random.Random) -> bytes:
    """A complete msgpack object that is not an event."""
    choices = [
        lambda: msgpack.packb(_random_value(rng)),
        lambda: msgpack.packb([-5, {"a": 1}]),
        lambda: msgpack.packb([[1, 2, 3], {"a": 1}]),
        lambda: msgpack.packb([1.5, "not a map"]),
        lambda: msgpack.packb([msgpack.ExtType(0, b"\x00" * 4), {"a": 1}]),
        lambda: msgpack.packb([[msgpack.ExtType(0, struct.pack(">II", 1, 2)), "meta"], {}]),
        lambda: b"\x92\x92\xd7\x00" + b"\0" * 8 + b"\x80\x81\xa1d" + b"\x91" * 3000 + b"\xc0",
        lambda: msgpack.packb({"a": 1}),
    ]
    packed: bytes = rng.choice(choices)()
    return packed


def test_random_chunks_never_crash_and_every_good_record_lands(host, tmp_path):
    rng = random.Random(20261121)
    chunks, good = [], 0
    for _ in range(150):
        parts = []
        for _ in range(rng.randrange(1, 30)):
            roll = rng.random()
            if roll < 0.75:
                parts.append(_good_event(rng, good))
                good += 1
            elif roll < 0.9:
                parts.append(_garbage(rng))
            else:
                parts.append(group_marker(rng.random() < 0.5))
        chunk = b"".join(parts)
        if rng.random() < 0.1:  # a truncated tail after the last good record
            chunk += event_v2({"never": "complete"})[: rng.randrange(1, 10)]
        chunks.append(chunk)
    chunks.append(b"")
    chunks.append(rng.randbytes(64))
    # valid for Fluent Bit, not for a SQL timestamp (year 36812): dead-lettered, not lost
    chunks.append(event_classic({"far": "future"}, 2**40))
    frames = write_frames(tmp_path / "f.bin", chunks)
    db = tmp_path / "o.db"
    r = host.run(
        "-i",
        "feed",
        *props(file=frames),
        "-o",
        "sql",
        *props(url=db, table="logs", retry_limit=0),
        timeout=300,
    )
    assert r.returncode == 0, r.log[-4000:]
    # every chunk with at least one record is flushed once, and OK: a bad record is logged
    # and skipped, never the reason to retry or fail the chunk (the host exits 0 either way)
    stats = r.stats
    assert stats["chunks_in"] == len(chunks)
    assert stats["flush_retry"] == 0 and stats["flush_error"] == 0, r.log[-4000:]
    assert stats["flush_ok"] == stats["flush_calls"] > 0
    # the empty chunk and the 64 random bytes hold no record and are never flushed
    assert stats["chunks_dropped"] == len(chunks) - stats["flush_calls"] == 2
    conn = sqlite3.connect(db)
    (landed,) = conn.execute(
        'SELECT count(*) FROM logs WHERE data LIKE \'%"s": "ok"%\' OR data LIKE \'%"s":"ok"%\''
    ).fetchone()
    (rows,) = conn.execute("SELECT count(*) FROM logs").fetchone()
    conn.close()
    assert rows == landed, "a record that is not one of the good ones was stored"
    assert landed == good
    assert "rejected by table logs: column 'time'" in r.log, r.log[-2000:]
    assert '"far": "future"' in r.log  # the unstorable record is in the error log, whole


_KEYS = [
    "url",
    "table",
    "columns",
    "time_column",
    "json_column",
    "tag_column",
    "unique_key",
    "batch_rows",
    "bulk",
    "pool.max_lifetime",
    "statement_timeout",
    "ssl_mode",
    "auto_create_table",
    "dead_letter_table",
    "time_zone",
    "nonsense",
    "table_name",
    "query",
    "Match",
    "workers",
]
_VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            "on",
            "off",
            "0",
            "-1",
            "1e99",
            "5s",
            "x" * 300,
            "a=b:int",
            "a,b",
            "UTC",
            "Mars/Olympus",
            "copy",
        ]
    ),
    st.text(min_size=0, max_size=12),
)


def _routes(tag: str, match: str) -> bool:
    """Fluent Bit's Match: ``*`` is the only wildcard (no regex)."""
    return re.fullmatch(".*".join(map(re.escape, match.split("*"))), tag, re.DOTALL) is not None


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=6))
def test_random_property_sets_fail_init_cleanly_or_work(host, tmp_path_factory, conf):
    tmp = tmp_path_factory.mktemp("p")
    frames = write_frames(tmp / "f.bin", [event_v2({"a": 1})])
    args = []
    base = {"url": str(tmp / "o.db"), "table": "logs"}
    for k, v in {**base, **conf}.items():
        if "\x00" in v or "\n" in v:
            continue
        args += ["-p", f"{k}={v}"]
    r = host.run("-i", "feed", *props(file=frames), "-o", "sql", *args, timeout=60, cwd=tmp)
    assert r.returncode in (0, 255), r.log[-3000:]
    stats = r.stats
    if r.returncode == 255:
        assert "failed to initialize" in r.log
        assert "option '" in r.log or "init failed" in r.log, r.log[-3000:]
        assert stats["flush_calls"] == 0, r.log[-3000:]
    # the host's default tag is the input's name; an empty Match is no Match, which with one
    # input and one output means "*" (flb_router_io_set)
    elif not _routes("feed", conf.get("Match") or "*"):
        assert stats["flush_calls"] == 0 and stats["chunks_dropped"] == 1, (stats, conf)
    elif "cannot connect to" in r.log:  # a url SQLite cannot open: retried, then dropped
        assert "url" in conf, r.log[-3000:]
        assert stats["flush_ok"] == stats["flush_error"] == 0, (stats, conf)
        assert stats["flush_retry"] == stats["flush_calls"] > 0, (stats, conf)
    elif "does not exist and auto_create_table is off" in r.log:  # FLB_ERROR, documented
        assert "auto_create_table" in conf, r.log[-3000:]
        assert stats["flush_calls"] == stats["flush_error"] == 1, (stats, conf)
    else:  # Init accepted the options: the one record is written, in one OK flush
        assert stats["flush_calls"] == stats["flush_ok"] == 1, (stats, conf, r.log[-3000:])
        assert stats["records_out"] == 1
        if "url" not in conf and "table" not in conf and "dead_letter_table" not in conf:
            conn = sqlite3.connect(tmp / "o.db")
            assert conn.execute("SELECT count(*) FROM logs").fetchone() == (1,), conf
            conn.close()
    assert "Segmentation" not in r.log and "AddressSanitizer" not in r.log
