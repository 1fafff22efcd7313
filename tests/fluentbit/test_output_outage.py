"""The output's database restarts 3 times and then stays down for 20 s under steady writes.

A feeder inserts rows into a source table on the shared server; in_sql reads them
and out_sql writes them into a throwaway PostgreSQL cluster (``pg_cluster``), which
the test restarts 3 times and then stops for ``DOWN`` seconds. Settings the case
needs, and why: ``retry_limit no_limits`` (a chunk that failed during the outage is
never dropped), ``storage.type filesystem`` + ``storage.path`` (the backlog lives on
disk, as in production), ``unique_key id`` (retried chunks do not duplicate rows).

Measured per outage, printed and asserted: the first commit within 2 s of the
server's return (the sink's ``at`` column is ``clock_timestamp()`` of each row), no
traceback, and fewer than 5 lines of flbsql's own from the stop to that commit
(Fluent Bit's engine adds one "failed to flush chunk" line per chunk and retry, which
the plugin cannot change; they are counted and printed).
"""

from __future__ import annotations

import os
import time

import psycopg
import pytest

from tests.fix_db import unique_table
from tests.fix_pgcluster import wait_until
from tests.fluentbit.common import Feeder, key_counts, needs_fluent_bit, source_table, wait_rows

pytestmark = [
    needs_fluent_bit,
    pytest.mark.fluentbit,
    pytest.mark.postgres,
    pytest.mark.chaos,
    pytest.mark.slow,
]

RESTARTS = 3
DOWN = float(os.environ.get("FLBSQL_FB_OUTAGE_DOWN", "20"))


def _first_commit_after(url: str, table: str, since: float) -> float | None:
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
            row = conn.execute(
                f"SELECT extract(epoch FROM min(at)) FROM {table} WHERE at > to_timestamp(%s)",
                (since,),
            ).fetchone()
    except psycopg.Error:
        return None
    return None if row is None or row[0] is None else float(row[0])


def test_restarts_and_a_long_outage_lose_nothing_and_duplicate_nothing(
    fluent_bit, pg_db, pg_cluster, tmp_path
):
    db = "fbout"
    pg_cluster.execute(f"DROP DATABASE IF EXISTS {db}")
    pg_cluster.execute(f"CREATE DATABASE {db}")
    sink_url = pg_cluster.url(db)
    sink = unique_table("outage")
    pg_cluster.execute(
        f"CREATE TABLE {sink} (tag text, time timestamptz, id bigint PRIMARY KEY, data jsonb, "
        "at timestamptz NOT NULL DEFAULT clock_timestamp())",
        db,
    )
    src = source_table(pg_db, 0)
    conf = fluent_bit.config(
        service={"storage.path": fluent_bit.storage_path},
        inputs=[
            {
                "name": "sql",
                "tag": "src",
                "url": pg_db.url,
                "table": src,
                "db": tmp_path / "pos.db",
                "storage.type": "filesystem",
            },
        ],
        outputs=[
            {
                "name": "sql",
                "match": "*",
                "url": sink_url,
                "table": sink,
                "columns": "id=id:int",
                "unique_key": "id",
                "retry_limit": "no_limits",
            },
        ],
        http=True,
    )
    feeder = Feeder(pg_db.url, src, per_tick=50, tick=0.1)
    feeder.start()
    run = fluent_bit.start(conf)
    outages = []
    try:
        wait_rows(sink_url, sink, 1, 60, key="id")
        for i in range(RESTARTS + 1):
            time.sleep(3)
            mark = run.log_size()
            pg_cluster.stop("fast")
            if i == RESTARTS:
                time.sleep(DOWN)
            pg_cluster.start()
            back = time.time()
            first: list[float] = []

            def committed(back: float = back, first: list[float] = first) -> bool:
                t = _first_commit_after(sink_url, sink, back)
                if t is not None:
                    first.append(t)
                return t is not None

            assert wait_until(committed, 300, 0.1), f"no commit after outage {i}"
            window = run.log_since(mark)
            outages.append(
                {
                    "outage": "restart" if i < RESTARTS else f"{DOWN:.0f}s down",
                    "first_commit_s": round(first[0] - back, 2),
                    "log_lines": len(lines := [ln for ln in window.splitlines() if ln.strip()]),
                    "flbsql_lines": len(ours := [ln for ln in lines if "_sql]" in ln]),
                    "flbsql": ours,
                    "tracebacks": window.count("Traceback"),
                }
            )
        sent = feeder.stop()
        took = wait_rows(sink_url, sink, sent, 300, key="id")
        time.sleep(3)
        metrics = run.metrics()["output"]["sql.0"]
    finally:
        feeder.halt.set()
        code = run.stop()
    count, distinct = key_counts(sink_url, sink, "id")
    print(
        f"\n{fluent_bit.version()}: sent={sent} count={count} distinct={distinct}, "
        f"caught up {took:.1f}s after the feed stopped; output {metrics}"
    )
    for o in outages:
        print("  ", o)
    assert code == 0, run.log()[-3000:]
    assert (count, distinct) == (sent, sent)
    assert metrics["errors"] == 0 and metrics["dropped_records"] == 0, metrics
    missed = [
        o for o in outages if o["tracebacks"] or o["flbsql_lines"] >= 5 or o["first_commit_s"] > 2
    ]
    assert missed == [], missed
