"""``workers 2`` on out_sql: two flush threads, every record exactly once."""

from __future__ import annotations

import time

import pytest

from tests.fix_db import unique_table
from tests.fluentbit.common import key_counts, needs_fluent_bit, source_table, wait_rows

pytestmark = [needs_fluent_bit, pytest.mark.fluentbit, pytest.mark.postgres]

ROWS = 100_000


def test_two_workers_write_every_record_exactly_once(fluent_bit, pg_db, tmp_path):
    src = source_table(pg_db, ROWS)
    sink = unique_table("workers")
    conf = fluent_bit.config(
        inputs=[
            {"name": "sql", "tag": "src", "url": pg_db.url, "table": src, "db": tmp_path / "pos.db"}
        ],
        outputs=[{"name": "sql", "match": "*", "url": pg_db.url, "table": sink, "workers": 2}],
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
    print(f"\n{fluent_bit.version()}: {ROWS} rows in {took:.1f}s with 2 workers; output {out}")
    assert "Traceback" not in log and "[error]" not in log, log[-3000:]
    for w in (0, 1):
        assert f"worker #{w} started" in log, log[-3000:]
    assert key_counts(pg_db.url, sink) == (ROWS, ROWS)
    assert out["proc_records"] == ROWS and out["errors"] == 0 and out["retries"] == 0, out
