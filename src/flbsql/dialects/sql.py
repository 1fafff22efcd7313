"""The ANSI statement builder: every identifier through ``dialect.quote``, every value bound.

Statements are built from a dialect's :class:`~flbsql.dialects.base.Capabilities`
(quote characters, paramstyle, upsert style) and never from f-strings holding
configuration text. Values never appear in SQL text: only placeholders do.

Upsert styles:

- ``on_conflict`` (PostgreSQL, SQLite): ``ON CONFLICT (key) DO NOTHING`` /
  ``DO UPDATE SET c = EXCLUDED.c``;
- ``mysql``: ``ON DUPLICATE KEY UPDATE`` (``k = k`` to ignore, ``c = VALUES(c)`` to
  update). ``INSERT IGNORE`` is avoided on purpose: it also turns data errors
  (over-long text, bad numbers) into warnings and silently stores altered values;
- ``merge`` (Oracle, SQL Server): ``MERGE`` with a dialect-rendered source.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flbsql.dialects.base import Dialect

__all__ = [
    "add_column",
    "column_list",
    "create_table",
    "insert",
    "insert_values",
    "marks",
    "upsert",
]


def column_list(d: Dialect, columns: Sequence[str], prefix: str = "") -> str:
    """``"a", "b"`` (optionally ``s."a", s."b"``)."""
    return ", ".join(prefix + d.quote(c) for c in columns)


def marks(d: Dialect, ncols: int, start: int = 0) -> str:
    """``(?, ?, ?)`` for one row, numbered from ``start`` for numeric styles."""
    return "(" + ", ".join(d.placeholder(start + i) for i in range(ncols)) + ")"


def insert(d: Dialect, table_sql: str, columns: Sequence[str]) -> str:
    """Single-row INSERT, for ``executemany`` (array DML, PyMySQL's multi-row rewrite)."""
    return f"INSERT INTO {table_sql} ({column_list(d, columns)}) VALUES {marks(d, len(columns))}"


def insert_values(d: Dialect, table_sql: str, columns: Sequence[str], nrows: int) -> str:
    """Multi-row ``INSERT ... VALUES (...), (...)`` with ``nrows`` rows of placeholders."""
    n = len(columns)
    rows = ", ".join(marks(d, n, r * n) for r in range(nrows))
    return f"INSERT INTO {table_sql} ({column_list(d, columns)}) VALUES {rows}"


def _non_key(columns: Sequence[str], key: Sequence[str]) -> list[str]:
    keys = set(key)
    return [c for c in columns if c not in keys]


def upsert(
    d: Dialect,
    table_sql: str,
    columns: Sequence[str],
    key: Sequence[str],
    update: bool,
    nrows: int = 1,
) -> str:
    """Insert-or-ignore (``update`` False) or insert-or-update, per the dialect's style."""
    missing = [k for k in key if k not in columns]
    if missing or not key:
        raise ValueError(f"unique key {list(key)} is not among the written columns {list(columns)}")
    style = d.caps.upsert_style
    others = _non_key(columns, key)
    if style == "merge":
        return merge(d, table_sql, columns, key, update, nrows)
    base = (
        insert_values(d, table_sql, columns, nrows) if nrows > 1 else insert(d, table_sql, columns)
    )
    if style == "on_conflict":
        target = column_list(d, key)
        if not update or not others:
            return f"{base} ON CONFLICT ({target}) DO NOTHING"
        sets = ", ".join(f"{d.quote(c)} = EXCLUDED.{d.quote(c)}" for c in others)
        return f"{base} ON CONFLICT ({target}) DO UPDATE SET {sets}"
    if style == "mysql":
        if not update or not others:
            k = d.quote(key[0])
            return f"{base} ON DUPLICATE KEY UPDATE {k} = {k}"
        sets = ", ".join(f"{d.quote(c)} = VALUES({d.quote(c)})" for c in others)
        return f"{base} ON DUPLICATE KEY UPDATE {sets}"
    raise AssertionError(style)


def merge(
    d: Dialect,
    table_sql: str,
    columns: Sequence[str],
    key: Sequence[str],
    update: bool,
    nrows: int = 1,
) -> str:
    """``MERGE INTO t USING <source> s ON (keys) WHEN [NOT] MATCHED ...``.

    The source comes from ``d.merge_source(columns, nrows)`` (Oracle: ``SELECT :1 AS
    "a", ... FROM dual``; SQL Server: ``(VALUES (...), (...)) AS s ("a", ...)``).
    """
    on = " AND ".join(f"t.{d.quote(k)} = s.{d.quote(k)}" for k in key)
    target = d.merge_target(table_sql)  # type: ignore[attr-defined]
    source = d.merge_source(columns, nrows)  # type: ignore[attr-defined]
    stmt = f"MERGE INTO {target} USING {source} ON ({on})"
    others = _non_key(columns, key)
    if update and others:
        sets = ", ".join(f"t.{d.quote(c)} = s.{d.quote(c)}" for c in others)
        stmt += f" WHEN MATCHED THEN UPDATE SET {sets}"
    stmt += (
        f" WHEN NOT MATCHED THEN INSERT ({column_list(d, columns)}) "
        f"VALUES ({column_list(d, columns, 's.')})"
    )
    return stmt + d.merge_terminator  # type: ignore[attr-defined,no-any-return]


def create_table(
    d: Dialect,
    table_sql: str,
    coldefs: Sequence[tuple[str, str]],
    unique: Sequence[str] = (),
) -> str:
    """``CREATE TABLE [IF NOT EXISTS] t ("c" TYPE, ..., UNIQUE (key))``.

    Column types come from the dialect's ``caps.types`` (or the mapping), never
    from record data.
    """
    parts = [f"{d.quote(name)} {ctype}" for name, ctype in coldefs]
    if unique:
        parts.append(f"UNIQUE ({column_list(d, unique)})")
    ine = "IF NOT EXISTS " if d.caps.create_if_not_exists else ""
    return f"CREATE TABLE {ine}{table_sql} ({', '.join(parts)})"


def add_column(d: Dialect, table_sql: str, name: str, ctype: str) -> str:
    """``ALTER TABLE t ADD [COLUMN] "c" TYPE``."""
    kw = "ADD" if d.caps.upsert_style == "merge" else "ADD COLUMN"
    return f"ALTER TABLE {table_sql} {kw} {d.quote(name)} {ctype}"
