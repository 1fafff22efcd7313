"""MariaDB/MySQL's bulk path: LOAD DATA LOCAL INFILE from memory, and its fallback.

``LOAD DATA LOCAL`` turns data errors into warnings (it skips a duplicate key,
truncates an over-long text, stores '' for a NULL in a NOT NULL column) even in
strict mode. These tests pin that such a batch is undone and written again with
statements: the bad row is dead-lettered with the server's error, every other
row is stored exactly once, and nothing is stored altered.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
from typing import Any

import pytest

from flbsql.dialects import mysql, mysqlload
from flbsql.outcome import Outcome
from tests.behaviour.output_helpers import count, qt
from tests.fix_db import unique_table
from tests.fix_host import event_v2

pytestmark = pytest.mark.mysql

N = 3000
DUP, LONG, NULLED = 517, 1234, 2999  # positions of the bad rows in the chunk


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Rows sent by each LOAD DATA that ran (the spy calls the real load)."""
    seen: list[int] = []
    real = mysqlload.load

    def spy(cur: Any, statement: str, blocks: Any, sent: list[int]) -> None:
        try:
            real(cur, statement, blocks, sent)
        finally:
            seen.append(sent[0])

    monkeypatch.setattr(mysqlload, "load", spy)
    return seen


def _chunk(n: int = N) -> bytes:
    parts = []
    for i in range(n):
        body: dict[str, Any] = {"id": f"id-{i:05d}", "host": f"h{i % 7}", "msg": f"line\t{i}\n"}
        if i == DUP:
            body["id"] = "id-00000"  # the same id as the first row: unique index
        if i == LONG:
            body["host"] = "h" * 40  # host is VARCHAR(16), strict mode
        if i == NULLED:
            del body["host"]  # host is NOT NULL
        parts.append(event_v2(body, sec=1_700_000_000 + i))
    return b"".join(parts)


def _table(db: Any, table: str) -> None:
    db.execute(
        f"CREATE TABLE {qt(db, table)} (`tag` LONGTEXT, `time` DATETIME(6), "
        "`id` VARCHAR(64) NOT NULL UNIQUE, `host` VARCHAR(16) NOT NULL, `msg` LONGTEXT, "
        "`data` JSON)"
    )


@pytest.mark.chaos
@pytest.mark.parametrize("unique_key", [None, "id"])
@pytest.mark.parametrize("infile", [True, False], ids=["load_data", "local_infile_off"])
def test_bad_rows_inside_a_load_data_batch_are_dead_lettered_the_rest_commit_once(
    mysql_db, make_writer, loads, caplog, unique_key, infile, request
):
    if not infile:
        request.getfixturevalue("no_infile")
    table, dead = unique_table("load"), unique_table("load_dlq")
    _table(mysql_db, table)
    props = {
        "columns": "id=id:string(64),host=host:string(16),msg=msg:text",
        "dead_letter_table": dead,
    }
    if unique_key:
        props["unique_key"] = unique_key
    w = make_writer(mysql_db, table, **props)
    caplog.set_level(logging.INFO)
    chunk = _chunk()
    assert w.write(chunk, "app") is Outcome.OK
    if infile:
        assert loads == [N - 1 if unique_key else N]  # the key dedupes the repeated id
        assert "bulk path: LOAD DATA LOCAL INFILE from memory" in caplog.text
    else:
        assert loads == []
    rows = mysql_db.query(f"SELECT `id`, `host`, `msg` FROM {qt(mysql_db, table)}")
    ids = [r[0] for r in rows]
    good = {f"id-{i:05d}" for i in range(N)} - {f"id-{i:05d}" for i in (DUP, LONG, NULLED)}
    if unique_key:  # the later duplicate replaced the first row's record (update)
        good |= {"id-00000"}
    assert len(ids) == len(set(ids)) == len(good)
    assert set(ids) == good
    assert all(len(h) <= 16 and h for _, h, _ in rows)  # nothing truncated, no '' for NULL
    assert all(m.startswith("line\t") and m.endswith("\n") for _, _, m in rows)
    errors = [e for (e,) in mysql_db.query(f"SELECT `error` FROM {qt(mysql_db, dead)}")]
    if unique_key:  # the duplicate is an update of id-00000, not an error
        assert len(errors) == 2
    else:
        assert len(errors) == 3
        assert any("Duplicate entry" in e for e in errors)
    assert any("Data too long" in e and "host" in e for e in errors)
    assert any("host" in e and "null" in e.lower() for e in errors)
    assert ("writing these" in caplog.text) == infile  # a refused load fell back to statements
    if unique_key:  # a replay through the staging table adds nothing
        assert make_writer(mysql_db, table, **props).write(chunk, "app") is Outcome.OK
        assert count(mysql_db, table) == len(good)


