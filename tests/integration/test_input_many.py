"""Many tables per poll input, and shards of one table across inputs (issue 14)."""

from __future__ import annotations

import collections
import logging
import os
import secrets
import sqlite3
import time
from typing import Any

import pytest
from tests.fix_db import unique_table
from tests.integration.input_helpers import drain, settle_quietly, source

from flbsql.errors import ConfigError


@pytest.fixture
def pg_schema(pg_db: Any) -> Any:
    """A schema of its own (the server is shared), dropped with everything in it."""
    schema = f"flbsql_t_{secrets.token_hex(4)}"
    pg_db.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema
    finally:
        pg_db.execute(f"DROP SCHEMA {schema} CASCADE")


def _tables_of(events: list[Any]) -> collections.Counter[str]:
    return collections.Counter(e.body["_table"] for e in events)


@pytest.mark.postgres
def test_twenty_tables_of_a_schema_each_read_once_in_turn_and_resumed_at_its_own_position(
    pg_db, pg_schema, tmp_path
):
    s = pg_schema
    # one big table, and 19 small ones with other keys: composite, text, no primary key
    pg_db.execute(f"CREATE TABLE {s}.big (id bigint PRIMARY KEY, v text)")
    pg_db.execute(f"INSERT INTO {s}.big SELECT g, 'b' || g FROM generate_series(1, 30000) g")
    sizes = {"big": 30000}
    for i in range(19):
        t = f"small{i:02d}"
        if i % 3 == 0:
            pg_db.execute(f"CREATE TABLE {s}.{t} (a int, b text, v int, PRIMARY KEY (a, b))")
            pg_db.execute(
                f"INSERT INTO {s}.{t} SELECT mod(g, 7), 'k' || g, g FROM generate_series(1, 50) g"
            )
        elif i % 3 == 1:
            pg_db.execute(f"CREATE TABLE {s}.{t} (code text PRIMARY KEY, v int)")
            pg_db.execute(f"INSERT INTO {s}.{t} SELECT 'c' || g, g FROM generate_series(1, 50) g")
        else:
            pg_db.execute(f"CREATE TABLE {s}.{t} (id int PRIMARY KEY, v int)")
            pg_db.execute(f"INSERT INTO {s}.{t} SELECT g, g FROM generate_series(1, 50) g")
        sizes[t] = 50
    pg_db.execute(f"CREATE VIEW {s}.not_a_table AS SELECT 1 AS x")
    total = sum(sizes.values())
    opts = {"tables": f"{s}.*", "fetch_size": 500, "rows_per_collect": 500}
    src = source(pg_db, tmp_path, **opts)
    try:
        first = drain(src, 6000)
    finally:
        src.close()
    seen = _tables_of(first)
    # fair: every small table was read completely while the big one was still going
    assert seen[f"{s}.big"] < 6000 - 19 * 50 + 500, seen
    assert all(seen[f"{s}.small{i:02d}"] == 50 for i in range(19)), seen
    # a restart resumes every table at its own position: the rest, exactly once
    src = source(pg_db, tmp_path, **opts)
    try:
        rest = drain(src, total - len(first), timeout=60)
        rest += settle_quietly(src, 1.0)
    finally:
        src.close()
    assert _tables_of(first + rest) == {f"{s}.{t}": n for t, n in sizes.items()}
    keys = [
        (e.body["_table"], e.body.get("id"), e.body.get("code"), e.body.get("b"))
        for e in first + rest
    ]
    assert len(keys) == len(set(keys)) == total  # none twice: the positions held
    positions = sqlite3.connect(tmp_path / "pos.db").execute(
        "SELECT name, source FROM in_sql_positions ORDER BY name"
    )
    names = [r[0].split("/", 1)[1] for r in positions]
    assert names == sorted(f"{s}.{t}" for t in sizes)


def _sqlite_or(db: Any, dialect: str) -> str:
    return "INTEGER PRIMARY KEY" if dialect == "sqlite" else "BIGINT PRIMARY KEY"


@pytest.mark.parametrize("fixture", ["sqlite_db", "pg_db", "mysql_db"])
def test_named_tables_carry_their_name_and_keep_their_own_key(fixture, request, tmp_path):
    db = request.getfixturevalue(fixture)
    a, b = unique_table("ma"), unique_table("mb")
    text = "VARCHAR(20)" if db.dialect == "mysql" else "TEXT"
    db.execute(f"CREATE TABLE {a} (id {_sqlite_or(db, db.dialect)}, v {text})")
    db.execute(f"CREATE TABLE {b} (code {text} NOT NULL PRIMARY KEY, v {text})")
    try:
        db.execute(
            f"INSERT INTO {a} (id, v) VALUES " + ", ".join(f"({i}, 'a{i}')" for i in range(1, 301))
        )
        db.execute(
            f"INSERT INTO {b} (code, v) VALUES "
            + ", ".join(f"('k{i:03d}', 'b{i}')" for i in range(1, 11))
        )
        src = source(db, tmp_path, tables=f"{a},{b}", table_key="source_table", fetch_size=50)
        try:
            events = drain(src, 310)
            events += settle_quietly(src, 0.5)
        finally:
            src.close()
        by = collections.defaultdict(list)
        for e in events:
            by[e.body["source_table"]].append(e.body)
        assert [r["id"] for r in by[a]] == list(range(1, 301))
        assert [r["code"] for r in by[b]] == [f"k{i:03d}" for i in range(1, 11)]
        # the small table was not left waiting behind the big one
        assert [e.body["source_table"] for e in events].index(b) < 100
    finally:
        db.execute(f"DROP TABLE {a}")
        db.execute(f"DROP TABLE {b}")


