"""Keyset SQL for the input: pages in order-column order, never OFFSET.

A page is ``WHERE <filter> AND order > last AND order <= signpost ORDER BY order
LIMIT n``. ``order > last`` is written as a row-value comparison
``(a, b) > (?, ?)`` where the database has one that uses the index
(PostgreSQL, SQLite, MySQL 8), and otherwise in the expanded form, led by a
plain range on the first column so the index still drives the scan::

    a >= ? AND (a > ? OR (a = ? AND b > ?))

Every comparison runs in the database, so text keys follow its collation.
Identifiers are quoted by the dialect; values are always bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flbsql.dialects.base import Dialect

__all__ = ["Binds", "KeysetQuery", "compare"]


class Binds:
    """Collects bound values in the dialect's paramstyle."""

    def __init__(self, dialect: Dialect) -> None:
        """Start empty."""
        self._dialect = dialect
        self._values: list[Any] = []

    def add(self, value: Any) -> str:
        """Bind one value; return its marker."""
        i = len(self._values)
        self._values.append(value)
        return self._dialect.placeholder(i, f"p{i}")

    @property
    def params(self) -> Any:
        """What ``cursor.execute`` takes: a list, or a dict for named style."""
        if self._dialect.caps.paramstyle == "named":
            return {f"p{i}": v for i, v in enumerate(self._values)}
        return list(self._values)


def compare(
    cols: Sequence[str], op: str, values: Sequence[Any], binds: Binds, *, row_values: bool
) -> str:
    """``cols op values`` in lexicographic order; ``op`` is ``>`` or ``<=``.

    Args:
        cols: quoted column expressions.
        op: ``>`` (strictly after) or ``<=`` (up to and including).
        values: one value per column.
        binds: where the values go.
        row_values: use ``(a, b) op (?, ?)``; else the expanded form.
    """
    if op not in (">", "<="):
        raise ValueError(op)
    if len(cols) == 1:
        return f"{cols[0]} {op} {binds.add(values[0])}"
    if row_values:
        marks = ", ".join(binds.add(v) for v in values)
        return f"({', '.join(cols)}) {op} ({marks})"
    strict = ">" if op == ">" else "<"
    lead = ">=" if op == ">" else "<="
    lead_mark = binds.add(values[0])  # bound first: it comes first in the text
    terms = []
    for i in range(len(cols)):
        eq = [f"{cols[j]} = {binds.add(values[j])}" for j in range(i)]
        last_op = op if (op == "<=" and i == len(cols) - 1) else strict
        eq.append(f"{cols[i]} {last_op} {binds.add(values[i])}")
        terms.append("(" + " AND ".join(eq) + ")")
    return f"({cols[0]} {lead} {lead_mark} AND ({' OR '.join(terms)}))"