@pytest.fixture
def no_infile(monkeypatch: pytest.MonkeyPatch) -> None:
    """Connections as to a server with ``local_infile`` OFF."""
    real = mysql.MySQLDialect.connect

    def connect(self: Any, params: Any) -> Any:
        conn: Any = real(self, params)
        conn.flbsql_local_infile = False
        return conn

    monkeypatch.setattr(mysql.MySQLDialect, "connect", connect)


def test_values_survive_the_text_format(mysql_db, make_writer, loads, request):
    """Every column type through LOAD DATA, and through the INSERT literals built a column
    at a time, reads back as PyMySQL's executemany (``bulk insert``) stores it."""
    cols = (
        "s=s:string(40),t=t:text,i=i:int,f=f:float,b=b:bool,ts=ts:timestamp,"
        "j=j:json,raw=raw:bytes,d=d:decimal"
    )
    bodies: list[dict[str, Any]] = [
        {
            "s": "tab\there\\back\nnl",
            "t": "nul \x00 and emoji \U0001f600 and \\N",
            "i": -(2**63),
            "f": 1.5e-300,
            "b": True,
            "ts": "2024-05-01T12:00:00.123456+00:00",
            "j": {"k": "v\n\t\\"},
            "raw": b"\x00\t\n\\\xff",
            "d": "12345.6789",
        },
        {"s": None, "t": "", "i": 0, "b": False, "raw": b"", "d": 0},
        {"s": "\\N", "t": "NULL"},
    ]
    chunk = b"".join(event_v2(b, sec=1_700_000_000) for b in bodies)
    got = {}
    for bulk in ("auto", "insert", "literals"):
        if bulk == "literals":
            request.getfixturevalue("no_infile")
        table = unique_table(f"types_{bulk}")
        w = make_writer(
            mysql_db, table, columns=cols, bulk=bulk.replace("literals", "auto"), json_column="none"
        )
        assert w.write(chunk, "app") is Outcome.OK
        got[bulk] = mysql_db.query(
            f"SELECT s, t, i, f, b, ts, j, raw, d, time FROM {qt(mysql_db, table)} ORDER BY i, s"
        )
    assert loads == [3]  # bulk auto loaded; bulk insert and local_infile OFF did not
    assert got["auto"] == got["insert"] == got["literals"]
    first = next(r for r in got["auto"] if r[2] == -(2**63))
    assert first[0] == "tab\there\\back\nnl"
    assert first[1] == "nul \x00 and emoji \U0001f600 and \\N"
    assert first[7] == b"\x00\t\n\\\xff"
    assert first[8] == decimal.Decimal("12345.6789000000")
    assert first[5] == dt.datetime(2024, 5, 1, 12, 0, 0, 123456)
    assert {r[0] for r in got["auto"]} == {"tab\there\\back\nnl", None, "\\N"}


