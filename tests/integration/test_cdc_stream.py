"""The change stream: operations, old rows, TOAST, tables, DDL, big transactions, restarts."""

from __future__ import annotations

import io
import time
from typing import Any

import msgpack
import psycopg
import pytest
from tests.fix_pglogical import drain, open_source

from flbsql.cdc import SlotLostError
from flbsql.cdc.source import CONFIRM_DELAY
from flbsql.errors import TerminalError

pytestmark = [pytest.mark.cdc, pytest.mark.postgres]


def _changes(records: list[dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    return [(r["op"], r["before"], r["after"]) for r in records if not r["snapshot"]]


def test_operations_and_old_rows(cdc_db: Any, tmp_path: Any) -> None:
    # snapshot never: with a snapshot, a row inserted right after Init may be read by
    # the snapshot too (op r, and the change marked overlap), which is correct but
    # not what these stream-only tests count.
    cdc_db.execute(
        "CREATE TABLE d (id int PRIMARY KEY, v text);"
        "CREATE TABLE f (id int PRIMARY KEY, v text);"
        "ALTER TABLE f REPLICA IDENTITY FULL"
    )
    src = open_source(cdc_db.props(tmp_path, tables="public.d,f", snapshot="never"))
    try:
        for t in ("d", "f"):
            cdc_db.execute(f"INSERT INTO {t} VALUES (1, 'a')")
            cdc_db.execute(f"UPDATE {t} SET v = 'b' WHERE id = 1")
            cdc_db.execute(f"UPDATE {t} SET id = 2 WHERE id = 1")
            cdc_db.execute(f"DELETE FROM {t} WHERE id = 2")
            cdc_db.execute(f"TRUNCATE {t}")
        recs = drain(src, lambda r: len(r) >= 10)
    finally:
        src.close()
    d = [r for r in recs if r["table"] == "public.d"]
    f = [r for r in recs if r["table"] == "public.f"]
    assert _changes(d) == [
        ("c", None, {"id": 1, "v": "a"}),
        ("u", None, {"id": 1, "v": "b"}),
        ("u", {"id": 1}, {"id": 2, "v": "b"}),
        ("d", {"id": 2}, None),
        ("t", None, None),
    ]
    assert _changes(f) == [
        ("c", None, {"id": 1, "v": "a"}),
        ("u", {"id": 1, "v": "a"}, {"id": 1, "v": "b"}),
        ("u", {"id": 1, "v": "b"}, {"id": 2, "v": "b"}),
        ("d", {"id": 2, "v": "b"}, None),
        ("t", None, None),
    ]
    for r in recs:
        assert r["xid"] > 0 and r["commit_time"].endswith("+00:00") and "/" in r["lsn"]
    lsns = [tuple(int(x, 16) for x in r["lsn"].split("/")) for r in recs]
    assert lsns == sorted(lsns)


def test_unchanged_toast_from_old_row_or_marker(cdc_db: Any, tmp_path: Any) -> None:
    big = "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 400))"
    cdc_db.execute(
        "CREATE TABLE d (id int PRIMARY KEY, n int, big text);"
        "CREATE TABLE f (id int PRIMARY KEY, n int, big text);"
        "ALTER TABLE f REPLICA IDENTITY FULL"
    )
    src = open_source(
        cdc_db.props(tmp_path, tables="public.d,public.f", toast_marker="<toast>", snapshot="never")
    )
    try:
        for t in ("d", "f"):
            cdc_db.execute(f"INSERT INTO {t} VALUES (1, 0, {big})")
            cdc_db.execute(f"UPDATE {t} SET n = 1")
        recs = drain(src, lambda r: len(r) >= 4)
    finally:
        src.close()
    by = {(r["table"], r["op"]): r for r in recs}
    value_d = by["public.d", "c"]["after"]["big"]
    assert len(value_d) == 12800
    assert by["public.d", "u"]["after"] == {"id": 1, "n": 1, "big": "<toast>"}
    value_f = by["public.f", "c"]["after"]["big"]
    assert by["public.f", "u"]["after"] == {"id": 1, "n": 1, "big": value_f}


def test_ddl_is_followed(cdc_db: Any, tmp_path: Any) -> None:
    cdc_db.execute("CREATE TABLE t (id int PRIMARY KEY, a int)")
    src = open_source(cdc_db.props(tmp_path, tables="t", snapshot="never"))
    try:
        cdc_db.execute("INSERT INTO t VALUES (1, 1)")
        cdc_db.execute("ALTER TABLE t ADD COLUMN j jsonb; ALTER TABLE t ALTER a TYPE numeric")
        cdc_db.execute("""INSERT INTO t VALUES (2, 2.5, '{"x": [1]}')""")
        cdc_db.execute("ALTER TABLE t DROP COLUMN a")
        cdc_db.execute("UPDATE t SET j = '1' WHERE id = 1")
        recs = drain(src, lambda r: len(r) >= 3)
    finally:
        src.close()
    assert [r["after"] for r in recs] == [
        {"id": 1, "a": 1},
        {"id": 2, "a": "2.5", "j": {"x": [1]}},
        {"id": 1, "j": 1},
    ]


def test_large_transaction_is_chunked_and_complete(cdc_db: Any, tmp_path: Any) -> None:
    cdc_db.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    src = open_source(
        cdc_db.props(
            tmp_path,
            tables="t",
            fetch_size=100,
            snapshot="never",
            rows_per_collect=300,
            bytes_per_collect="64k",
        )
    )
    batches = []
    try:
        cdc_db.execute("INSERT INTO t SELECT i, repeat('x', 50) FROM generate_series(1, 5000) i")
        deadline = time.monotonic() + 30
        recs: list[dict[str, Any]] = []
        while len(recs) < 5000 and time.monotonic() < deadline:
            data = b"".join(src.next_batch())
            if not data:
                time.sleep(0.02)
                continue
            batch = list(msgpack.Unpacker(io.BytesIO(data), raw=False))
            batches.append(len(batch))
            recs.extend(e[1] for e in batch)
            src.commit()
            src.landed(1)  # the engine took it into a chunk
        queued_max = src.queue.max_bytes
    finally:
        src.close()
    assert sorted(r["after"]["id"] for r in recs) == list(range(1, 5001))
    assert [r["pos"] for r in recs] == list(range(5000))
    assert len({r["lsn"] for r in recs}) == 1
    assert max(batches) <= 300 and len(batches) >= 17
    assert queued_max <= 1 << 20


def test_restart_resumes_without_loss(cdc_db: Any, tmp_path: Any) -> None:
    cdc_db.execute("CREATE TABLE t (id int PRIMARY KEY)")
    props = cdc_db.props(tmp_path, tables="t", snapshot="never")
    seen: list[dict[str, Any]] = []
    src = open_source(props)
    try:
        for i in range(1, 21):
            cdc_db.execute(f"INSERT INTO t VALUES ({i})")
        drain(src, lambda r: len(r) >= 20, out=seen)
        time.sleep(CONFIRM_DELAY + 0.5)  # the worker confirms what was taken
    finally:
        src.close()
    for i in range(21, 41):
        cdc_db.execute(f"INSERT INTO t VALUES ({i})")
    src = open_source(props)
    again: list[dict[str, Any]] = []
    try:
        drain(src, lambda r: any(x["after"]["id"] == 40 for x in r), out=again)
    finally:
        src.close()
    ids = [r["after"]["id"] for r in again]
    assert ids == list(range(21, 41)), "resumed exactly after the confirmed position"
    assert not any(r["snapshot"] for r in again)


def test_snapshot_resumes_and_overlap_is_marked(cdc_db: Any, tmp_path: Any) -> None:
    cdc_db.execute("CREATE TABLE t (k text, n int, v int, PRIMARY KEY (k, n))")
    cdc_db.execute("INSERT INTO t SELECT chr(97 + i %% 26), i, 0 FROM generate_series(1, 100) i")
    with psycopg.connect(cdc_db.url, autocommit=True) as c:  # an admin made both beforehand
        c.execute(f"CREATE PUBLICATION {cdc_db.publication} FOR TABLE t")
        c.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (cdc_db.slot,))
    cdc_db.execute("UPDATE t SET v = 1 WHERE n <= 3")  # after the slot, before the snapshot
    props = cdc_db.props(tmp_path, tables="t", fetch_size=10)
    src = open_source(props)
    first: list[dict[str, Any]] = []
    try:
        src.pause()
        src.resume()
        drain(src, lambda r: len(r) >= 30, out=first)
        time.sleep(CONFIRM_DELAY + 0.5)
    finally:
        src.close()
    src = open_source(props)
    rest: list[dict[str, Any]] = []
    try:
        drain(src, lambda r: sum(x["op"] == "u" for x in r) >= 3, out=rest)
        cdc_db.execute("UPDATE t SET v = 2 WHERE n = 50")
        drain(src, lambda r: sum(x["op"] == "u" for x in r) >= 4, out=rest)
    finally:
        src.close()
    snap = [r for r in first + rest if r["op"] == "r"]
    keys = [(r["after"]["k"], r["after"]["n"]) for r in snap]
    assert sorted(set(keys)) == sorted((chr(97 + i % 26), i) for i in range(1, 101))
    assert len(keys) - len(set(keys)) <= 10, "at most the unconfirmed chunk is read again"
    assert keys[:30] == sorted(keys[:30]), "snapshot in key order (composite, text first)"
    updates = [r for r in rest if r["op"] == "u"]
    assert [u["overlap"] for u in updates] == [True, True, True, False]
    assert all(r["snapshot"] for r in snap) and not any(u["snapshot"] for u in updates)


def test_dropped_slot_is_a_loud_error_never_recreated(cdc_db: Any, tmp_path: Any) -> None:
    cdc_db.execute("CREATE TABLE t (id int PRIMARY KEY)")
    props = cdc_db.props(tmp_path, tables="t")
    open_source(props).close()
    with psycopg.connect(cdc_db.url, autocommit=True) as c:
        c.execute("SELECT pg_drop_replication_slot(%s)", (cdc_db.slot,))
    with pytest.raises(SlotLostError, match="does not exist"):
        open_source(props)
    with psycopg.connect(cdc_db.url, autocommit=True) as c:
        n = c.execute(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = %s", (cdc_db.slot,)
        ).fetchone()
    assert n == (0,)


def test_missing_replication_privilege_and_ownership(cdc_db: Any, tmp_path: Any) -> None:
    cdc_db.execute("CREATE TABLE t (id int PRIMARY KEY)")
    cdc_db.execute(
        "DROP ROLE IF EXISTS plain; CREATE ROLE plain LOGIN;"
        "DROP ROLE IF EXISTS repl; CREATE ROLE repl LOGIN REPLICATION;"
        "GRANT SELECT ON t TO plain, repl"
    )
    base = cdc_db.url.replace("postgres@", "{}@")
    with pytest.raises(TerminalError, match="REPLICATION"):
        open_source({**cdc_db.props(tmp_path, tables="t"), "url": base.format("plain")})
    with pytest.raises(TerminalError, match="owner"):
        open_source({**cdc_db.props(tmp_path, tables="t"), "url": base.format("repl")})


def test_wal_level_not_logical(pg_db: Any, tmp_path: Any) -> None:
    props = {"url": pg_db.url, "mode": "cdc", "tables": "public.t", "db": str(tmp_path / "p.db")}
    with pytest.raises(TerminalError, match="wal_level is 'replica'"):
        open_source(props)


def test_heartbeat_measures_lag(cdc_db: Any, tmp_path: Any) -> None:
    cdc_db.execute("CREATE TABLE t (id int PRIMARY KEY)")
    src = open_source(cdc_db.props(tmp_path, tables="t", heartbeat_interval="200ms"))
    try:
        deadline = time.monotonic() + 10
        while src.worker.counters["heartbeats"] < 2 and time.monotonic() < deadline:
            src.next_batch()
            time.sleep(0.05)
        assert src.worker.counters["heartbeats"] >= 2
        assert src.worker.lag is not None and src.worker.lag < 2.0
    finally:
        src.close()


def test_lost_slot_is_detected_and_never_recreated(
    cdc_db: Any, pg_logical: Any, tmp_path: Any
) -> None:
    cdc_db.execute("CREATE TABLE t (id int PRIMARY KEY, pad text)")
    props = cdc_db.props(tmp_path, tables="t")
    open_source(props).close()
    pg_logical.execute("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
    pg_logical.execute("SELECT pg_reload_conf()")
    try:
        for _ in range(4):  # WAL beyond the limit, then a checkpoint invalidates the slot
            cdc_db.execute(
                "INSERT INTO t SELECT i, repeat('x', 500) FROM generate_series("
                "(SELECT coalesce(max(id), 0) + 1 FROM t), "
                "(SELECT coalesce(max(id), 0) + 2000 FROM t)) i"
            )
            cdc_db.execute("SELECT pg_switch_wal()")
        pg_logical.execute("CHECKPOINT")
        status = pg_logical.execute(
            f"SELECT wal_status FROM pg_replication_slots WHERE slot_name = '{cdc_db.slot}'"
        )
        assert status == [("lost",)]
        with pytest.raises(SlotLostError, match="lost"):
            open_source(props)
        status = pg_logical.execute(
            f"SELECT wal_status FROM pg_replication_slots WHERE slot_name = '{cdc_db.slot}'"
        )
        assert status == [("lost",)], "the lost slot is left alone, not recreated"
    finally:
        pg_logical.execute("ALTER SYSTEM RESET max_slot_wal_keep_size")
        pg_logical.execute("SELECT pg_reload_conf()")


def test_the_cdc_input_counts_its_connections_in_the_metrics(cdc_db: Any, tmp_path: Any) -> None:
    # the metrics line said db_connects=0 while connected: CDC has no pool
    from flbsql.metrics import Metrics
    from flbsql.settings import parse

    cdc_db.execute("CREATE TABLE m (id int PRIMARY KEY)")
    props = cdc_db.props(tmp_path, tables="public.m", snapshot="never")
    src = open_source(props)
    try:
        cdc_db.execute("INSERT INTO m VALUES (1)")
        assert len(drain(src, lambda r: len(r) >= 1)) == 1
        metrics = Metrics.from_config(parse("input", props.get), "in_sql", "m")
        metrics.attach_pool(src.connection_stats)
        snap = metrics.snapshot()
        assert snap["db_connects"] == 2  # the main and the decoding connection
        assert snap["db_connect_failures"] == 0
        metrics.close()
    finally:
        src.close()


def test_a_backlog_read_ahead_delivers_every_change_once_in_order(
    cdc_db: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    """Many full peeks, each read ahead while the last decodes; a connection killed midway.

    The read ahead consumes the reader slot: a peek it read and then dropped would lose
    those changes unless the reader slot is copied again from the durable one. While the
    backlog lasts the stream says it is behind (a collect waits for a whole batch); once
    it caught up it does not (changes trickling in are not held back).
    """
    from flbsql.cdc import stream

    monkeypatch.setattr(stream, "NCHANGES", 50)  # 3,000 changes: 60+ peeks
    cdc_db.execute("CREATE TABLE t (id int PRIMARY KEY)")
    src = open_source(cdc_db.props(tmp_path, tables="t", snapshot="never"))
    seen: list[dict[str, Any]] = []
    try:
        cdc_db.execute("INSERT INTO t VALUES (0)")
        drain(src, lambda r: len(r) >= 1, out=seen)  # the slot exists: a backlog builds up
        seen.clear()
        for start in range(1, 3001, 10):  # 10-row transactions
            cdc_db.execute(f"INSERT INTO t SELECT g FROM generate_series({start}, {start + 9}) g")
        behind: list[bool] = []

        def thousand(r: list[Any]) -> bool:
            behind.append(src.worker.behind())
            return len(r) >= 1000

        drain(src, thousand, out=seen)
        assert True in behind
        pid = src.worker.pg.dec.info.backend_pid
        cdc_db.execute(f"SELECT pg_terminate_backend({pid})")
        drain(src, lambda r: any(x["after"]["id"] == 3000 for x in r), out=seen)
        peeks = src.worker.counters["peeks"]
        time.sleep(0.5)  # a peek or two more: nothing left to read
        assert not src.worker.behind()
    finally:
        src.close()
    ids = [r["after"]["id"] for r in seen]
    assert ids == list(range(1, 3001)), "every change once, in commit order"
    assert peeks > 3000 // 50


def test_a_transaction_too_large_to_hold_whole_is_streamed_and_nothing_is_lost(
    cdc_db: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    """A peek over PEEK_BYTES is given up, the reader slot copied again, the peek streamed."""
    from flbsql.cdc import stream
    from flbsql.cdc.postgresql import PgCdc

    monkeypatch.setattr(stream, "NCHANGES", 50)
    monkeypatch.setattr(stream, "PEEK_BYTES", 20_000)  # 10-row transactions fit, 2,000 not
    reopened: list[str] = []
    reopen = PgCdc.reopen_reader

    def counted(self: Any) -> str:
        reopened.append(self.reader)
        return reopen(self)

    monkeypatch.setattr(PgCdc, "reopen_reader", counted)
    cdc_db.execute("CREATE TABLE t (id int PRIMARY KEY)")
    src = open_source(cdc_db.props(tmp_path, tables="t", snapshot="never"))
    seen: list[dict[str, Any]] = []
    try:
        cdc_db.execute("INSERT INTO t VALUES (0)")
        drain(src, lambda r: len(r) >= 1, out=seen)
        seen.clear()
        for start in range(1, 1001, 10):
            cdc_db.execute(f"INSERT INTO t SELECT g FROM generate_series({start}, {start + 9}) g")
        cdc_db.execute("INSERT INTO t SELECT g FROM generate_series(1001, 3000) g")
        for start in range(3001, 4001, 10):
            cdc_db.execute(f"INSERT INTO t SELECT g FROM generate_series({start}, {start + 9}) g")
        drain(src, lambda r: any(x["after"]["id"] == 4000 for x in r), out=seen, timeout=60)
        with psycopg.connect(cdc_db.url) as c:
            row = c.execute(
                "SELECT count(*) FROM pg_replication_slots "
                "WHERE temporary AND database = current_database()"
            ).fetchone()
    finally:
        src.close()
    ids = [r["after"]["id"] for r in seen]
    assert ids == list(range(1, 4001)), "every change once, in commit order"
    assert reopened, "the large transaction was given up whole and streamed"
    assert row == (1,), "the reader slot given up was dropped"
