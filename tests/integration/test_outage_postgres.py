"""Outages under load, through the C test host: nothing is lost, everything heals.

The output writes continuously (tens of thousands of small chunks) to a throwaway
PostgreSQL cluster through a TCP proxy. Meanwhile the test cuts every connection
20 times (mid-flush: a flush takes about a millisecond, so most cuts land inside
one) and restarts the server twice. With ``retry_limit no_limits`` the flushes
that fail return FLB_RETRY, never FLB_ERROR, and the table ends with every key.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from tests.fix_host import event_v2, props, write_frames

from flbsql.outcome import Outcome

pytestmark = [pytest.mark.postgres, pytest.mark.chaos, pytest.mark.shim, pytest.mark.slow]

CUTS = int(os.environ.get("FLBSQL_OUTAGE_CUTS", "20"))
RESTARTS = int(os.environ.get("FLBSQL_OUTAGE_RESTARTS", "2"))
RECS_PER_CHUNK = 5
BACKOFF_MAX = 1.0
RETRY_WAIT_MS = 200


def _rows(cluster, db):
    try:
        return cluster.execute("SELECT count(*) FROM t", db)[0][0]
    except Exception:
        return -1


def _wait_progress(cluster, db, after, timeout):
    """Seconds until the table has more than ``after`` rows."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if _rows(cluster, db) > after:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"no progress within {timeout}s after the database returned")


def test_cuts_and_restarts_lose_no_record(host, pg_cluster, proxy_factory, tmp_path):
    db = "outage"
    pg_cluster.execute(f"DROP DATABASE IF EXISTS {db}")
    pg_cluster.execute(f"CREATE DATABASE {db}")
    chunks = int(os.environ.get("FLBSQL_OUTAGE_CHUNKS", "12000"))
    total = chunks * RECS_PER_CHUNK
    frames = write_frames(
        tmp_path / "frames.bin",
        (
            b"".join(
                event_v2({"k": c * RECS_PER_CHUNK + i, "msg": "m" * 20})
                for i in range(RECS_PER_CHUNK)
            )
            for c in range(chunks)
        ),
    )
    proxy = proxy_factory("127.0.0.1", pg_cluster.port)
    url = proxy.url(pg_cluster.url(db))
    log_path = tmp_path / "host.log"
    with open(log_path, "w") as log:
        proc = host.start(
            "--flush",  # 12,000 small chunks: the host dispatches on the flush timer
            "0.05",
            "--retry-wait",
            str(RETRY_WAIT_MS),
            "--stop-after-records",
            str(total),
            "--duration",
            "240000",
            "--grace",
            "30000",
            "-i",
            "feed",
            *props(file=frames),
            "-o",
            "sql",
            *props(
                url=url,
                table="t",
                retry_limit="no_limits",
                connect_timeout="2s",
                statement_timeout="5s",
                **{
                    "pool.backoff_initial": "0.1",
                    "pool.backoff_max": f"{BACKOFF_MAX}s",
                    "pool.check_idle": "1s",
                },
            ),
            stderr=log,
        )
    heal_times = []
    cut_connections = 0
    try:
        _wait_progress(pg_cluster, db, 0, 30)
        for _ in range(CUTS):
            time.sleep(0.25)
            before = _rows(pg_cluster, db)
            cut_connections += proxy.cut()
            heal_times.append(_wait_progress(pg_cluster, db, before, 15))
        for _ in range(RESTARTS):
            before = _rows(pg_cluster, db)
            pg_cluster.restart("fast")
            heal_times.append(_wait_progress(pg_cluster, db, before, 30))
            time.sleep(0.5)
        assert _rows(pg_cluster, db) < total, "the load ended before the outages: raise CHUNKS"
        out, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log_text = log_path.read_text(errors="replace")
    stats = {}
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{"):
            stats = json.loads(line)
            break
    keys = pg_cluster.execute("SELECT (data::jsonb->>'k')::int FROM t", db)
    distinct = {k for (k,) in keys}
    missing = total - len(set(range(total)) & distinct)
    duplicates = len(keys) - len(distinct)
    print(
        f"\noutage: {CUTS} cuts ({cut_connections} connections reset), {RESTARTS} restarts, "
        f"{total} records, missing={missing}, duplicates={duplicates}, "
        f"flush_retry={stats.get('flush_retry')}, flush_error={stats.get('flush_error')}, "
        f"heal max={max(heal_times):.2f}s"
    )
    assert proc.returncode == 0, log_text[-3000:]
    assert missing == 0, f"{missing} records lost\n{log_text[-3000:]}"
    assert distinct == set(range(total))
    assert len(keys) >= total  # at-least-once: a cut between COMMIT and its ack re-sends
    assert stats["flush_error"] == 0 and stats["chunks_dropped"] == 0
    assert stats["flush_retry"] >= CUTS // 2, (
        "the cuts did not hit flushes: the test proves nothing"
    )
    assert cut_connections >= CUTS // 2
    # each outage heals within one backoff step (+ the host's retry wait and a restart)
    assert max(heal_times[:CUTS]) < BACKOFF_MAX * 1.1 + RETRY_WAIT_MS / 1000 + 2.0
    assert "FLB_ERROR" not in log_text and "returning ERROR" not in log_text


