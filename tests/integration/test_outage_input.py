"""The input through outages: it keeps its position, skips nothing, and heals.

``in_sql`` reads a PostgreSQL table in small batches through the TCP proxy while
the test cuts the connections, then refuses connections for a while. Every row
must reach the sink output; a batch whose read was cut is read again, so no key
is skipped, and the position never moves past a batch Fluent Bit did not take.
"""

from __future__ import annotations

import time

import pytest
from tests.fix_host import props, sink_records

pytestmark = [pytest.mark.postgres, pytest.mark.chaos, pytest.mark.shim, pytest.mark.slow]

ROWS = 3000


def test_input_keeps_its_position_across_cuts_and_an_outage(host, pg_db, pg_proxy, tmp_path):
    pg_db.execute("DROP TABLE IF EXISTS src_outage")
    pg_db.execute("CREATE TABLE src_outage (id int PRIMARY KEY, pad text)")
    pg_db.execute(
        "INSERT INTO src_outage SELECT g, repeat('p', 200) FROM generate_series(1, %s) g", (ROWS,)
    )
    sink = tmp_path / "sink.bin"
    log_path = tmp_path / "host.log"
    with open(log_path, "w") as log:
        proc = host.start(
            "--interval",
            "50",
            "--first-delay",
            "50",
            "--stop-after-records",
            str(ROWS),
            "--duration",
            "90000",
            "-i",
            "sql",
            *props(
                url=pg_proxy.url(pg_db.url),
                table="src_outage",
                db=tmp_path / "pos.db",
                rows_per_collect=20,
                fetch_size=20,
                poll_interval="50ms",
                connect_timeout="2s",
                statement_timeout="5s",
                **{"pool.backoff_initial": "0.1", "pool.backoff_max": "1s"},
            ),
            "-o",
            "sink",
            *props(file=sink),
            stderr=log,
        )
    cuts = 0
    try:
        time.sleep(1.0)
        for _ in range(10):
            cuts += pg_proxy.cut()
            time.sleep(0.3)
        pg_proxy.refuse()
        time.sleep(2.0)
        read_during_outage = len(sink_records(sink)) if sink.exists() else 0
        time.sleep(1.0)
        assert (len(sink_records(sink)) if sink.exists() else 0) == read_during_outage
        assert proc.poll() is None, "the host stopped during the outage"
        pg_proxy.restore()
        proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log_text = log_path.read_text(errors="replace")
    ids = [e[1]["id"] for e in sink_records(sink)]
    print(
        f"\ninput outage: {cuts} connections cut, outage 3 s, {len(ids)} events, "
        f"{len(set(ids))} distinct, read before the outage ended: {read_during_outage}"
    )
    assert proc.returncode == 0, log_text[-3000:]
    assert read_during_outage < ROWS, "the outage came too late to test anything"
    assert set(ids) == set(range(1, ROWS + 1)), (
        f"skipped: {sorted(set(range(1, ROWS + 1)) - set(ids))[:20]}"
    )
