"""What an operator reads when a flush fails: one line per event, tracebacks only for bugs."""

from __future__ import annotations

import socket

import pytest

from tests.fix_host import event_v2, props, write_frames

pytestmark = pytest.mark.shim


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.postgres
def test_a_database_that_refuses_connections_logs_one_line_per_failure_and_no_traceback(
    host, tmp_path
):
    frames = write_frames(tmp_path / "f.bin", [event_v2({"a": 1})])
    url = f"postgresql://nobody@127.0.0.1:{_closed_port()}/nothing"
    r = host.run(
        "--retry-scale",
        "0.01",
        "-i",
        "feed",
        *props(file=frames),
        "-o",
        "sql",
        *props(url=url, table="logs", retry_limit=2, **{"pool.backoff_initial": "0.05"}),
    )
    assert r.returncode == 0, r.log
    assert r.stats["flush_retry"] == 3 and r.stats["flush_ok"] == 0
    assert "Traceback" not in r.log, r.log
    failed = [line for line in r.log.splitlines() if "flush failed" in line]
    assert len(failed) == 1, r.log  # the first of a run; the repeats are at debug
    assert "[ warn]" in failed[0] and "cannot connect" in failed[0], failed[0]
    assert "Fluent Bit retries the chunk (tag feed" in failed[0], failed[0]


def test_a_missing_table_without_auto_create_drops_the_chunk_with_one_error_line(host, tmp_path):
    frames = write_frames(tmp_path / "f.bin", [event_v2({"a": 1})])
    r = host.run(
        "-i",
        "feed",
        *props(file=frames),
        "-o",
        "sql",
        *props(url=tmp_path / "o.db", table="absent", auto_create_table="off"),
    )
    assert r.stats["flush_error"] == 1 and r.stats["flush_ok"] == 0, r.log
    assert "Traceback" not in r.log, r.log
    failed = [line for line in r.log.splitlines() if "flush failed" in line]
    assert len(failed) == 1 and "[error]" in failed[0] and "absent" in failed[0], r.log
    assert "is dropped: retrying cannot help" in failed[0], failed[0]
