"""Statements that apply one change by key: delete, partial update, existence, emptying.

The output's apply mode (:mod:`flbsql.output.apply`) writes inserts through the
dialect's upsert (:func:`flbsql.dialects.sql.upsert`, PostgreSQL's COPY + ``ON
CONFLICT``, MERGE on Oracle and SQL Server); the statements here are the rest. Like
:mod:`flbsql.dialects.sql`, every identifier goes through ``d.quote`` and every value
is bound; nothing here is specific to one database: the only difference, how a table
is emptied inside a transaction, is ``caps.empty_table``.
"""

from __future__ import annotations

from collections.abc import Sequence

from flbsql.dialects.sql import Flavour

__all__ = ["delete_by_key", "empty_table", "exists_by_key", "update_by_key"]


def _where(d: Flavour, key: Sequence[str], start: int) -> str:
    """``"k1" = ? AND "k2" = ?``, the markers numbered from ``start``."""
    if not key:
        raise ValueError("a change is applied by key, and the key is empty")
    return " AND ".join(f"{d.quote(k)} = {d.placeholder(start + i)}" for i, k in enumerate(key))


def delete_by_key(d: Flavour, table_sql: str, key: Sequence[str]) -> str:
    """``DELETE FROM t WHERE k1 = ? AND ...``; binds the key values."""
    return f"DELETE FROM {table_sql} WHERE {_where(d, key, 0)}"


def update_by_key(d: Flavour, table_sql: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """``UPDATE t SET c1 = ?, ... WHERE k1 = ? AND ...``.

    Binds the new values of ``columns`` (key columns among them when the key changes),
    then the old key values. Columns left out keep what the target has (TOAST).
    """
    if not columns:
        raise ValueError("an update needs at least one column to set")
    sets = ", ".join(f"{d.quote(c)} = {d.placeholder(i)}" for i, c in enumerate(columns))
    return f"UPDATE {table_sql} SET {sets} WHERE {_where(d, key, len(columns))}"


def exists_by_key(d: Flavour, table_sql: str, key: Sequence[str]) -> str:
    """``SELECT 1 FROM t WHERE k1 = ? AND ...`` (an update that matched no row: is it there?).

    MySQL counts changed rows, not matched ones, so a zero row count is checked again.
    """
    return f"SELECT 1 FROM {table_sql} WHERE {_where(d, key, 0)}"


def empty_table(d: Flavour, table_sql: str) -> str:
    """The statement that empties a table inside the transaction (``caps.empty_table``)."""
    return f"{d.caps.empty_table} {table_sql}"