def test_without_local_infile_rows_go_through_insert_statements(
    mysql_db, make_writer, loads, caplog, no_infile
):
    caplog.set_level(logging.INFO)
    table = unique_table("noinfile")
    w = make_writer(mysql_db, table, unique_key="tag")
    assert w.write(b"".join(event_v2({"n": i}) for i in range(50)), "app") is Outcome.OK
    assert count(mysql_db, table) == 1
    assert loads == []
    assert "bulk path: multi-row INSERT" in caplog.text
    assert "local_infile OFF" in caplog.text


def test_the_default_shape_without_local_infile_takes_statements_quietly(
    mysql_db, make_writer, loads, caplog, no_infile
):
    """The C encoder feeds LOAD DATA only: without it the rows are mapped, no fallback line."""
    caplog.set_level(logging.INFO)
    table = unique_table("noinfile")
    w = make_writer(mysql_db, table)
    assert w.write(b"".join(event_v2({"n": i}) for i in range(50)), "app") is Outcome.OK
    assert count(mysql_db, table) == 50
    assert loads == []
    assert "writing these" not in caplog.text


def test_the_server_gets_no_file_it_names(mysql_db):
    """A server asking for a client file (``LOAD DATA LOCAL INFILE '/etc/hostname'``) gets none."""
    from flbsql.conn.url import parse_url

    conn: Any = mysql.DIALECT.connect(parse_url(mysql_db.url))
    table = unique_table("steal")
    try:
        cur = conn.cursor()
        cur.execute(f"CREATE TABLE {qt(mysql_db, table)} (line LONGTEXT)")
        with pytest.raises(Exception, match="only flbsql's rows are sent"):
            cur.execute(f"LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE {qt(mysql_db, table)}")
        cur.execute(f"SELECT COUNT(*) FROM {qt(mysql_db, table)}")
        assert cur.fetchone()[0] == 0
    finally:
        conn.close()
        mysql_db.execute(f"DROP TABLE IF EXISTS {qt(mysql_db, table)}")


def test_flbsql_check_shows_the_bulk_path(mysql_db, tmp_path):
    from flbsql.tools.check import check_file

    conf = tmp_path / "out.conf"
    conf.write_text(f"[OUTPUT]\n    Name sql\n    Match *\n    url {mysql_db.url}\n    table t\n")
    notes: list[str] = []
    assert check_file(conf, notes=notes) == []
    assert len(notes) == 2
    assert "sql: no `workers` set: flushes run on 2 worker threads beside" in notes[0]
    assert notes[1].endswith("sql: bulk path: LOAD DATA LOCAL INFILE from memory")


def test_a_slice_refused_mid_stream_is_undone_and_the_connection_stays_usable(mysql_db):
    """The rows already streamed are loaded; the savepoint undoes them; the link stays in sync."""
    from flbsql.conn.url import parse_url
    from flbsql.errors import BulkRefusedError

    conn: Any = mysql.DIALECT.connect(parse_url(mysql_db.url))
    table = qt(mysql_db, unique_table("midstream"))
    try:
        cur = conn.cursor()
        cur.execute(f"CREATE TABLE {table} (a LONGTEXT)")
        rows = iter([("ok",)] * 2500 + [("not UTF-8 \udcff",)] + [("ok",)] * 10)
        cur.execute("SAVEPOINT s")
        with pytest.raises(BulkRefusedError, match="cannot take this text"):
            mysqlload.load_rows(cur, table, ["`a`"], rows, [False])
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        assert cur.fetchone()[0] == 2000  # the slices sent before the bad one
        cur.execute("ROLLBACK TO SAVEPOINT s")
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        assert cur.fetchone()[0] == 0
        mysqlload.load_rows(cur, table, ["`a`"], iter([("again",)] * 3), [False])
        conn.commit()
        cur.execute(f"SELECT a, COUNT(*) FROM {table} GROUP BY a")
        assert cur.fetchall() == (("again", 3),)
    finally:
        conn.close()
        mysql_db.execute(f"DROP TABLE IF EXISTS {table}")
