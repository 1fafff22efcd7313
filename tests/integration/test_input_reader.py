"""The poll source against real databases: order, keys, restart, late commits, types."""

from __future__ import annotations

import threading
import time

import pytest
from tests.fix_db import unique_table
from tests.integration.input_helpers import (
    INTKEY,
    TEXT,
    TS,
    drain,
    ph,
    q,
    settle_quietly,
    source,
)

from flbsql.errors import ConfigError


def _composite_table(db):
    t = unique_table("in")
    db.execute(
        f"CREATE TABLE {q(db, t)} (region {TEXT[db.dialect]} NOT NULL, seq INTEGER "
        f"NOT NULL, msg {TEXT[db.dialect]}, PRIMARY KEY (region, seq))"
    )
    regions = ["b", "A", "c", "Z", "é", "10", "9", "a b", "ab", "_x", "Ö"]
    rows = [(r, s, f"{r}-{s}") for r in regions for s in range(7)]
    p = ph(db)
    conn = db.connect()
    conn.cursor().executemany(f"INSERT INTO {q(db, t)} VALUES ({p}, {p}, {p})", rows)
    conn.close()
    return t, rows


def test_composite_text_key_every_row_once_in_database_order(any_db, tmp_path):
    t, rows = _composite_table(any_db)
    expected = any_db.query(f"SELECT region, seq FROM {q(any_db, t)} ORDER BY region, seq")
    src = source(any_db, tmp_path, table=t, rows_per_collect=9, fetch_size=4)
    try:
        events = drain(src, len(rows))
        assert [(e.body["region"], e.body["seq"]) for e in events] == expected
        assert settle_quietly(src, 0.5) == []
    finally:
        src.close()


def test_restart_resumes_after_the_last_acknowledged_batch(any_db, tmp_path):
    t, rows = _composite_table(any_db)
    src = source(any_db, tmp_path, table=t, rows_per_collect=10, fetch_size=10)
    first = drain(src, 30)
    # one more batch handed over but never acknowledged (no cleanup callback)
    deadline = time.monotonic() + 10
    while not src.next_batch() and time.monotonic() < deadline:
        time.sleep(0.02)
    src.close()
    src = source(any_db, tmp_path, table=t, rows_per_collect=10, fetch_size=10)
    try:
        rest = drain(src, len(rows) - len(first))
        keys = [(e.body["region"], e.body["seq"]) for e in first + rest]
        assert sorted(keys) == sorted((r, s) for r, s, _ in rows)
        assert len(keys) == len(set(keys)), "the unacknowledged batch is read once more only"
        assert settle_quietly(src, 0.3) == []
    finally:
        src.close()


def test_no_primary_key_is_a_clear_error(any_db, tmp_path):
    t = unique_table("nopk")
    any_db.execute(f"CREATE TABLE {q(any_db, t)} (a INTEGER, b INTEGER)")
    with pytest.raises(ConfigError, match="has no primary key: set `key`"):
        source(any_db, tmp_path, table=t)
    src = source(any_db, tmp_path, table=t, key="a,b")  # an explicit key works
    src.close()