@pytest.mark.sqlite
def test_a_single_table_position_file_is_resumed_by_a_many_table_input(sqlite_db, tmp_path):
    db = sqlite_db
    db.execute("CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT)")
    db.execute("CREATE TABLE b (id INTEGER PRIMARY KEY, v TEXT)")
    for i in range(1, 101):
        db.execute("INSERT INTO a (id, v) VALUES (?, ?)", (i, f"a{i}"))
        db.execute("INSERT INTO b (id, v) VALUES (?, ?)", (i, f"b{i}"))
    src = source(db, tmp_path, table="a", rows_per_collect=40, fetch_size=40)
    try:
        first = drain(src, 40)
        time.sleep(0.1)
        src.next_batch()  # stores the position acknowledged by the commit above
        src.rewind()
    finally:
        src.close()
    assert [e.body["id"] for e in first] == list(range(1, 41))
    src = source(db, tmp_path, tables="a,b")
    try:
        rest = drain(src, 160)
        rest += settle_quietly(src, 0.5)
    finally:
        src.close()
    assert sorted(e.body["id"] for e in rest if e.body["_table"] == "a") == list(range(41, 101))
    assert sorted(e.body["id"] for e in rest if e.body["_table"] == "b") == list(range(1, 101))


# --- shards ----------------------------------------------------------------------------------


def until_quiet(src: Any, timeout: float, quiet: float = 1.5) -> list[Any]:
    """Everything the source hands over until it stays quiet for ``quiet`` seconds."""
    events: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        more = settle_quietly(src, quiet)
        if not more:
            return events
        events += more
    raise AssertionError(f"still reading after {timeout}s ({len(events)} events)")


def _read_shards(db: Any, tmp_path: Any, n: int, **opts: Any) -> list[list[Any]]:
    """Each of ``n`` shard inputs (own position file, as on its own machine) to its end."""
    out = []
    for i in range(n):
        t0 = time.monotonic()
        d = tmp_path / f"shard{i}"
        d.mkdir(exist_ok=True)
        src = source(db, d, shard=f"{i}/{n}", **opts)
        try:
            events = until_quiet(src, timeout=120)
        finally:
            src.close()
        print(f"\nshard {i}/{n}: {len(events)} rows in {time.monotonic() - t0:.1f}s")
        out.append(events)
    return out


@pytest.mark.postgres
def test_four_shards_read_every_row_of_a_table_exactly_once(pg_db, tmp_path):
    """CI reads 100,000 rows; FLBSQL_SHARD_ROWS=1000000 gives the issue's 1M-row run."""
    rows = int(os.environ.get("FLBSQL_SHARD_ROWS", "100000"))
    t = unique_table("shard")
    pg_db.execute(f"CREATE TABLE {t} (id bigint PRIMARY KEY, v text)")
    pg_db.execute(f"INSERT INTO {t} SELECT g, 'r' || g FROM generate_series(1, {rows}) g")
    try:
        shards = _read_shards(pg_db, tmp_path, 4, table=t, fetch_size=5000)
    finally:
        pg_db.execute(f"DROP TABLE {t}")
    ids = [e.body["id"] for events in shards for e in events]
    assert len(ids) == rows and set(ids) == set(range(1, rows + 1))
    print(f"\n{rows} rows in 4 shards: {[len(s) for s in shards]}")
    for events in shards:  # the hash spreads them evenly
        assert 0.2 * rows < len(events) < 0.3 * rows, [len(s) for s in shards]


@pytest.mark.mysql
def test_shards_of_a_composite_text_key_on_mariadb(mysql_db, tmp_path):
    t = unique_table("shard")
    mysql_db.execute(f"CREATE TABLE {t} (a INT, b VARCHAR(20), PRIMARY KEY (a, b))")
    values = ", ".join(f"({i % 10}, 'k{i}')" for i in range(3000))
    mysql_db.execute(f"INSERT INTO {t} VALUES {values}")
    try:
        shards = _read_shards(mysql_db, tmp_path, 3, table=t, settle="0s")
    finally:
        mysql_db.execute(f"DROP TABLE {t}")
    keys = [(e.body["a"], e.body["b"]) for events in shards for e in events]
    assert len(keys) == 3000 and len(set(keys)) == 3000
    assert all(events for events in shards)