def test_startup_with_the_database_down_retries_then_delivers(
    host, pg_cluster, proxy_factory, tmp_path
):
    """Init succeeds with nothing listening; records arrive once the database is up."""
    db = "startup"
    pg_cluster.execute(f"DROP DATABASE IF EXISTS {db}")
    pg_cluster.execute(f"CREATE DATABASE {db}")
    proxy = proxy_factory("127.0.0.1", pg_cluster.port)
    proxy.refuse()  # the database is "down": connection refused
    total = 50
    frames = write_frames(
        tmp_path / "frames.bin", [b"".join(event_v2({"k": i}) for i in range(total))]
    )
    log_path = tmp_path / "host.log"
    with open(log_path, "w") as log:
        proc = host.start(
            "--retry-wait",
            "200",
            "--stop-after-records",
            str(total),
            "--duration",
            "60000",
            "-i",
            "feed",
            *props(file=frames),
            "-o",
            "sql",
            *props(
                url=proxy.url(pg_cluster.url(db)),
                table="t",
                retry_limit="no_limits",
                **{"pool.backoff_initial": "0.2", "pool.backoff_max": "1s"},
            ),
            stderr=log,
        )
    try:
        time.sleep(3)
        assert proc.poll() is None, "the host stopped while the database was down"
        assert _rows(pg_cluster, db) == -1
        proxy.restore()
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log_text = log_path.read_text(errors="replace")
    assert proc.returncode == 0, log_text[-3000:]
    assert "cannot connect" in log_text  # it said so
    assert "flush works again after" in log_text and "failed attempt" in log_text  # healed
    assert _rows(pg_cluster, db) == total


def test_a_flush_after_a_server_restart_is_written_at_once_on_a_new_connection(pg_cluster):
    # the pooled connection died while it waited: without a second attempt the flush
    # failed and the chunk waited seconds for Fluent Bit's retry
    from tests.behaviour.output_helpers import make_writer
    from tests.fix_db import TestDB

    pg_cluster.execute("DROP DATABASE IF EXISTS restarted")
    pg_cluster.execute("CREATE DATABASE restarted")
    db = TestDB("postgresql", pg_cluster.url("restarted"))
    w = make_writer(db, "t")
    try:
        assert w.write(event_v2({"k": 1}), "a") is Outcome.OK
        pg_cluster.restart("fast")
        assert w.write(event_v2({"k": 2}), "a") is Outcome.OK  # no exception, no retry
        assert pg_cluster.execute("SELECT count(*) FROM t", "restarted") == [(2,)]
        assert w.pool.stats()["connects"] == 2
    finally:
        w.pool.close()
