"""One poison record in a 5,000-record chunk: 4,999 rows, 1 dead letter naming the column.

in_sql hands the 5,000-row source table over in one collect (``rows_per_collect``
defaults to 20,000), which Fluent Bit flushes as one chunk. Row 2,500's ``host`` is
40 characters long, and out_sql maps ``host`` to ``string(16)``: PostgreSQL refuses
that value. Settings the case needs: ``columns`` (a typed column to violate) and
``dead_letter_table`` (without it the record only goes to the log).
"""

from __future__ import annotations

import re
import time

import pytest

from tests.fix_db import unique_table
from tests.fluentbit.common import needs_fluent_bit, wait_rows

pytestmark = [needs_fluent_bit, pytest.mark.fluentbit, pytest.mark.postgres, pytest.mark.chaos]

ROWS = 5000
POISON = 2500


def test_a_poison_record_is_dead_lettered_and_the_chunk_commits(fluent_bit, pg_db, tmp_path):
    src, sink, dead = unique_table("psrc"), unique_table("poison"), unique_table("dlq")
    pg_db.execute(f"CREATE TABLE {src} (id bigint PRIMARY KEY, status int, host text, msg text)")
    pg_db.execute(
        f"INSERT INTO {src} SELECT g, 200, CASE WHEN g = {POISON} THEN repeat('h', 40) "
        "ELSE 'web-1' END, 'line ' || g FROM generate_series(1, %s) g",
        (ROWS,),
    )
    conf = fluent_bit.config(
        inputs=[
            {"name": "sql", "tag": "src", "url": pg_db.url, "table": src, "db": tmp_path / "pos.db"}
        ],
        outputs=[
            {
                "name": "sql",
                "match": "*",
                "url": pg_db.url,
                "table": sink,
                "columns": "id=id:int,status=status:int,host=host:string(16),msg=msg:text",
                "dead_letter_table": dead,
            },
        ],
        http=True,
    )
    run = fluent_bit.start(conf)
    try:
        wait_rows(pg_db.url, sink, ROWS - 1, 60, key="id")
        time.sleep(3)
        metrics = run.metrics()
        storage = metrics["input"]["sql.0"]
        out = metrics["output"]["sql.0"]
    finally:
        assert run.stop() == 0, run.log()[-3000:]
    log = run.log()
    ids = {r[0] for r in pg_db.query(f"SELECT id FROM {sink}")}
    (n_rows,) = pg_db.query(f"SELECT count(*) FROM {sink}")[0]
    letters = pg_db.query(f"SELECT error, record FROM {dead}")
    print(
        f"\n{fluent_bit.version()}: {n_rows} rows, {len(letters)} dead letter(s): "
        f"{[e[:120] for e, _ in letters]}; input {storage}; output {out}"
    )
    assert n_rows == ROWS - 1 and ids == set(range(1, ROWS + 1)) - {POISON}
    assert len(letters) == 1
    error, record = letters[0]
    # flbsql's own wording, or PostgreSQL's COPY context ("..., line 2500, column host: ...")
    assert re.search(r"column '?host\b", error), error
    assert f'"id": {POISON}' in record or f'"id":{POISON}' in record, record
    # the chunk was flushed once, with FLB_OK: no retry, no error, all 5,000 records processed
    assert out["proc_records"] == ROWS and out["retries"] == 0 and out["errors"] == 0, out
    assert "Traceback" not in log, log[-3000:]