def test_tracking_column_reads_updates_with_the_key_as_tie_breaker(any_db, tmp_path):
    t = unique_table("trk")
    db = any_db
    db.execute(
        f"CREATE TABLE {q(db, t)} (id INTEGER PRIMARY KEY, v INTEGER NOT NULL, note VARCHAR(20))"
    )
    p = ph(db)
    conn = db.connect()
    conn.cursor().executemany(
        f"INSERT INTO {q(db, t)} VALUES ({p}, {p}, 'x')", [(i, i // 3) for i in range(12)]
    )  # equal tracking values
    src = source(db, tmp_path, table=t, tracking_column="v", rows_per_collect=2, fetch_size=2)
    try:
        assert [e.body["id"] for e in drain(src, 12)] == list(range(12))
        conn.cursor().execute(f"UPDATE {q(db, t)} SET v = 100, note = 'upd' WHERE id = 4")
        conn.cursor().execute(f"INSERT INTO {q(db, t)} VALUES (50, 3, 'same v as id 9-11')")
        again = drain(src, 2)
        assert [(e.body["id"], e.body["note"]) for e in again] == [
            (50, "same v as id 9-11"),
            (4, "upd"),
        ]
    finally:
        conn.close()
        src.close()


def test_empty_table_emits_nothing_and_start_end_skips_existing_rows(any_db, tmp_path):
    t = unique_table("empty")
    db = any_db
    db.execute(f"CREATE TABLE {q(db, t)} (id {INTKEY[db.dialect]}, msg {TEXT[db.dialect]})")
    src = source(db, tmp_path, table=t)
    assert settle_quietly(src, 0.5) == []
    src.close()
    db.execute(f"INSERT INTO {q(db, t)} (msg) VALUES ('old')")
    src = source(db, tmp_path, table=t, start="end", position_name="from-end")
    try:
        time.sleep(0.8)  # the first settled signpost becomes the position
        db.execute(f"INSERT INTO {q(db, t)} (msg) VALUES ('new')")
        assert [e.body["msg"] for e in drain(src, 1, timeout=10)] == ["new"]
    finally:
        src.close()


def test_pause_stops_fetching(sqlite_db, tmp_path):
    db = sqlite_db
    db.execute("CREATE TABLE p (id INTEGER PRIMARY KEY, msg TEXT)")
    src = source(db, tmp_path, table="p")
    try:
        src.pause()
        db.execute("INSERT INTO p (msg) VALUES ('x')")
        time.sleep(0.5)
        assert src.next_batch() == []
        src.resume()
        assert [e.body["msg"] for e in drain(src, 1)] == ["x"]
    finally:
        src.close()


def test_time_column_sets_the_event_time(any_db, tmp_path):
    t = unique_table("tc")
    db = any_db
    db.execute(f"CREATE TABLE {q(db, t)} (id INTEGER PRIMARY KEY, at {TS[db.dialect]})")
    db.execute(f"INSERT INTO {q(db, t)} VALUES (1, '2024-01-01 01:00:00'), (2, NULL)")
    src = source(db, tmp_path, table=t, time_column="at", time_zone="Europe/Paris")
    try:
        events = drain(src, 2)
        assert events[0].time == (1_704_067_200, 0)
        assert abs(events[1].time.sec - time.time()) < 60  # NULL: ingest time
        if db.dialect != "sqlite":  # SQLite keeps the text as written
            assert events[0].body["at"] == "2024-01-01T01:00:00+01:00"
    finally:
        src.close()


@pytest.mark.postgres
def test_timestamptz_event_times_come_from_the_server(pg_db, tmp_path):
    """The server builds the event header of a timestamptz time column (no datetime per row).

    Same times as the Python path (``query`` mode reads the typed value): microseconds
    kept, before 1970 / past 2106-02-07 / NULL -> the read time; the column still in the record.
    """
    t = unique_table("tz")
    pg_db.execute(f"CREATE TABLE {t} (id INTEGER PRIMARY KEY, at timestamptz)")
    values = [
        "2024-01-01 01:00:00.123456+01",
        "1970-01-01 00:00:00+00",
        "1969-12-31 23:59:59.999999+00",
        None,
        "2106-02-07 06:28:13+00",  # MAX_EVENT_SEC
        "2106-02-07 06:28:13.000001+00",  # past it
        "3000-01-01 00:00:00+00",
    ]
    for i, v in enumerate(values):
        pg_db.execute(f"INSERT INTO {t} VALUES (%s, %s)", (i, v))
    times = {}
    for mode in ("table", "query"):
        opts: dict[str, str] = (
            {"table": t}
            if mode == "table"
            else {
                "query": f"SELECT * FROM {t} WHERE {{position}}",
                "key": "id",
            }
        )
        src = source(pg_db, tmp_path / mode, time_column="at", time_zone="Europe/Paris", **opts)
        try:
            events = drain(src, len(values))
        finally:
            src.close()
        times[mode] = [(e.body["id"], tuple(e.time)) for e in events]
        now = time.time()
        ingest = {i for i, (_, (sec, _)) in enumerate(times[mode]) if abs(sec - now) < 60}
        assert ingest == {2, 3, 5, 6}, mode
        assert times[mode][0][1] == (1_704_067_200, 123_456_000)
        assert times[mode][1][1] == (0, 0)
        assert times[mode][4][1] == (4_294_967_293, 0)
        assert events[0].body["at"] == "2024-01-01T00:00:00.123456+00:00"  # the session zone
    fixed = [(i, ts) for i, ts in times["table"] if i not in (2, 3, 5, 6)]
    assert fixed == [(i, ts) for i, ts in times["query"] if i not in (2, 3, 5, 6)]


@pytest.mark.postgres
@pytest.mark.mysql
@pytest.mark.parametrize("dbname", ["pg_db", "mysql_db"], ids=["postgresql", "mysql"])
def test_late_commit_with_lower_keys_is_not_skipped(dbname, request, tmp_path):
    """T1 takes the lower keys, T2 the higher ones and commits first; T1 commits last."""
    db = request.getfixturevalue(dbname)
    t = unique_table("late")
    db.execute(f"CREATE TABLE {q(db, t)} (id {INTKEY[db.dialect]}, who VARCHAR(4))")
    src = source(db, tmp_path, table=t, settle="3s")
    c1, c2 = db.connect(), db.connect()
    try:
        for c in (c1, c2):
            c.autocommit = False if db.dialect == "postgresql" else c.autocommit(False)
        cur1, cur2 = c1.cursor(), c2.cursor()
        cur1.executemany(f"INSERT INTO {q(db, t)} (who) VALUES (%s)", [("T1",)] * 50)
        cur2.executemany(f"INSERT INTO {q(db, t)} (who) VALUES (%s)", [("T2",)] * 50)
        c2.commit()
        early = settle_quietly(src, 1.0)
        c1.commit()
        late = drain(src, 100 - len(early), timeout=20)
        ids = [e.body["id"] for e in early + late]
        assert sorted(ids) == sorted(r[0] for r in db.query(f"SELECT id FROM {q(db, t)}"))
        assert len(ids) == 100 == len(set(ids))
        t1 = {r[0] for r in db.query(f"SELECT id FROM {q(db, t)} WHERE who = 'T1'")}
        assert max(t1) < min(set(ids) - t1), "T1 really holds the lower keys"
    finally:
        c1.close()
        c2.close()
        src.close()


@pytest.mark.postgres
def test_postgresql_types(pg_db, tmp_path):
    t = unique_table("types")
    pg_db.execute(f"""CREATE TABLE {t} (id uuid PRIMARY KEY, n numeric, ts timestamptz,
        d date, j jsonb, js json, arr int[], b bytea, flag boolean, f float8, nul text)""")
    pg_db.execute(f"""INSERT INTO {t} VALUES ('00000000-0000-0000-0000-000000000001',
        12345678901234567890.123456789, '2024-05-01 12:00:00+00', '2024-05-01',
        '{{"a": [1, 2, {{"b": null}}]}}', '[1, "x"]', '{{1,2,3}}', '\\x00ff', true, 0.5, NULL)""")
    src = source(pg_db, tmp_path, table=t)
    try:
        [ev] = drain(src, 1)
        body = dict(ev.body)
        assert body.pop("ts").startswith("2024-05-01T")
        assert body == {
            "id": "00000000-0000-0000-0000-000000000001",
            "n": "12345678901234567890.123456789",
            "d": "2024-05-01",
            "j": {"a": [1, 2, {"b": None}]},
            "js": [1, "x"],
            "arr": [1, 2, 3],
            "b": b"\x00\xff",
            "flag": True,
            "f": 0.5,
            "nul": None,
        }
    finally:
        src.close()


@pytest.mark.mysql
def test_mysql_json_and_timestamp(mysql_db, tmp_path):
    t = unique_table("mtypes")
    mysql_db.execute(
        f"CREATE TABLE {t} (id INT PRIMARY KEY, doc JSON, ts TIMESTAMP(3) NULL, "
        "dt DATETIME, n DECIMAL(30, 10))"
    )
    mysql_db.execute("SET time_zone = '+00:00'")
    mysql_db.execute(
        f"INSERT INTO {t} VALUES (1, '{{\"k\": [1, true]}}', "
        "'2024-05-01 12:00:00.250', '2024-05-01 12:00:00', 1.5)"
    )
    src = source(mysql_db, tmp_path, table=t)
    try:
        [ev] = drain(src, 1)
        assert ev.body["doc"] == {"k": [1, True]}
        assert ev.body["n"] == "1.5000000000"
        assert ev.body["dt"] == "2024-05-01T12:00:00+00:00"
        assert ev.body["ts"].endswith("+00:00")
    finally:
        src.close()


def test_concurrent_inserts_while_reading_arrive_once(any_db, tmp_path):
    t = unique_table("conc")
    db = any_db
    db.execute(f"CREATE TABLE {q(db, t)} (id {INTKEY[db.dialect]}, msg {TEXT[db.dialect]})")
    p = ph(db)
    src = source(db, tmp_path, table=t, rows_per_collect=50, fetch_size=20)

    def writer():
        conn = db.connect()
        for i in range(20):
            conn.cursor().executemany(
                f"INSERT INTO {q(db, t)} (msg) VALUES ({p})", [(f"{i}",)] * 10
            )
            time.sleep(0.02)
        conn.close()

    th = threading.Thread(target=writer)
    th.start()
    try:
        events = drain(src, 200, timeout=30)
        th.join()
        events += settle_quietly(src, 0.5)
        ids = [e.body["id"] for e in events]
        assert len(ids) == 200 == len(set(ids))
    finally:
        th.join()
        src.close()
