"""What the poll reader reads: its options checked, its names quoted, the source resolved.

At Init, :func:`check_options` and :func:`check_names` refuse what can never work
without touching the database. :func:`resolve` then asks the database once (table
columns, primary key, column kinds) and returns the :class:`SourceSpec` and the
:class:`~flbsql.input.keyset.KeysetQuery`; with the database down at Init, the fetch
thread calls it again until it answers.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import TYPE_CHECKING

from flbsql.errors import ConfigError
from flbsql.events.codec import MAX_EVENT_SEC, header
from flbsql.input.encoding import HEADER_COLUMN
from flbsql.input.keyset import KeysetQuery

if TYPE_CHECKING:
    from collections.abc import Sequence

    from flbsql.conn.pool import Pool
    from flbsql.dialects.base import Column, Dialect
    from flbsql.settings import InputConfig

__all__ = [
    "SourceSpec",
    "check_names",
    "check_options",
    "default_name",
    "event_time_column",
    "named_columns",
    "resolve",
]


@dataclasses.dataclass(frozen=True)
class SourceSpec:
    """What is read, resolved against the database once."""

    order: tuple[str, ...]
    tracked: bool
    kinds: dict[str, str]
    name: str  # position_name
    source: str  # identity checked against the stored row


def validate(cfg: InputConfig, dialect: Dialect) -> str | None:
    """Everything Init checks of a poll-mode input without the database; its time column.

    The plugin and ``flbsql check`` both run it, so the checker never passes a
    configuration that fails Init.
    """
    check_options(cfg)
    time_column = event_time_column(cfg)
    check_names(cfg, dialect, time_column)
    return time_column


def check_options(cfg: InputConfig) -> None:
    """Exactly one of ``table``/``query``; a query has ``{position}`` and a ``key``."""
    if bool(cfg.table) == bool(cfg.query):
        raise ConfigError("table", "set exactly one of `table` or `query`")
    if cfg.query and "{position}" not in cfg.query:
        raise ConfigError(
            "query",
            "must contain {position} where the keyset "
            "condition goes, e.g. SELECT * FROM t WHERE {position}",
        )
    if cfg.query and not cfg.key:
        raise ConfigError("key", "required with `query` (the columns that identify a row)")


def event_time_column(cfg: InputConfig) -> str | None:
    """The column that gives each event its time, or None (the read time)."""
    if cfg.is_set("time_column") and cfg.time_column.lower() != "none":
        return str(cfg.time_column)
    return None


def named_columns(
    cfg: InputConfig, key: Sequence[str], time_column: str | None
) -> list[tuple[str, str]]:
    """(option, column) for every column the options name."""
    return [
        *(("key", k) for k in key),
        *([("tracking_column", cfg.tracking_column)] if cfg.tracking_column else []),
        *([("time_column", time_column)] if time_column else []),
        *(("columns", c) for c in cfg.columns),
    ]


def check_names(cfg: InputConfig, dialect: Dialect, time_column: str | None) -> None:
    """Refuse at Init a name the dialect cannot quote, naming its option.

    Otherwise the ValueError came from the first query: an Init traceback that
    named no option, or, with the database down at Init, a fetch thread retrying
    a query that can never be built.
    """
    option = "table"
    try:
        if cfg.table:
            dialect.table_sql(cfg.table)
        for option, name in named_columns(cfg, cfg.key, time_column):  # noqa: B007 - in the error
            dialect.quote(name)
    except ValueError as exc:
        raise ConfigError(option, str(exc)) from None


def default_name(cfg: InputConfig, database: str | None) -> str:
    """``position_name`` when unset: the database and the table (or a hash of the query)."""
    what = cfg.table if cfg.table else "query-" + _query_hash(cfg)
    return f"{database or 'db'}/{what}"


def _query_hash(cfg: InputConfig) -> str:
    return hashlib.sha1((cfg.query or "").encode()).hexdigest()[:12]


def resolve(
    cfg: InputConfig, pool: Pool, time_column: str | None
) -> tuple[SourceSpec, KeysetQuery]:
    """Resolve key, order and column kinds against the database."""
    d = pool.dialect
    kinds: dict[str, str] = {}
    exprs: dict[str, str] = {}
    cols: list[str] = []
    extra: tuple[str, str] | None = None
    with pool.connection() as conn:
        try:
            if cfg.table:
                schema, table = d.split_name(cfg.table)
                described = d.columns(conn, schema, table)
                cols = [c.name for c in described]
                if not cols:
                    raise ConfigError(
                        "table",
                        f"table {cfg.table} does not exist (or is not visible to this user)",
                    )
                key = list(cfg.key) or d.primary_key(conn, schema, table)
                if not key:
                    raise ConfigError(
                        "key",
                        f"table {cfg.table} has no primary key: set `key` to "
                        "the columns that identify a row (e.g. key id or key a,b)",
                    )
                by_lower = {c.lower(): c for c in cols}
                for option, c in named_columns(cfg, key, time_column):
                    if c.lower() not in by_lower:
                        raise ConfigError(
                            option,
                            f"column {c!r} is not in table {cfg.table} (it has {', '.join(cols)})",
                        )
                key = [by_lower[k.lower()] for k in key]
                kinds = d.input_column_kinds(conn, schema, table)
                # values the server renders faster than Python (PostgreSQL: ISO
                # timestamps); never order columns, whose typed values are the position,
                # nor the time column, unless the server also gives its event header
                raw = {*(k.lower() for k in key), (cfg.tracking_column or "").lower()}
                extra = _time_header(d, described, time_column)
                if extra is None:
                    raw.add((time_column or "").lower())
                for col in described:
                    expr = d.input_select_expr(d.quote(col.name), col.type)
                    if expr and col.name.lower() not in raw:
                        exprs[col.name] = expr
            else:
                key = list(cfg.key)
        finally:
            conn.rollback()
    order = tuple(([cfg.tracking_column] if cfg.tracking_column else []) + key)
    source = f"table:{cfg.table}" if cfg.table else "query:" + _query_hash(cfg)
    name = cfg.position_name or default_name(cfg, pool.params.database)
    spec = SourceSpec(order, bool(cfg.tracking_column), kinds, name, source)
    query = KeysetQuery(
        d,
        order,
        table=cfg.table,
        query=cfg.query,
        columns=cfg.columns,
        where=cfg.where,
        exprs=exprs,
        table_columns=cols,
        last=extra,
    )
    return spec, query


def _time_header(
    d: Dialect, described: Sequence[Column], time_column: str | None
) -> tuple[str, str] | None:
    """(alias, SQL) of the time column's event header read from the server, or None."""
    col = next((c for c in described if c.name.lower() == (time_column or "").lower()), None)
    if col is None:
        return None
    sample, stamp = header(0x01020304, 0x05060708), bytes(range(1, 9))
    at = sample.index(stamp)
    head, tail = sample[:at], sample[at + 8 :]
    expr = d.input_time_header_expr(d.quote(col.name), col.type, head, tail, MAX_EVENT_SEC)
    return None if expr is None else (HEADER_COLUMN, expr)
