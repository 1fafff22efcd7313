"""MySQL/MariaDB multi-row INSERT text, built a column at a time.

The statement path when ``LOAD DATA LOCAL`` is not allowed. PyMySQL's
``executemany`` escapes every value with a Python call (``conn.literal``); here
each column becomes SQL literals in a few C-level calls, as
:mod:`flbsql.dialects.mysqlload` builds its text: a text column is joined once,
escaped with ``str.replace`` (the escapes of PyMySQL's ``escape_string``, or only
quote doubling under ``NO_BACKSLASH_ESCAPES``) and split again; numbers, times and
``X'hex'`` bytes go through ``map``. The literals are those PyMySQL writes (floats
with an exponent, decimals in fixed notation). A value PyMySQL would refuse (an
infinite float) or a type not listed makes :func:`insert_statements` return None,
and :func:`write` leaves the batch to PyMySQL's own ``executemany``.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["insert_statements", "write"]

_SEP = "\udc80"  # a lone surrogate: no text that can be encoded as UTF-8 holds one
_BACKSLASH = (
    ("\\", "\\\\"),
    ("\x00", "\\0"),
    ("\n", "\\n"),
    ("\r", "\\r"),
    ("\x1a", "\\Z"),
    ("'", "\\'"),
    ('"', '\\"'),
)
_QUOTES_ONLY = (("'", "''"),)


def _text(values: Sequence[str], escapes: Sequence[tuple[str, str]]) -> list[str] | None:
    joined = _SEP.join(values)
    if joined.count(_SEP) != len(values) - 1:
        return None
    for char, escaped in escapes:
        if char in joined:
            joined = joined.replace(char, escaped)
    return ("'" + joined.replace(_SEP, "'" + _SEP + "'") + "'").split(_SEP)


def _float(v: float) -> str:
    s = repr(v)
    if s in ("inf", "-inf", "nan"):
        raise ValueError(s)
    return s if "e" in s else s + "e0"


def _quoted(fmt: Callable[[Any], str]) -> Callable[[Any], str]:
    return lambda v: "'" + fmt(v) + "'"


_FORMATS: dict[type, Callable[[Any], str]] = {
    int: str,
    bool: {True: "1", False: "0"}.__getitem__,
    float: _float,
    decimal.Decimal: "{:f}".format,
    dt.date: _quoted(dt.date.isoformat),
    bytes: lambda v: "X'" + v.hex() + "'",
}


def _column(values: Sequence[Any], escapes: Sequence[tuple[str, str]]) -> list[str] | None:
    kinds = set(map(type, values))
    nulls = type(None) in kinds
    kinds.discard(type(None))
    if not kinds:
        return ["NULL"] * len(values)
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    present = [v for v in values if v is not None] if nulls else values
    if kind is str:
        out = _text(present, escapes)
    elif kind is dt.datetime:
        if present[0].tzinfo is not None:  # one converter per column: all aware or none
            return None
        out = ["'" + s + "'" for s in map(str, present)]
    elif kind in _FORMATS:
        try:
            out = list(map(_FORMATS[kind], present))
        except ValueError:
            return None
    else:
        return None
    if out is None or not nulls:
        return out
    it = iter(out)
    return ["NULL" if v is None else next(it) for v in values]


def insert_statements(
    head: str, tail: str, rows: Sequence[Sequence[Any]], max_bytes: int, backslashes: bool
) -> Iterator[bytes] | None:
    """``head VALUES (...), (...) tail`` statements of at most ``max_bytes``, or None."""
    escapes = _BACKSLASH if backslashes else _QUOTES_ONLY
    if not rows:
        return iter(())
    fields = []
    for values in zip(*rows, strict=True):
        col = _column(values, escapes)
        if col is None:
            return None
        fields.append(col)
    try:
        tuples = [("(" + ",".join(r) + ")").encode() for r in zip(*fields, strict=True)]
    except UnicodeEncodeError:
        return None
    return _split(head.encode() + b" VALUES ", tail.encode(), tuples, max_bytes)


def _split(head: bytes, tail: bytes, tuples: list[bytes], max_bytes: int) -> Iterator[bytes]:
    fixed = len(head) + len(tail)
    start, size = 0, fixed
    for i, t in enumerate(tuples):
        if i > start and size + len(t) + 1 > max_bytes:
            yield head + b",".join(tuples[start:i]) + tail
            start, size = i, fixed
        size += len(t) + 1
    yield head + b",".join(tuples[start:]) + tail


_NO_BACKSLASH_ESCAPES = 512  # SERVER_STATUS_NO_BACKSLASH_ESCAPES, in every OK packet


def write(cur: Any, statement: str, rows: Any, ncols: int) -> None:
    """Run ``statement`` (a one-row ``INSERT ... VALUES (%s, ...) [tail]``) for all rows.

    ``cur.max_stmt_length`` bounds each statement, as in PyMySQL's ``executemany``.
    """
    rows = rows if isinstance(rows, Sequence) else list(rows)
    marks = " VALUES (" + ", ".join(["%s"] * ncols) + ")"
    head, found, tail = statement.partition(marks)
    status = getattr(cur.connection, "server_status", 0) or 0
    built = (
        insert_statements(head, tail, rows, cur.max_stmt_length, not status & _NO_BACKSLASH_ESCAPES)
        if found
        else None
    )
    if built is None:
        cur.executemany(statement, rows)
        return
    for stmt in built:
        cur.execute(stmt)