class KeysetQuery:
    """The statements of one source (a table, or a query with ``{position}``)."""

    def __init__(
        self,
        dialect: Dialect,
        order: Sequence[str],
        *,
        table: str | None = None,
        query: str | None = None,
        columns: Sequence[str] = (),
        where: str | None = None,
        row_values: bool | None = None,
        exprs: dict[str, str] | None = None,
        table_columns: Sequence[str] = (),
        last: tuple[str, str] | None = None,
        shard: str | None = None,
    ) -> None:
        """Describe the source; nothing runs here.

        Args:
            dialect: quoting, placeholders, LIMIT style.
            order: order columns (tracking column first, then the key).
            exprs: column -> SQL that renders it server-side (never an order column).
            table_columns: every column of the table, for an explicit select list.
            last: (alias, SQL) of one more value read last and not emitted (the event
                header of the time column).
            table: source table (``schema.table`` allowed), or
            query: a SELECT containing ``{position}``.
            columns: columns to select (default all); order columns are added.
            where: extra condition (trusted configuration text).
            row_values: force the comparison form (default: from the dialect).
            shard: condition keeping this input's shard (:mod:`flbsql.input.shard`),
                part of every statement: the page, the signpost and the count.
        """
        self.d = dialect
        self.order = [dialect.quote(c) for c in order]
        self.row_values = dialect.input_row_values() if row_values is None else row_values
        # `query` and `where` are SQL text from the config: a '%' in them (LIKE 'err%')
        # must reach the server as is, not be read as a placeholder by format-style drivers
        if dialect.caps.paramstyle in ("format", "pyformat"):
            query = query.replace("%", "%%") if query is not None else None
            where = where.replace("%", "%%") if where else where
            shard = shard.replace("%", "%%") if shard else shard
        self.where = where
        self.shard = shard
        if query is not None:
            if "{position}" not in query:
                raise ValueError("query must contain {position}")
            self._query: str | None = query
            self._from = None
        else:
            if table is None:
                raise ValueError("table or query")
            self._query = None
            self._from = (
                dialect.table_sql(table)
                if hasattr(dialect, "table_sql")
                else (dialect.quote(table))
            )
        exprs = exprs or {}

        def item(c: str) -> str:  # a column, or the dialect's server-side rendering of it
            expr = exprs.get(c)
            return f"{expr} AS {dialect.quote(c)}" if expr else dialect.quote(c)

        if columns:
            lowered = {c.lower() for c in columns}
            extra = [c for c in order if c.lower() not in lowered]
            self.select = ", ".join(item(c) for c in [*columns, *extra])
            self.hidden = tuple(extra)
        elif exprs and table_columns:
            self.select = ", ".join(item(c) for c in table_columns)
            self.hidden = ()
        else:
            self.select = "*"
            self.hidden = ()
        if last is not None:
            self.select += f", {last[1]} AS {dialect.quote(last[0])}"
            self.hidden = (*self.hidden, last[0])

    def _source(self, position_cond: str) -> tuple[str, str]:
        """(FROM clause body, extra condition) with the position inside a query."""
        if self._query is not None:
            return f"({self._query.replace('{position}', position_cond)}) flbsql_q", ""
        assert self._from is not None
        return self._from, position_cond

    def _conds(self, binds: Binds, after: Sequence[Any] | None, upto: Sequence[Any] | None) -> str:
        parts = []
        if after is not None:
            parts.append(compare(self.order, ">", after, binds, row_values=self.row_values))
        if upto is not None:
            parts.append(compare(self.order, "<=", upto, binds, row_values=self.row_values))
        if self.shard:
            parts.append(f"({self.shard})")
        return " AND ".join(parts) if parts else "1=1"

    def _where(self, cond: str) -> str:
        parts = [f"({self.where})"] if self.where else []
        if cond:
            parts.append(cond)
        return (" WHERE " + " AND ".join(parts)) if parts else ""

    def page(
        self, after: Sequence[Any] | None, upto: Sequence[Any] | None, limit: int
    ) -> tuple[str, Any]:
        """Rows strictly after ``after`` and up to ``upto``, in order, at most ``limit``."""
        binds = Binds(self.d)
        src, cond = self._source(self._conds(binds, after, upto))
        order_by = ", ".join(self.order)
        sql = f"SELECT {self.select} FROM {src}{self._where(cond)} ORDER BY {order_by}"
        return self.d.limit(sql, limit), binds.params

    def newest(self) -> tuple[str, Any]:
        """The largest order tuple of the source (the signpost sample)."""
        binds = Binds(self.d)
        src, cond = self._source(f"({self.shard})" if self.shard else "1=1")
        cols = ", ".join(self.order)
        desc = ", ".join(f"{c} DESC" for c in self.order)
        sql = f"SELECT {cols} FROM {src}{self._where(cond)} ORDER BY {desc}"
        return self.d.limit(sql, 1), binds.params

    def count(self, after: Sequence[Any] | None, upto: Sequence[Any] | None) -> tuple[str, Any]:
        """How many rows lie between ``after`` and ``upto`` (rows behind)."""
        binds = Binds(self.d)
        src, cond = self._source(self._conds(binds, after, upto))
        return f"SELECT COUNT(*) FROM {src}{self._where(cond)}", binds.params
