"""Real Fluent Bit: one input reads a schema's tables and rewrite_tag routes them by
``_table``; two Fluent Bit processes read a table as shards 0/2 and 1/2."""

from __future__ import annotations

import secrets

import pytest

from tests.fix_db import unique_table
from tests.fluentbit.common import key_counts, needs_fluent_bit, source_table, wait_rows

pytestmark = [needs_fluent_bit, pytest.mark.fluentbit, pytest.mark.postgres]


def test_a_schema_of_tables_routed_per_table_by_rewrite_tag(fluent_bit, pg_db, tmp_path):
    schema = f"flbsql_t_{secrets.token_hex(4)}"
    sizes = {"orders": 2000, "payments": 300, "refunds": 7}
    pg_db.execute(f"CREATE SCHEMA {schema}")
    sink = unique_table("many_sink")
    try:
        for t, n in sizes.items():
            pg_db.execute(f"CREATE TABLE {schema}.{t} (id bigint PRIMARY KEY, v text)")
            pg_db.execute(f"INSERT INTO {schema}.{t} SELECT g, 'v' FROM generate_series(1, {n}) g")
        conf = fluent_bit.config(
            inputs=[
                {
                    "name": "sql",
                    "tag": "db.app",
                    "url": pg_db.url,
                    "tables": f"{schema}.*",
                    "db": tmp_path / "pos.db",
                }
            ],
            outputs=[{"name": "sql", "match": "db.*", "url": pg_db.url, "table": sink}],
        )
        conf.write_text(
            conf.read_text()
            + "\n[FILTER]\n    Name rewrite_tag\n    Match db.app\n"
            + "    Rule $_table ^(.+)$ db.$1 false\n"
        )
        run = fluent_bit.start(conf)
        try:
            wait_rows(pg_db.url, sink, sum(sizes.values()), 60)
        finally:
            assert run.stop() == 0, run.log()[-3000:]
        log = run.log()
        assert "Traceback" not in log and "[error]" not in log, log[-3000:]
        got = dict(pg_db.query(f"SELECT tag, count(*) FROM {sink} GROUP BY tag"))
        assert got == {f"db.{schema}.{t}": n for t, n in sizes.items()}
    finally:
        pg_db.execute(f"DROP SCHEMA {schema} CASCADE")
        pg_db.execute(f"DROP TABLE IF EXISTS {sink}")


def test_two_fluent_bits_read_a_table_as_two_shards(fluent_bit, pg_db, tmp_path):
    rows = 20_000
    src = source_table(pg_db, rows)
    sink = unique_table("shard_sink")
    runs = []
    try:
        for i in range(2):
            conf = fluent_bit.config(
                inputs=[
                    {
                        "name": "sql",
                        "tag": "src",
                        "url": pg_db.url,
                        "table": src,
                        "shard": f"{i}/2",
                        "db": tmp_path / f"pos{i}.db",
                    }
                ],
                outputs=[{"name": "sql", "match": "*", "url": pg_db.url, "table": sink}],
            )
            runs.append(fluent_bit.start(conf))
        wait_rows(pg_db.url, sink, rows, 90)
    finally:
        for run in runs:
            assert run.stop() == 0, run.log()[-3000:]
    try:
        for run in runs:
            assert "Traceback" not in run.log() and "[error]" not in run.log()
        assert key_counts(pg_db.url, sink) == (rows, rows)
    finally:
        pg_db.execute(f"DROP TABLE IF EXISTS {src}")
        pg_db.execute(f"DROP TABLE IF EXISTS {sink}")
