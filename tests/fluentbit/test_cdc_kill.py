"""CDC under 10 SIGKILLs of Fluent Bit: replaying the sink table rebuilds the source table.

in_sql ``mode cdc`` on a ``wal_level=logical`` throwaway cluster captures ``src``
while a workload inserts, updates (some change the key) and deletes; out_sql writes
every change record into a sink table on the shared server (a ``seq`` column keeps
the arrival order). Fluent Bit is killed 10 times, then one clean run catches up.
Settings the case needs, and why: ``storage.type filesystem`` + ``storage.path``
(records the input handed over are on disk when the kill comes) and ``retry_limit
no_limits`` (no chunk dropped).

The replay is what a consumer does with at-least-once CDC: the snapshot rows (``r``)
in arrival order, then the changes in ``(lsn, pos)`` order, once each (a change
re-delivered after a kill has the same pair; chunks replayed from Fluent Bit's
storage may arrive after newer ones). ``r``/``c``/``u``: delete the ``before`` key,
upsert ``after``; ``d``: delete. The result must equal the source table.
"""

from __future__ import annotations

import json
import os
import random
import time
from typing import Any

import psycopg
import pytest

from tests.fix_db import unique_table
from tests.fluentbit.common import needs_fluent_bit
from tests.integration.test_cdc_kill import SEED_ROWS, Workload

pytestmark = [
    needs_fluent_bit,
    pytest.mark.fluentbit,
    pytest.mark.cdc,
    pytest.mark.postgres,
    pytest.mark.chaos,
    pytest.mark.slow,
]

KILLS = int(os.environ.get("FLBSQL_CDC_KILLS", "10"))


def _lsn(text: str) -> tuple[int, int]:
    hi, lo = text.split("/")
    return int(hi, 16), int(lo, 16)


def replay(bodies: list[dict[str, Any]]) -> tuple[dict[int, tuple[Any, ...]], int]:
    """(the rebuilt table, the number of duplicate change records skipped)."""
    snapshot = [b for b in bodies if b["snapshot"]]
    changes: dict[tuple[tuple[int, int], int], dict[str, Any]] = {}
    dups = 0
    for b in bodies:
        if not b["snapshot"]:
            k = (_lsn(b["lsn"]), b["pos"])
            dups += k in changes
            changes[k] = b
    table: dict[int, tuple[Any, ...]] = {}
    for body in snapshot + [changes[k] for k in sorted(changes)]:
        op, before, after = body["op"], body["before"], body["after"]
        if op == "t":
            table.clear()
            continue
        if before is not None:
            table.pop(before["id"], None)
        if op != "d":
            table[after["id"]] = (after["id"], after["a"], after["b"])
    return table, dups


def test_sigkill_ten_times_then_the_sink_replays_to_the_source(fluent_bit, cdc_db, pg_db, tmp_path):
    cdc_db.execute("CREATE TABLE src (id int PRIMARY KEY, a int, b text)")
    cdc_db.execute("ALTER TABLE src REPLICA IDENTITY FULL")
    cdc_db.execute(
        f"INSERT INTO src SELECT i, i %% 10, md5(i::text) FROM generate_series(1, {SEED_ROWS}) i"
    )
    sink = unique_table("cdcsink")
    pg_db.execute(
        f"CREATE TABLE {sink} (seq bigserial PRIMARY KEY, tag text, time timestamptz, data jsonb)"
    )
    conf = fluent_bit.config(
        service={"storage.path": fluent_bit.storage_path},
        inputs=[
            {
                "name": "sql",
                "tag": "cdc",
                **cdc_db.props(tmp_path),
                "tables": "public.src",
                "storage.type": "filesystem",
            },
        ],
        outputs=[
            {
                "name": "sql",
                "match": "*",
                "url": pg_db.url,
                "table": sink,
                "retry_limit": "no_limits",
            },
        ],
    )

    def bodies() -> list[dict[str, Any]]:
        rows = pg_db.query(f"SELECT data::text FROM {sink} ORDER BY seq")
        return [json.loads(r[0]) for r in rows]

    rnd = random.Random(11)
    work = Workload(cdc_db.url)
    work.start()
    arrived = []
    try:
        for _ in range(KILLS):
            run = fluent_bit.start(conf)
            time.sleep(rnd.uniform(1.5, 4.0))
            assert run.alive(), run.log()[-3000:]
            run.kill()
            arrived.append(pg_db.query(f"SELECT count(*) FROM {sink}")[0][0])
    finally:
        work.halt.set()
        work.join(10)
    assert work.error is None, work.error
    with psycopg.connect(cdc_db.url, autocommit=True) as conn:
        source = {r[0]: tuple(r) for r in conn.execute("SELECT id, a, b FROM src")}
    final = fluent_bit.start(conf)
    started = time.monotonic()
    try:
        while True:
            copy, dups = replay(bodies())
            if copy == source or time.monotonic() - started > 120:
                break
            time.sleep(3)
        took = time.monotonic() - started
        time.sleep(3)
    finally:
        assert final.stop() == 0, final.log()[-3000:]
    records = bodies()
    copy, dups = replay(records)
    missing = source.keys() - copy.keys()
    extra = copy.keys() - source.keys()
    differ = [k for k in source.keys() & copy.keys() if source[k] != copy[k]]
    logs = "".join(r.log() for r in fluent_bit.runs)
    print(
        f"\n{fluent_bit.version()}: {KILLS} kills, {work.txns} transactions, sink rows after "
        f"each kill {arrived}, {len(records)} records in the end "
        f"({sum(1 for r in records if r['snapshot'])} snapshot), {dups} duplicate changes; "
        f"replay equal after {took:.0f}s of the final run: {copy == source}; "
        f"tracebacks={logs.count('Traceback')}"
    )
    assert work.txns > 100
    assert arrived[-1] > 0, "nothing arrived before the final run"
    assert sum(1 for r in records if r["op"] == "r") >= SEED_ROWS
    assert not missing and not extra and not differ, (
        f"{len(missing)} missing, {len(extra)} extra, {len(differ)} differ"
    )
    assert "Traceback" not in final.log(), final.log()[-3000:]
