"""Keyset SQL: row values vs expanded OR, bounds, query sources (checked on SQLite)."""

from __future__ import annotations

import itertools
import sqlite3

import pytest

from flbsql.dialects import get_dialect
from flbsql.input.keyset import Binds, KeysetQuery, compare

SQLITE = get_dialect("sqlite")


def test_expanded_form_leads_with_a_range_on_the_first_column():
    b = Binds(SQLITE)
    sql = compare(['"a"', '"b"', '"c"'], ">", [1, 2, 3], b, row_values=False)
    assert sql.startswith('("a" >= ? AND (')
    assert '("a" = ? AND "b" = ? AND "c" > ?)' in sql
    assert b.params == [1, 1, 1, 2, 1, 2, 3]


def test_row_value_form():
    b = Binds(SQLITE)
    assert compare(['"a"', '"b"'], "<=", [1, 2], b, row_values=True) == '("a", "b") <= (?, ?)'
    assert b.params == [1, 2]


def test_numbered_placeholders_follow_the_text_order():
    b = Binds(get_dialect("oracle"))
    sql = compare(['"A"', '"B"'], ">", ["x", 1], b, row_values=False)
    assert sql == '("A" >= :1 AND (("A" > :2) OR ("A" = :3 AND "B" > :4)))'
    assert b.params == ["x", "x", "x", 1]


@pytest.fixture
def grid():
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE g (a INTEGER, b TEXT, c INTEGER, PRIMARY KEY (a, b, c))")
    rows = list(itertools.product(range(4), ["x", "y", "z"], range(3)))
    conn.executemany("INSERT INTO g VALUES (?, ?, ?)", rows)
    return conn, sorted(rows)


@pytest.mark.parametrize("row_values", [True, False], ids=["row_values", "expanded"])
def test_both_forms_select_exactly_the_rows_between_after_and_upto(grid, row_values):
    conn, rows = grid
    q = KeysetQuery(SQLITE, ["a", "b", "c"], table="g", row_values=row_values)
    for i, after in enumerate(rows):
        for upto in rows[i::7]:
            sql, params = q.page(after, upto, 1000)
            got = conn.execute(sql, params).fetchall()
            assert got == [r for r in rows if after < r <= upto], (after, upto)


@pytest.mark.parametrize("row_values", [True, False], ids=["row_values", "expanded"])
def test_paging_visits_every_row_once(grid, row_values):
    conn, rows = grid
    q = KeysetQuery(SQLITE, ["a", "b", "c"], table="g", row_values=row_values, where="c <> 1")
    seen, after = [], None
    while True:
        sql, params = q.page(after, rows[-1], 5)
        page = conn.execute(sql, params).fetchall()
        if not page:
            break
        seen += page
        after = page[-1]
    assert seen == [r for r in rows if r[2] != 1]


def test_query_source_puts_the_condition_at_the_placeholder(grid):
    conn, rows = grid
    q = KeysetQuery(SQLITE, ["a", "b", "c"], query="SELECT a, b, c FROM g WHERE {position}")
    sql, params = q.page((1, "z", 2), (2, "x", 1), 10)
    assert conn.execute(sql, params).fetchall() == [(2, "x", 0), (2, "x", 1)]
    sql, params = q.newest()
    assert conn.execute(sql, params).fetchall() == [rows[-1]]


def test_columns_add_the_order_columns_as_hidden():
    q = KeysetQuery(SQLITE, ["ts", "id"], table="t", columns=["msg"])
    assert q.select == '"msg", "ts", "id"'
    assert q.hidden == ("ts", "id")


def test_identifiers_are_quoted():
    q = KeysetQuery(SQLITE, ['we"ird'], table="t x")
    sql, _ = q.page(None, (1,), 5)
    assert '"we""ird"' in sql and '"t x"' in sql


def test_server_rendered_columns_are_aliased_and_order_columns_stay_raw():
    pg = get_dialect("postgresql")
    q = KeysetQuery(
        pg,
        ["id"],
        table="logs",
        exprs={"ts": 'to_json("ts")::text'},
        table_columns=["id", "ts", "msg"],
    )
    sql, _ = q.page(None, [10], 100)
    assert sql.startswith('SELECT "id", to_json("ts")::text AS "ts", "msg" FROM "logs"')
    assert 'ORDER BY "id"' in sql
    assert pg.input_select_expr('"ts"', "timestamp with time zone") is not None
    assert pg.input_select_expr('"ts"', "timestamp without time zone") is None