@pytest.mark.postgres
def test_a_shard_resumes_at_its_own_position_and_refuses_another_shard_count(pg_db, tmp_path):
    t = unique_table("shard")
    pg_db.execute(f"CREATE TABLE {t} (id bigint PRIMARY KEY)")
    pg_db.execute(f"INSERT INTO {t} SELECT g FROM generate_series(1, 2000) g")
    try:
        src = source(pg_db, tmp_path, table=t, shard="1/2", rows_per_collect=300)
        try:
            first = drain(src, 300)
            time.sleep(0.1)
            src.next_batch()
            src.rewind()
        finally:
            src.close()
        src = source(pg_db, tmp_path, table=t, shard="1/2")
        try:
            rest = until_quiet(src, timeout=60)
        finally:
            src.close()
        mine = {r[0] for r in pg_db.query(f"SELECT id FROM {t}")}
        ids = [e.body["id"] for e in first + rest]
        assert len(ids) == len(set(ids)) and 800 < len(ids) < 1200
        # the other shard reads exactly the rest
        other = source(pg_db, tmp_path, table=t, shard="0/2")
        try:
            others = [e.body["id"] for e in until_quiet(other, timeout=60)]
        finally:
            other.close()
        assert sorted(ids + others) == sorted(mine)
        with pytest.raises(ConfigError, match="position_name") as err:
            bad = source(pg_db, tmp_path, table=t, shard="1/4")
            bad.close()
        assert "shard 1/2" in str(err.value) and "shard 1/4" in str(err.value)
    finally:
        pg_db.execute(f"DROP TABLE {t}")


@pytest.mark.sqlite
def test_shard_is_refused_on_sqlite_and_a_bad_shard_names_the_option(sqlite_db, tmp_path):
    sqlite_db.execute("CREATE TABLE s (id INTEGER PRIMARY KEY)")
    with pytest.raises(ConfigError, match="option 'shard': not supported on sqlite"):
        source(sqlite_db, tmp_path, table="s", shard="0/2")
    with pytest.raises(ConfigError, match="option 'shard': 4/4: the index counts from 0"):
        source(sqlite_db, tmp_path, table="s", shard="4/4")


@pytest.mark.postgres
def test_a_dropped_table_waits_alone_while_the_others_are_read_on(pg_db, pg_schema, tmp_path):
    s = pg_schema
    for t in ("gone", "kept"):
        pg_db.execute(f"CREATE TABLE {s}.{t} (id bigint PRIMARY KEY)")
        pg_db.execute(f"INSERT INTO {s}.{t} SELECT generate_series(1, 10)")
    opts = {"tables": f"{s}.gone, {s}.kept", "pool__backoff_initial": "4s"}
    src = source(pg_db, tmp_path, **{**opts, "pool__backoff_max": "30s"})
    waited = []
    try:
        assert len(drain(src, 20)) == 20
        pg_db.execute(f"DROP TABLE {s}.gone")
        settle_quietly(src, 2.0)  # the dropped table fails meanwhile
        for i in range(11, 15):
            pg_db.execute(f"INSERT INTO {s}.kept VALUES ({i})")
            t0 = time.monotonic()
            assert [e.body["id"] for e in drain(src, 1, timeout=20)] == [i]
            waited.append(time.monotonic() - t0)
    finally:
        src.close()
    # one backoff for all would hold the kept table back up to 4 s after each failure
    assert sum(waited) < 4.0, f"the kept table waited {waited} behind the dropped one"


@pytest.mark.postgres
def test_a_wildcard_is_listed_again_new_tables_are_read_and_dropped_ones_left(
    pg_db, pg_schema, tmp_path, monkeypatch, caplog
):
    from flbsql.input import fetch

    monkeypatch.setattr(fetch, "RELIST_EVERY", 0.3)
    caplog.set_level(logging.INFO, logger="test.in_sql")
    s = pg_schema
    pg_db.execute(f"CREATE TABLE {s}.first (id bigint PRIMARY KEY)")
    pg_db.execute(f"INSERT INTO {s}.first SELECT generate_series(1, 5)")
    src = source(pg_db, tmp_path, tables=f"{s}.*")
    try:
        assert len(drain(src, 5)) == 5
        pg_db.execute(f"CREATE TABLE {s}.later (id bigint PRIMARY KEY)")
        pg_db.execute(f"INSERT INTO {s}.later SELECT generate_series(1, 7)")
        pg_db.execute(f"CREATE TABLE {s}.nokey (v int)")  # cannot be read: skipped
        events = drain(src, 7)
        pg_db.execute(f"DROP TABLE {s}.first")
        pg_db.execute(f"INSERT INTO {s}.later SELECT generate_series(8, 9)")
        events += drain(src, 2)
        events += settle_quietly(src, 1.0)
    finally:
        src.close()
    assert [(e.body["_table"], e.body["id"]) for e in events] == [
        (f"{s}.later", i) for i in range(1, 10)
    ]
    assert f"new table {s}.nokey is not read: option 'key'" in caplog.text
    assert f"table {s}.first is no longer listed" in caplog.text
    assert "Traceback" not in caplog.text
