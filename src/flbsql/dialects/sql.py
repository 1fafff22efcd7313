"""The ANSI statement builder: every identifier through ``d.quote``, every value bound.

Statements are built from a dialect's :class:`~flbsql.dialects.capabilities.Capabilities`
(quote characters, paramstyle, upsert style) and never from f-strings holding
configuration text. Values never appear in SQL text: only placeholders do.

This module knows dialects only through :class:`Flavour`, the few methods a
builder calls; :class:`flbsql.dialects.base.Dialect` is one (the base module
imports this one, never the other way round).

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
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from flbsql.dialects.capabilities import Capabilities

__all__ = [
    "Flavour",
    "add_column",
    "column_list",
    "columns_query",
    "create_table",
    "insert",
    "insert_values",
    "limit",
    "marks",
    "merge",
    "placeholder",
    "primary_key_query",
    "split_name",
    "upsert",
    "upsert_select",
    "values_source",
]


class Flavour(Protocol):
    """What the builders need from a dialect: its data, quoting and MERGE parts."""

    @property
    def caps(self) -> Capabilities:
        """The dialect's data: quotes, paramstyle, upsert style, limits."""

    def quote(self, name: str) -> str:
        """One identifier, quoted (refused with ValueError when the server cannot name it)."""

    def placeholder(self, index: int, name: str | None = None) -> str:
        """The bind marker for parameter ``index`` (0-based)."""

    def merge_target(self, table_sql: str) -> str:
        """The MERGE target, aliased ``t``."""

    def merge_source(self, columns: Sequence[str], nrows: int) -> str:
        """The MERGE source of ``nrows`` rows of binds, aliased ``s`` with ``columns``."""


# -- pieces -------------------------------------------------------------------------------


def placeholder(caps: Capabilities, index: int, name: str | None = None) -> str:
    """The bind marker for parameter ``index`` (0-based) in the driver's paramstyle."""
    style = caps.paramstyle
    if style == "qmark":
        return "?"
    if style in ("format", "pyformat"):
        return "%s"
    if style == "numeric":
        return f":{index + 1}"
    if style == "named":
        return f":{name or f'p{index}'}"
    raise AssertionError(style)


def column_list(d: Flavour, columns: Sequence[str], prefix: str = "") -> str:
    """``"a", "b"`` (optionally ``s."a", s."b"``)."""
    return ", ".join(prefix + d.quote(c) for c in columns)


def marks(d: Flavour, ncols: int, start: int = 0) -> str:
    """``(?, ?, ?)`` for one row, numbered from ``start`` for numeric styles."""
    return "(" + ", ".join(d.placeholder(start + i) for i in range(ncols)) + ")"


def limit(caps: Capabilities, select: str, n: int) -> str:
    """``select`` with a row limit, in the dialect's ``limit_style``."""
    if caps.limit_style == "fetch_first":
        return f"{select} FETCH FIRST {int(n)} ROWS ONLY"
    if caps.limit_style == "top":
        return select.replace("SELECT ", f"SELECT TOP {int(n)} ", 1)
    return f"{select} LIMIT {int(n)}"


def split_name(name: str) -> tuple[str | None, str]:
    """``schema.table`` to (schema, table); a plain name has no schema.

    A dot separates the schema from the table. A part written in double quotes
    is taken as it is, dots included: ``"my.table"`` is one table named
    ``my.table``, ``sales."2024.q1"`` the table ``2024.q1`` in schema ``sales``;
    inside the quotes ``""`` stands for one ``"``. A part that does not start
    with a quote is literal up to the dot (``tab"le`` is the table ``tab"le``).
    Refused: more than two parts, an empty part, an unclosed quote, or text
    after a closing quote.
    """
    parts: list[str] = []
    i, n = 0, len(name)
    while True:
        if name.startswith('"', i):  # quoted part: up to the lone closing quote
            buf, j = [], i + 1
            while True:
                k = name.find('"', j)
                if k < 0:
                    raise ValueError(f"invalid table name {name!r}: unclosed double quote")
                buf.append(name[j:k])
                if name.startswith('""', k):  # "" inside quotes: one literal quote
                    buf.append('"')
                    j = k + 2
                    continue
                i = k + 1
                break
            parts.append("".join(buf))
            if i < n and name[i] != ".":
                raise ValueError(f"invalid table name {name!r}: text after a closing double quote")
        else:
            k = name.find(".", i)
            k = n if k < 0 else k
            parts.append(name[i:k])
            i = k
        if i >= n:
            break
        i += 1  # the dot
        if i >= n:
            parts.append("")
            break
    if len(parts) > 2 or not all(parts):
        raise ValueError(
            f"invalid table name {name!r}: expected table or schema.table "
            '(write a name that contains a dot in double quotes, e.g. "my.table")'
        )
    return (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])


# -- writes -------------------------------------------------------------------------------


def insert(d: Flavour, table_sql: str, columns: Sequence[str]) -> str:
    """Single-row INSERT, for ``executemany`` (array DML, PyMySQL's multi-row rewrite)."""
    return f"INSERT INTO {table_sql} ({column_list(d, columns)}) VALUES {marks(d, len(columns))}"


def insert_values(d: Flavour, table_sql: str, columns: Sequence[str], nrows: int) -> str:
    """Multi-row ``INSERT ... VALUES (...), (...)`` with ``nrows`` rows of placeholders."""
    n = len(columns)
    rows = ", ".join(marks(d, n, r * n) for r in range(nrows))
    return f"INSERT INTO {table_sql} ({column_list(d, columns)}) VALUES {rows}"


def _check_key(columns: Sequence[str], key: Sequence[str]) -> list[str]:
    """The non-key columns; ValueError when the key is empty or not written."""
    if not key or any(k not in columns for k in key):
        raise ValueError(f"unique key {list(key)} is not among the written columns {list(columns)}")
    keys = set(key)
    return [c for c in columns if c not in keys]


