"""The loading chain: host (as Fluent Bit's proxy loader) -> C shim -> CPython -> core.

Every test runs the real .so files in the C test host; each targets one trap of the
ABI doc (section 12) so that a regression fails here, not in production.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import textwrap
from typing import Any

import pytest

from tests.fix_host import (
    event_classic,
    event_time,
    event_v2,
    group_marker,
    props,
    sink_records,
    write_frames,
)

pytestmark = pytest.mark.shim


def rows(db, sql="SELECT tag, time, data FROM logs ORDER BY rowid"):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_exports_exactly_the_proxy_abi(host):
    for lib, wanted in (
        (
            host.out_sql,
            {
                "FLBPluginRegister",
                "FLBPluginUnregister",
                "FLBPluginInit",
                "FLBPluginFlushCtx",
                "FLBPluginExitCtx",
            },
        ),
        (
            host.in_sql,
            {
                "FLBPluginRegister",
                "FLBPluginUnregister",
                "FLBPluginInit",
                "FLBPluginInputCallbackCtx",
                "FLBPluginInputCleanupCallbackCtx",
                "FLBPluginInputPause",
                "FLBPluginInputResume",
                "FLBPluginInputPreExit",
                "FLBPluginExit",
            },
        ),
    ):
        out = subprocess.run(
            ["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True, check=True
        ).stdout
        exported = set(re.findall(r"\bT (FLBPlugin\w+)", out))
        assert exported == wanted, lib


def test_register_fits_a_32_byte_def_of_fluent_bit_before_4_2_3(host, tmp_path):
    frames = write_frames(tmp_path / "f.bin", [event_v2({"a": 1})])
    db = tmp_path / "o.db"
    r = host.run(
        "--def-size",
        "32",
        "-i",
        "feed",
        *props(file=frames),
        "-o",
        "sql",
        *props(url=db, table="logs"),
    )
    assert r.returncode == 0, r.log
    assert len(rows(db)) == 1


def test_output_writes_both_event_formats_and_skips_group_markers(host, tmp_path):
    chunk = (
        group_marker(True)
        + event_v2({"n": 1}, sec=1_700_000_000, nsec=500_000_000)
        + event_classic({"n": 2}, event_time(1_700_000_001, 0))
        + event_classic({"n": 3}, 1_700_000_002)
        + event_classic({"n": 4}, 1_700_000_003.25)
        + group_marker(False)
    )
    frames = write_frames(tmp_path / "f.bin", [chunk])
    db = tmp_path / "o.db"
    r = host.run(
        "-i",
        "feed",
        "-t",
        "app.web",
        *props(file=frames),
        "-o",
        "sql",
        *props(url=db, table="logs"),
    )
    assert r.returncode == 0, r.log
    got = rows(db)
    assert [json.loads(d)["n"] for _, _, d in got] == [1, 2, 3, 4]
    assert {t for t, _, _ in got} == {"app.web"}
    assert got[0][1].startswith("2023-11-14") and ".5" in got[0][1]
    assert r.stats["flush_ok"] == 1 and r.stats["flush_error"] == 0


def test_input_reads_a_table_and_the_cleanup_callback_follows(host, tmp_path):
    src = tmp_path / "src.db"
    conn = sqlite3.connect(src)
    conn.execute("CREATE TABLE ev (id INTEGER PRIMARY KEY, msg TEXT)")
    conn.executemany("INSERT INTO ev (msg) VALUES (?)", [(f"m{i}",) for i in range(50)])
    conn.commit()
    conn.close()
    sink = tmp_path / "sink.bin"
    r = host.run(
        "--interval",
        "200",
        "--first-delay",
        "50",
        "--stop-after-records",
        "50",
        "--duration",
        "30000",
        "-i",
        "sql",
        "-t",
        "db.ev",
        *props(url=src, table="ev", db=tmp_path / "pos.db"),
        "-o",
        "sink",
        *props(file=sink),
    )
    assert r.returncode == 0, r.log
    events = sink_records(sink)
    assert sorted(e[1]["id"] for e in events) == list(range(1, 51))
    assert {e[1]["msg"] for e in events} == {f"m{i}" for i in range(50)}
    assert r.stats["input_errors"] == 0


def test_two_inputs_and_two_outputs_share_one_interpreter(host, tmp_path):
    srcs = []
    for name in ("a", "b"):
        src = tmp_path / f"{name}.db"
        conn = sqlite3.connect(src)
        conn.execute("CREATE TABLE ev (id INTEGER PRIMARY KEY, src TEXT)")
        conn.executemany("INSERT INTO ev (src) VALUES (?)", [(name,)] * 20)
        conn.commit()
        conn.close()
        srcs.append(src)
    out1, out2 = tmp_path / "o1.db", tmp_path / "o2.db"
    r = host.run(
        "--interval",
        "200",
        "--first-delay",
        "50",
        "--stop-after-records",
        "80",
        "--duration",
        "30000",
        "-i",
        "sql",
        "-t",
        "a",
        *props(url=srcs[0], table="ev", db=tmp_path / "pa.db"),
        "-i",
        "sql",
        "-t",
        "b",
        *props(url=srcs[1], table="ev", db=tmp_path / "pb.db"),
        "-o",
        "sql",
        "-m",
        "*",  # Fluent Bit routes nothing to an output without Match (N:M)
        *props(url=out1, table="logs"),
        "-o",
        "sql",
        "-m",
        "*",
        *props(url=out2, table="logs"),
    )
    assert r.returncode == 0, r.log
    # one interpreter: the module-global instance counter runs 1..4 across both .so files
    numbers = sorted(int(n) for n in re.findall(r"instance (\d+) of this process", r.log))
    assert numbers == [1, 2, 3, 4], r.log
    for db in (out1, out2):
        got = rows(db, "SELECT tag, count(*) FROM logs GROUP BY tag ORDER BY tag")
        assert got == [("a", 20), ("b", 20)]


def test_four_workers_flush_10000_chunks_concurrently_without_losing_a_record(host, tmp_path):
    chunks = [b"".join(event_v2({"chunk": c, "i": i}) for i in range(3)) for c in range(10_000)]
    frames = write_frames(tmp_path / "f.bin", chunks)
    db = tmp_path / "o.db"
    r = host.run(
        "--flush",
        "0.01",
        "-i",
        "feed",
        *props(file=frames),
        "-o",
        "sql",
        *props(url=db, table="logs", workers=4, retry_limit="no_limits"),
        timeout=600,
    )
    assert r.returncode == 0, r.log[-3000:]
    assert r.stats["flush_error"] == 0 and r.stats["chunks_dropped"] == 0
    assert rows(db, "SELECT count(*), count(DISTINCT data) FROM logs") == [(30_000, 30_000)]


def test_a_record_nested_2000_deep_on_a_24k_stack_neither_crashes_nor_blocks(host, tmp_path):
    deep = b"\x92\x92\xd7\x00" + b"\0" * 8 + b"\x80\x81\xa4deep" + b"\x91" * 2000 + b"\x01"
    medium = _pack_deep_ok()  # decodable (msgpack's limit is 1024), deep for json/repr
    chunk = event_v2({"ok": 1}) + deep + medium + event_v2({"ok": 2})
    frames = write_frames(tmp_path / "f.bin", [chunk])
    db = tmp_path / "o.db"
    r = host.run(
        "--stack",
        "24576",
        "-i",
        "feed",
        *props(file=frames),
        "-o",
        "sql",
        *props(url=db, table="logs"),
    )
    assert r.returncode == 0, r.log[-3000:]
    assert "Segmentation" not in r.log and "corrupted" not in r.log
    oks = [d for _, _, d in rows(db) if '"ok"' in d]
    assert len(oks) == 2, r.log[-3000:]


def _pack_deep_ok() -> bytes:
    """A v2 event whose body is nested 900 lists deep (packed by hand)."""
    return b"\x92\x92\xd7\x00" + b"\0" * 8 + b"\x80\x81\xa6medium" + b"\x91" * 900 + b"\x01"


def _sitecustomize(tmp_path: Any, code: str) -> dict[str, str]:
    d = tmp_path / "inject"
    d.mkdir()
    (d / "sitecustomize.py").write_text(textwrap.dedent(code))
    return {"PYTHONPATH": str(d)}


def test_a_raising_flush_returns_retry_and_logs_the_traceback(host, tmp_path):
    env = _sitecustomize(
        tmp_path,
        """
        import flbsql.plugin.output as out
        def flush(self, data, tag):
            raise RuntimeError("injected failure in flush")
        out.OutputPlugin.flush = flush
    """,
    )
    frames = write_frames(tmp_path / "f.bin", [event_v2({"a": 1})])
    r = host.run(
        "--retry-scale",
        "0.01",
        "-i",
        "feed",
        *props(file=frames),
        "-o",
        "sql",
        *props(url=tmp_path / "o.db", table="logs", retry_limit=2),
        env=env,
    )
    assert r.returncode == 0, r.log
    assert r.stats["flush_retry"] == 3 and r.stats["flush_ok"] == 0
    assert "Traceback (most recent call last)" in r.log
    assert "RuntimeError: injected failure in flush" in r.log
    assert "flush failed, returning RETRY" in r.log
    assert "cannot be retried" in r.log  # the host (as Fluent Bit) gave up after retry_limit


def test_a_raising_input_logs_and_the_pipeline_keeps_running(host, tmp_path):
    env = _sitecustomize(
        tmp_path,
        """
        import flbsql.plugin.input as inp
        def collect(self):
            raise ValueError("injected failure in collect")
        inp.InputPlugin.collect = collect
    """,
    )
    frames = write_frames(tmp_path / "f.bin", [event_v2({"a": 1})])
    db = tmp_path / "o.db"
    src = tmp_path / "s.db"
    sqlite3.connect(src).execute("CREATE TABLE ev (id INTEGER PRIMARY KEY)").connection.close()
    r = host.run(
        "--interval",
        "100",
        "--first-delay",
        "10",
        "--duration",
        "1500",
        "-i",
        "sql",
        *props(url=src, table="ev", db=tmp_path / "p.db"),
        "-i",
        "feed",
        *props(file=frames),
        "-o",
        "sql",
        "-m",
        "*",  # two inputs: without Match, Fluent Bit routes nothing here
        *props(url=db, table="logs"),
        env=env,
    )
    assert r.returncode == 0, r.log
    assert "ValueError: injected failure in collect" in r.log
    # Fluent Bit ignores the -1 when len is 0 (section 9): the log is the only trace
    assert r.log.count("ValueError: injected failure in collect") >= 3
    assert r.stats["input_collects"] >= 3
    assert len(rows(db)) == 1


@pytest.mark.parametrize(
    ("prop", "expect"),
    [
        (
            "table_name=logs",
            "option 'table_name': unknown option for the output plugin; use 'table'",
        ),
        ("pool.max_lifetime=forever", "option 'pool.max_lifetime': invalid value 'forever'"),
        ("bulk=fast", "option 'bulk': invalid value 'fast': allowed: auto, copy, insert"),
    ],
)
def test_a_bad_property_fails_init_with_one_line_naming_the_key(host, tmp_path, prop, expect):
    frames = write_frames(tmp_path / "f.bin", [event_v2({"a": 1})])
    r = host.run(
        "-i",
        "feed",
        *props(file=frames),
        "-o",
        "sql",
        *props(url=tmp_path / "o.db", table="logs"),
        "-p",
        prop,
    )
    assert r.returncode == 255
    lines = [ln for ln in r.log.splitlines() if expect in ln]
    assert len(lines) == 1, r.log
    assert "failed to initialize" in r.log


def test_a_missing_table_option_names_it(host, tmp_path):
    frames = write_frames(tmp_path / "f.bin", [event_v2({"a": 1})])
    r = host.run("-i", "feed", *props(file=frames), "-o", "sql", *props(url=tmp_path / "o.db"))
    assert r.returncode == 255
    assert "option 'table'" in r.log


def test_metrics_and_background_thread_lines_reach_fluent_bits_logger(host, tmp_path):
    src = tmp_path / "src.db"
    conn = sqlite3.connect(src)
    conn.execute("CREATE TABLE ev (id INTEGER PRIMARY KEY, msg TEXT)")
    conn.executemany("INSERT INTO ev (msg) VALUES (?)", [(f"m{i}",) for i in range(300)])
    conn.commit()
    conn.close()
    r = host.run(
        "--interval",
        "200",
        "--first-delay",
        "50",
        "--duration",
        "2500",
        "-i",
        "sql",
        *props(
            url=src,
            table="ev",
            db=tmp_path / "pos.db",
            rows_per_collect=50,
            fetch_size=50,
            progress_interval="300ms",
            **{"metrics.interval": "1s"},
        ),
        "-o",
        "null",
    )
    assert r.returncode == 0, r.log
    # logged by the reader's own thread, written by the input thread through log_print
    progress = [ln for ln in r.log.splitlines() if "[in_sql] read " in ln]
    assert progress and all(
        re.match(r"^\[\d{4}/\d\d/\d\d [\d:.]+\] \[ info\] ", ln) for ln in progress
    ), r.log
    lines = [ln for ln in r.log.splitlines() if "metrics in_sql" in ln]
    assert lines, r.log
    assert "rows_in=300" in lines[-1] and "rows_out=300" in lines[-1], lines[-1]


@pytest.mark.parametrize(
    "workers, setter",
    [
        (None, "on"),  # none set: out_sql sets one worker itself
        (2, "on"),  # the operator's count stands
        (None, "off"),  # a host that refuses: the engine thread, said once
    ],
)
def test_flushes_run_beside_the_engine_thread_unless_the_host_refuses(
    host, tmp_path, workers, setter
):
    """Fluent Bit gives a proxy output no `workers`; out_sql sets 2 (SQLite) where none is set."""
    frames = write_frames(tmp_path / "f.bin", [event_v2({"i": i}) for i in range(5)])
    db = tmp_path / "o.db"
    extra = {"workers": workers} if workers else {}
    r = host.run(
        "--flush", "0.05", "--setter", setter,
        "-i", "feed", *props(file=frames),
        "-o", "sql", *props(url=db, table="logs", **extra),
    )  # fmt: skip
    assert r.returncode == 0, r.log[-3000:]
    assert rows(db, "SELECT count(*) FROM logs") == [(5,)]
    chosen = "no `workers` set: flushes run on 2 worker threads beside Fluent Bit's engine"
    assert r.log.count(chosen) == (1 if workers is None and setter == "on" else 0), r.log
    engine = "flushes run on Fluent Bit's engine thread"
    assert r.log.count(engine) == (1 if setter == "off" else 0), r.log[-3000:]
    started = r.log.count("worker #")
    assert started == (0 if setter == "off" else (workers or 2)), r.log[-3000:]
