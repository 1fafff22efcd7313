"""Making sure the target table exists with the columns the writer needs.

Runs once per writer, before the first flush's transaction (MySQL and Oracle
commit DDL implicitly, so it never shares a transaction with data). Concurrent
creators (two workers, two Fluent Bit instances) are tolerated: a failed CREATE
is followed by a fresh look, and only a table that is still missing is an error.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from flbsql.dialects import sql
from flbsql.dialects.base import Column, Dialect
from flbsql.errors import ConfigError, FlbSqlError, TerminalError
from flbsql.settings import OutputConfig

__all__ = ["OWN_TABLES", "OwnTable", "ensure_table"]

#: The tables out_sql keeps for itself: a column a newer version needs is added.
OWN_TABLES = frozenset({"dead_letter_table", "apply_position_table", "apply_parked_table"})


def _lookup(cols: list[Column]) -> dict[str, Column]:
    by_name = {c.name: c for c in cols}
    for c in cols:  # MySQL and SQL Server compare column names without case
        by_name.setdefault(c.name.lower(), c)
    return by_name


def _run(conn: Any, dialect: Dialect, stmt: str) -> Exception | None:
    cur = conn.cursor()
    try:
        cur.execute(stmt)
        conn.commit()
        return None
    except Exception as exc:
        with contextlib.suppress(Exception):
            conn.rollback()
        err = exc if isinstance(exc, FlbSqlError) else dialect.classify(exc)
        if not isinstance(err, TerminalError):
            raise err from exc
        return err
    finally:
        with contextlib.suppress(Exception):
            cur.close()


def _columns(conn: Any, dialect: Dialect, schema: str | None, table: str) -> list[Column]:
    cols = dialect.columns(conn, schema, table)
    conn.rollback()  # end the read-only transaction the introspection opened
    return cols


def ensure_table(
    conn: Any,
    dialect: Dialect,
    schema: str | None,
    table: str,
    table_sql: str,
    coldefs: Sequence[tuple[str, str]],
    key: Sequence[str],
    cfg: OutputConfig,
    log: logging.Logger,
    option: str = "table",
) -> dict[str, str]:
    """Create the table or add columns as configured; column name -> database type."""
    name = f"{schema}.{table}" if schema else table
    cols = _columns(conn, dialect, schema, table)
    if not cols:
        if not cfg.auto_create_table:
            raise TerminalError(f"{option} {name!r} does not exist and auto_create_table is off")
        err = _run(conn, dialect, sql.create_table(dialect, table_sql, coldefs, key))
        cols = _columns(conn, dialect, schema, table)
        if not cols:
            raise TerminalError(f"cannot create {option} {name!r}: {err}")
        if err is None:
            log.info("created table %s", name)
    by_name = _lookup(cols)
    missing = [(c, t) for c, t in coldefs if c not in by_name and c.lower() not in by_name]
    if missing and (cfg.auto_add_columns or option in OWN_TABLES):
        for column, ctype in missing:
            err = _run(conn, dialect, sql.add_column(dialect, table_sql, column, ctype))
            if err is None:
                log.info("added column %s %s to %s", column, ctype, name)
        by_name = _lookup(_columns(conn, dialect, schema, table))
        missing = [(c, t) for c, t in coldefs if c not in by_name and c.lower() not in by_name]
    if missing:
        raise TerminalError(
            f"{option} {name!r} has no column {', '.join(c for c, _ in missing)}; add it, "
            "set auto_add_columns on, or set tag_column/time_column/json_column to none"
        )
    return {c: (by_name.get(c) or by_name[c.lower()]).type for c, _ in coldefs}


class OwnTable:
    """A table out_sql keeps for itself, named by ``option``: created on first use."""

    def __init__(self, option: str, name: str, dialect: Dialect) -> None:
        """Validate the name (a ConfigError naming ``option``); nothing connects."""
        self.option, self.dialect = option, dialect
        try:
            self.schema, self.table = dialect.split_name(name)
            self.table_sql = dialect.table_sql(name)
        except ValueError as exc:
            raise ConfigError(option, str(exc)) from None

    def ensure(
        self,
        conn: Any,
        columns: Sequence[tuple[str, str]],
        key: Sequence[str],
        cfg: OutputConfig,
        log: logging.Logger,
    ) -> dict[str, str]:
        """Create it or add missing columns; ``columns``: (name, generic type) pairs."""
        t = self.dialect.caps.types
        return ensure_table(
            conn,
            self.dialect,
            self.schema,
            self.table,
            self.table_sql,
            [(c, t[generic]) for c, generic in columns],
            key,
            cfg.replace(auto_create_table=True),
            log,
            option=self.option,
        )
