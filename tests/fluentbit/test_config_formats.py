"""Classic and YAML configs (plugins from ``plugins_file`` / ``plugins:``) give the same rows."""

from __future__ import annotations

import pytest

from tests.fix_db import unique_table
from tests.fluentbit.common import key_counts, needs_fluent_bit, source_table, wait_rows

pytestmark = [needs_fluent_bit, pytest.mark.fluentbit, pytest.mark.postgres]

ROWS = 3000


def test_classic_and_yaml_run_the_same_pipeline_to_the_same_rows(fluent_bit, pg_db, tmp_path):
    src = source_table(pg_db, ROWS)
    rows = {}
    for fmt in ("classic", "yaml"):
        sink = unique_table(f"fmt_{fmt}")
        conf = fluent_bit.config(
            inputs=[
                {
                    "name": "sql",
                    "tag": "src",
                    "url": pg_db.url,
                    "table": src,
                    "db": tmp_path / f"pos-{fmt}.db",
                },
            ],
            outputs=[{"name": "sql", "match": "*", "url": pg_db.url, "table": sink}],
            fmt=fmt,
        )
        run = fluent_bit.start(conf)
        try:
            wait_rows(pg_db.url, sink, ROWS, 60)
            assert run.alive(), run.log()[-3000:]
        finally:
            assert run.stop() == 0, run.log()[-3000:]
        log = run.log()
        assert "Traceback" not in log and "[error]" not in log, log[-3000:]
        assert key_counts(pg_db.url, sink) == (ROWS, ROWS), log[-3000:]
        rows[fmt] = pg_db.query(f"SELECT tag, data::jsonb FROM {sink} ORDER BY 2::text")
    print(f"\n{fluent_bit.version()}: {len(rows['classic'])} rows in classic and YAML")
    assert rows["classic"] == rows["yaml"]
    assert rows["classic"][0] == ("src", {"id": 1, "msg": "row 1"})