def _on_duplicate(
    d: Flavour, columns: Sequence[str], key: Sequence[str], update: bool, table_sql: str
) -> str:
    """The clause that skips or updates a row whose key exists (on_conflict, mysql styles).

    MySQL's no-op update names the target's column with its table: in ``INSERT ...
    SELECT`` from a staging table a bare name would be ambiguous.
    """
    others = _check_key(columns, key)
    style = d.caps.upsert_style
    if style == "on_conflict":
        target = column_list(d, key)
        if not update or not others:
            return f" ON CONFLICT ({target}) DO NOTHING"
        sets = ", ".join(f"{d.quote(c)} = EXCLUDED.{d.quote(c)}" for c in others)
        return f" ON CONFLICT ({target}) DO UPDATE SET {sets}"
    if style == "mysql":
        if not update or not others:
            k = f"{table_sql}.{d.quote(key[0])}"
            return f" ON DUPLICATE KEY UPDATE {k} = {k}"
        sets = ", ".join(f"{d.quote(c)} = VALUES({d.quote(c)})" for c in others)
        return f" ON DUPLICATE KEY UPDATE {sets}"
    raise AssertionError(style)


def upsert(
    d: Flavour,
    table_sql: str,
    columns: Sequence[str],
    key: Sequence[str],
    update: bool,
    nrows: int = 1,
) -> str:
    """Insert-or-ignore (``update`` False) or insert-or-update, per the dialect's style."""
    if d.caps.upsert_style == "merge":
        return merge(d, table_sql, columns, key, update, nrows)
    tail = _on_duplicate(d, columns, key, update, table_sql)
    if nrows > 1:
        return insert_values(d, table_sql, columns, nrows) + tail
    return insert(d, table_sql, columns) + tail


def upsert_select(
    d: Flavour,
    table_sql: str,
    columns: Sequence[str],
    key: Sequence[str],
    update: bool,
    source_sql: str,
) -> str:
    """``INSERT INTO t (cols) SELECT cols FROM source`` + the upsert clause.

    For a bulk path that loads a staging table first (PostgreSQL's COPY cannot
    skip duplicates). Not for the ``merge`` style.
    """
    cols = column_list(d, columns)
    tail = _on_duplicate(d, columns, key, update, table_sql)
    return f"INSERT INTO {table_sql} ({cols}) SELECT {cols} FROM {source_sql}{tail}"


def values_source(d: Flavour, columns: Sequence[str], nrows: int) -> str:
    """ANSI MERGE source: ``(VALUES (...), (...)) AS s ("a", ...)``."""
    n = len(columns)
    rows = ", ".join(marks(d, n, r * n) for r in range(nrows))
    return f"(VALUES {rows}) AS s ({column_list(d, columns)})"


def merge(
    d: Flavour,
    table_sql: str,
    columns: Sequence[str],
    key: Sequence[str],
    update: bool,
    nrows: int = 1,
) -> str:
    """``MERGE INTO t USING <source> s ON (keys) WHEN [NOT] MATCHED ...``.

    The target comes from ``d.merge_target(table_sql)`` and the source from
    ``d.merge_source(columns, nrows)`` (Oracle: ``SELECT :1 AS "a", ... FROM dual``;
    the ANSI default, SQL Server: ``(VALUES (...), (...)) AS s ("a", ...)``).
    """
    others = _check_key(columns, key)
    on = " AND ".join(f"t.{d.quote(k)} = s.{d.quote(k)}" for k in key)
    stmt = (
        f"MERGE INTO {d.merge_target(table_sql)} USING {d.merge_source(columns, nrows)} ON ({on})"
    )
    if update and others:
        sets = ", ".join(f"t.{d.quote(c)} = s.{d.quote(c)}" for c in others)
        stmt += f" WHEN MATCHED THEN UPDATE SET {sets}"
    stmt += (
        f" WHEN NOT MATCHED THEN INSERT ({column_list(d, columns)}) "
        f"VALUES ({column_list(d, columns, 's.')})"
    )
    return stmt + d.caps.merge_terminator


# -- DDL and introspection ----------------------------------------------------------------


def create_table(
    d: Flavour,
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


def add_column(d: Flavour, table_sql: str, name: str, ctype: str) -> str:
    """``ALTER TABLE t ADD [COLUMN] "c" TYPE``."""
    return f"ALTER TABLE {table_sql} {d.caps.add_column} {d.quote(name)} {ctype}"


def columns_query(d: Flavour) -> str:
    """``information_schema.columns`` of (schema or the current one, table), in order.

    Binds (schema, table); selects name, type (``caps.column_type_field``), nullable.
    """
    return (
        f"SELECT column_name, {d.caps.column_type_field}, is_nullable "
        "FROM information_schema.columns WHERE table_schema = "
        f"COALESCE({d.placeholder(0)}, {d.caps.current_schema}) "
        f"AND table_name = {d.placeholder(1)} ORDER BY ordinal_position"
    )


def primary_key_query(d: Flavour) -> str:
    """Primary key columns of (schema or the current one, table) in key order."""
    return (
        "SELECT k.column_name FROM information_schema.table_constraints c "
        "JOIN information_schema.key_column_usage k "
        "ON k.constraint_name = c.constraint_name AND k.table_schema = c.table_schema "
        "AND k.table_name = c.table_name WHERE c.constraint_type = 'PRIMARY KEY' "
        f"AND c.table_schema = COALESCE({d.placeholder(0)}, "
        f"{d.caps.current_schema}) AND c.table_name = {d.placeholder(1)} "
        "ORDER BY k.ordinal_position"
    )
