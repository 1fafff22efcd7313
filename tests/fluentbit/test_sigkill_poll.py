"""SIGKILL Fluent Bit 10 times while in_sql streams a PostgreSQL table into out_sql.

Source table -> in_sql (poll) -> out_sql into another PostgreSQL table. Settings the
case needs, and why: ``storage.type filesystem`` on the input with ``storage.path``
(chunks already taken from in_sql must survive a kill; in memory they die with the
process), ``retry_limit no_limits`` (a chunk is never dropped), ``unique_key id`` with
``columns id=id:int`` (a key column: replayed chunks do not duplicate rows). After the
kills one clean run must end with every key exactly once.

``FLBSQL_FB_KILL_ROWS`` (default 1,000,000) sizes the table for development runs.
"""

from __future__ import annotations

import os
import random
import time

import pytest

from tests.fix_db import unique_table
from tests.fluentbit.common import key_counts, needs_fluent_bit, source_table, wait_rows

pytestmark = [
    needs_fluent_bit,
    pytest.mark.fluentbit,
    pytest.mark.postgres,
    pytest.mark.chaos,
    pytest.mark.slow,
]

ROWS = int(os.environ.get("FLBSQL_FB_KILL_ROWS", "1000000"))
KILLS = 10


def test_sigkill_ten_times_during_a_poll_stream_then_every_key_once(fluent_bit, pg_db, tmp_path):
    src = source_table(pg_db, ROWS)
    sink = unique_table("killsink")
    key = "id"
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
                "url": pg_db.url,
                "table": sink,
                "columns": "id=id:int",
                "unique_key": "id",
                "retry_limit": "no_limits",
            },
        ],
    )
    rng = random.Random(ROWS)
    before = []
    for _ in range(KILLS):
        run = fluent_bit.start(conf)
        time.sleep(rng.uniform(1.5, 5.0))
        assert run.alive(), run.log()[-3000:]
        run.kill()
        before.append(key_counts(pg_db.url, sink, key)[0])
    final = fluent_bit.start(conf)
    try:
        took = wait_rows(pg_db.url, sink, ROWS, 120 + ROWS / 5000, key=key)
        time.sleep(3)  # anything extra would land now
    finally:
        assert final.stop() == 0, final.log()[-3000:]
    count, distinct = key_counts(pg_db.url, sink, key)
    lo, hi = pg_db.query(f"SELECT min(id), max(id) FROM {sink}")[0]
    logs = "".join(r.log() for r in fluent_bit.runs)
    print(
        f"\n{fluent_bit.version()}: {ROWS} rows, {KILLS} kills; rows in the sink after each "
        f"kill {before}; final run {took:.0f}s; count={count} distinct={distinct} "
        f"tracebacks={logs.count('Traceback')}"
    )
    mid = sum(1 for b in before if b < ROWS)
    assert mid >= (KILLS if ROWS >= 1_000_000 else 1), f"only {mid} kills landed mid-stream"
    assert (count, distinct, lo, hi) == (ROWS, ROWS, 1, ROWS)
    assert "Traceback" not in final.log(), final.log()[-3000:]
