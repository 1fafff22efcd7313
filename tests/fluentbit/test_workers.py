"""Flush threads of out_sql: ``workers 2`` as set, or its own where none is; every record once."""

from __future__ import annotations

import time

import pytest

from tests.fix_db import unique_table
from tests.fluentbit.common import key_counts, needs_fluent_bit, source_table, wait_rows

pytestmark = [needs_fluent_bit, pytest.mark.fluentbit, pytest.mark.postgres]

ROWS = 100_000


@pytest.mark.parametrize("workers", [2, None])
def test_workers_write_every_record_exactly_once(fluent_bit, pg_db, tmp_path, workers):
    """``workers 2``: two threads. None set: out_sql sets two itself (fluent-bit-abi.md §8.2)."""
    src = source_table(pg_db, ROWS)
    sink = unique_table("workers")
    conf = fluent_bit.config(
        inputs=[
            {"name": "sql", "tag": "src", "url": pg_db.url, "table": src, "db": tmp_path / "pos.db"}
        ],
        outputs=[
            {"name": "sql", "match": "*", "url": pg_db.url, "table": sink}
            | ({"workers": workers} if workers else {})
        ],
        http=True,
    )
    run = fluent_bit.start(conf)
    try:
        took = wait_rows(pg_db.url, sink, ROWS, 120)
        time.sleep(3)  # a duplicate flush would land now
        metrics = run.metrics()
    finally:
        assert run.stop() == 0, run.log()[-3000:]
    log = run.log()
    out = metrics["output"]["sql.0"]
    print(f"\n{fluent_bit.version()}: {ROWS} rows in {took:.1f}s, workers {workers}; {out}")
    assert "Traceback" not in log and "[error]" not in log, log[-3000:]
    for w in range(2):  # None: two for a server database (Capabilities.writers)
        assert f"worker #{w} started" in log, log[-3000:]
    assert "worker #2 started" not in log, log[-3000:]
    assert ("no `workers` set: flushes run on 2 worker threads" in log) == (workers is None), log
    assert "flushes run on Fluent Bit's engine thread" not in log, log[-3000:]
    assert key_counts(pg_db.url, sink) == (ROWS, ROWS)
    assert out["proc_records"] == ROWS and out["errors"] == 0 and out["retries"] == 0, out
