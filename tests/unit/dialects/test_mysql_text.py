"""MySQL bulk text built a column at a time: the same values PyMySQL would send.

``mysqlvalues`` writes SQL literals and ``mysqlload`` LOAD DATA fields without a
Python call per value; both must mean what PyMySQL's escaping means.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pytest
from pymysql.converters import escape_item

from flbsql.dialects import mysqlload, mysqlvalues
from flbsql.errors import BulkRefusedError

TEXTS = ["plain", "", "quote ' and \" both", "back\\slash", "nl\nand\rcr", "nul\x00", "\x1a", "é😀"]
COLUMNS: list[list[Any]] = [
    TEXTS,
    [1, -(2**63), 2**63 - 1, 0, None, 7, 8, 9],
    [1.5, 1e-300, -0.0, 3.0, 1e20, None, 2.5, 0.1],
    [True, False, None, True, False, True, False, True],
    [decimal.Decimal("1.50"), decimal.Decimal("1E+3"), None] + [decimal.Decimal(0)] * 5,
    [dt.datetime(2024, 5, 1, 12, 0, 0, 123), dt.datetime(2024, 5, 1), None] * 2 + [None, None],
    [b"\x00\xff'\\", b"", None, b"a", b"b", b"c", b"d", b"e"],
    [None] * 8,
]


def _rows() -> list[tuple[Any, ...]]:
    return list(zip(*COLUMNS, strict=True))


def test_literals_are_pymysqls():
    head, tail = "INSERT INTO t (a)", " ON DUPLICATE KEY UPDATE a = a"
    (stmt,) = mysqlvalues.insert_statements(head, tail, _rows(), 1 << 20, True) or []
    expected = ",".join("(" + ",".join(_pymysql(v) for v in row) + ")" for row in _rows()).encode()
    assert stmt == head.encode() + b" VALUES " + expected + tail.encode()


def _pymysql(v: Any) -> str:
    if isinstance(v, bytes):  # PyMySQL writes _binary'...'; the same bytes as X'..'
        return "X'" + v.hex() + "'"
    return str(escape_item(v, "utf8mb4"))


def test_quotes_only_without_backslash_escapes():
    (stmt,) = mysqlvalues.insert_statements("I", "", [("a'b\\c",)], 1 << 20, False) or []
    assert stmt == b"I VALUES ('a''b\\c')"


def test_statements_stay_under_the_limit():
    rows = [(f"row {i:04d}",) for i in range(1000)]
    stmts = list(mysqlvalues.insert_statements("INSERT INTO t (a)", "", rows, 4096, True) or [])
    assert len(stmts) > 3 and all(len(s) <= 4096 for s in stmts)
    assert sum(s.count(b"'row ") for s in stmts) == 1000


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), dt.datetime.now(dt.timezone.utc)])
def test_what_pymysql_must_write_is_left_to_it(bad):
    assert mysqlvalues.insert_statements("I", "", [(bad,)], 1 << 20, True) is None


def test_load_data_fields():
    hexed = [False] * 6 + [True, False]
    text = mysqlload.tsv(_rows(), hexed).decode()
    lines = text.split("\n")
    assert lines[-1] == "" and len(lines) == 9
    first = lines[0].split("\t")
    assert first == [
        "plain", "1", "1.5", "1", "1.50", "2024-05-01 12:00:00.000123", "00ff275c", "\\N",
    ]  # fmt: skip
    fields = [line.split("\t")[0] for line in lines[:-1]]
    assert fields[3:6] == ["back\\\\slash", "nl\\nand\rcr", "nul\\0"]
    assert lines[1].split("\t")[4] == "1000"  # fixed notation, as PyMySQL
    assert lines[4].split("\t")[1] == "\\N"
    assert lines[2].split("\t")[2] == "-0.0"


def test_load_data_refuses_what_it_cannot_write():
    with pytest.raises(BulkRefusedError, match="bytes"):
        mysqlload.tsv([(b"x",)], [False])  # bytes only in a binary column
    with pytest.raises(BulkRefusedError):
        mysqlload.tsv([("\udcff",)], [False])  # not UTF-8
