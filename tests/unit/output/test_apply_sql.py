"""The statements apply mode sends on Oracle and SQL Server (no server: recording cursors).

PostgreSQL, MySQL and SQLite run the same code live (tests/behaviour/test_apply_*.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from flbsql.dialects import get_dialect
from flbsql.outcome import Outcome
from flbsql.output.apply import Applier
from flbsql.output.changes import position_text
from flbsql.output.convert import TimeConverter
from flbsql.output.targets import Target, column_kind
from flbsql.settings import parse
from tests.behaviour.apply_helpers import TOAST, change


class Cursor:
    def __init__(self):
        self.calls = []
        self.rowcount = 1

    def execute(self, stmt, params=None):
        self.calls.append((stmt, params))

    def executemany(self, stmt, rows, **kw):
        self.calls.append((stmt, list(rows)))

    def setinputsizes(self, *sizes):
        pass

    def fetchall(self):
        return []

    def close(self):
        pass


class Conn:
    def __init__(self):
        self.cur = Cursor()
        self.commits = 0

    def cursor(self):
        return self.cur

    def commit(self):
        self.commits += 1

    def rollback(self):
        pass


def _applier(dialect: str) -> tuple[Applier, Conn]:
    d = get_dialect(dialect)
    conn = Conn()

    @contextlib.contextmanager
    def connection():
        yield conn

    raw = {"url": "x://", "apply": "cdc", "table_schema": "none"}
    cfg = parse("output", raw.get)
    pool: Any = SimpleNamespace(dialect=d, connection=connection)
    w = Applier(cfg, pool, logging.getLogger("t"))
    w._ready = True  # the position table exists (its DDL is ensure_table's, tested elsewhere)
    assert w.order is not None
    w.order.positions._tconv = TimeConverter("aware", dt.timezone.utc)
    w.order.parked.maybe = False  # nothing parked: no look at the parking table
    types = {"a": "number", "b": "varchar2(40)", "v": "varchar2(100)", "big": "clob"}
    convs: Any = {c: (lambda v: v) for c in types}
    w.targets[(None, "t")] = Target((None, "t"), d.quote("t"), types, ("a", "b"), convs)
    return w, conn


def _chunk() -> bytes:
    return b"".join(
        [
            change("c", "public.t", None, {"a": 1, "b": "x", "v": "n", "big": "B"}, "0/10", 0),
            change("c", "public.t", None, {"a": 2, "b": "y", "v": "n", "big": "B"}, "0/10", 1),
            change(
                "u",
                "public.t",
                {"a": 1, "b": "x"},
                {"a": 1, "b": "z", "v": "k", "big": "B"},
                "0/10",
                2,
            ),
            change("u", "public.t", None, {"a": 2, "b": "y", "v": "u", "big": TOAST}, "0/10", 3),
            change("d", "public.t", {"a": 2, "b": "y"}, None, "0/10", 4),
            change("t", "public.t", None, None, "0/10", 5),
        ]
    )


def test_oracle_statements():
    w, conn = _applier("oracle")
    assert w.write(_chunk(), "cdc") is Outcome.OK
    sent = [c[0] for c in conn.cur.calls]
    assert sent == [
        'SELECT "source_table", "position", "seq" FROM "flbsql_apply_position" WHERE "source" = :1',
        'MERGE INTO "t" t USING (SELECT :1 AS "a", :2 AS "b", :3 AS "v", :4 AS "big" FROM dual) s '
        'ON (t."a" = s."a" AND t."b" = s."b") WHEN MATCHED THEN UPDATE SET t."v" = s."v", '
        't."big" = s."big" WHEN NOT MATCHED THEN INSERT ("a", "b", "v", "big") '
        'VALUES (s."a", s."b", s."v", s."big")',
        'DELETE FROM "t" WHERE "a" = :1 AND "b" = :2',
        sent[1],  # the same MERGE for the moved row
        'UPDATE "t" SET "a" = :1, "b" = :2, "v" = :3 WHERE "a" = :4 AND "b" = :5',
        'DELETE FROM "t" WHERE "a" = :1 AND "b" = :2',
        'DELETE FROM "t"',  # a TRUNCATE would commit on Oracle
        sent[7],
    ]
    assert sent[7].startswith('MERGE INTO "flbsql_apply_position" t USING (SELECT :1 AS "source"')
    assert conn.cur.calls[7][1][0][:5] == (
        "cdc",
        "public.t",
        position_text((0x10, 5)),
        "0/10",
        5,
    )
    assert conn.commits == 1


def test_mssql_statements():
    w, conn = _applier("mssql")
    assert w.write(_chunk(), "cdc") is Outcome.OK
    sent = [c[0] for c in conn.cur.calls]
    assert (
        sent[0] == "SELECT [source_table], [position], [seq] FROM [flbsql_apply_position] "
        "WHERE [source] = %s"
    )
    assert sent[1].startswith(
        "MERGE INTO [t] WITH (HOLDLOCK) AS t USING (VALUES (%s, %s, %s, %s), (%s, %s, %s, %s)) AS s"
    )
    assert sent[1].endswith(";")
    assert "DELETE FROM [t] WHERE [a] = %s AND [b] = %s" in sent
    assert "UPDATE [t] SET [a] = %s, [b] = %s, [v] = %s WHERE [a] = %s AND [b] = %s" in sent
    assert "DELETE FROM [t]" in sent
    assert sent[-1].startswith("MERGE INTO [flbsql_apply_position] WITH (HOLDLOCK) AS t")


def test_a_change_refused_on_its_data_is_isolated_under_savepoints():
    w, conn = _applier("oracle")
    calls = conn.cur.calls

    def execute(stmt, params=None):
        calls.append((stmt, params))
        if stmt.startswith("UPDATE") and not any(c[0].startswith("SAVEPOINT") for c in calls):
            raise w.dialect.classify(ValueError("bad value"))

    conn.cur.execute = execute  # type: ignore[method-assign]
    assert w.write(_chunk(), "cdc") is Outcome.OK
    sent = [c[0] for c in calls]
    first = sent.index("SAVEPOINT flbsql_sp1")
    assert sent[first:].count('DELETE FROM "t"') == 1  # the second pass ran every statement
    assert sent[first:].count("SAVEPOINT flbsql_sp4") == 1


def test_a_replayed_chunk_sends_no_change():
    w, conn = _applier("oracle")
    conn.cur.fetchall = lambda: [("public.t", position_text((0x10, 5)), None)]  # type: ignore[method-assign]
    assert w.write(_chunk(), "cdc") is Outcome.OK
    sent = [c[0] for c in conn.cur.calls]
    assert sent[1:] == ['DELETE FROM "t"', sent[2]]  # only the change at the boundary


@pytest.mark.parametrize(
    ("db_type", "kind"),
    [
        ("integer", "int"),
        ("integer[]", "other"),
        ("interval", "other"),
        ("timestamp with time zone", "timestamp"),
        ("datetime2", "timestamp"),
        ("numeric(10,2)", "decimal"),
        ("number", "decimal"),
        ("jsonb", "json"),
        ("bytea", "bytes"),
        ("varbinary(max)", "bytes"),
        ("character varying", "text"),
        ("uuid", "other"),
        ("date", "other"),
        ("tinyint(1)", "bool"),
    ],
)
def test_column_kinds(db_type, kind):
    assert column_kind(db_type) == kind


@pytest.mark.parametrize("name", ["apply_parked_table", "apply_gap_wait", "apply_source"])
def test_apply_options_without_apply_are_refused_naming_the_option(name):
    from flbsql.errors import ConfigError
    from flbsql.output.choose import open_writer

    raw = {"url": "sqlite:///x.db", name: "5" if name == "apply_gap_wait" else "x"}
    cfg = parse("output", raw.get)
    pool: Any = SimpleNamespace(dialect=get_dialect("sqlite"))
    with pytest.raises(ConfigError, match=name):
        open_writer(cfg, pool, logging.getLogger("t"))


def test_the_parked_changes_go_through_the_dialects_statements():
    """Parking on Oracle: MERGE that keeps a change parked twice once; a keyed DELETE."""
    from flbsql.output.parked import Parked

    p = Parked("flbsql_apply_parked", get_dialect("oracle"))
    assert p._add.startswith('MERGE INTO "flbsql_apply_parked" t USING (SELECT :1 AS "source"')
    assert "WHEN MATCHED" not in p._add
    assert p._remove == (
        'DELETE FROM "flbsql_apply_parked" WHERE "source" = :1 AND "source_table" = :2 '
        'AND "seq" = :3'
    )
    assert p._take.endswith("FETCH FIRST 20000 ROWS ONLY")
