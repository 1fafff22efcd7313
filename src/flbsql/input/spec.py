"""What the poll reader reads: its options checked, its names quoted, the sources resolved.

At Init, :func:`check_options` and :func:`check_names` refuse what can never work
without touching the database. :func:`resolve` then asks the database once per source
(a table of ``table`` or ``tables``, or the ``query``): columns, primary key, column
kinds; it returns the :class:`SourceSpec` and the
:class:`~flbsql.input.keyset.KeysetQuery`. With the database down at Init, the fetch
thread calls it again until it answers.

Each source keeps its own position under its own name (:func:`position_name`): with
``table`` (or ``query``) the name is ``position_name``, by default
``<database>/<table>``; with ``tables`` each table's is ``<database>/<table>`` (or
``<position_name>/<table>``), so a single-table input that becomes a many-table one
resumes its table. ``shard i/N`` appends ``#shard<i>`` to the name and ``shard i/N``
to the identity the stored row is checked against, so a changed N is refused instead
of resuming at another shard's position.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import TYPE_CHECKING

from flbsql.errors import ConfigError
from flbsql.input.encoding import HEADER_COLUMN
from flbsql.input.keyset import KeysetQuery
from flbsql.input.shard import check_dialect, parse_shard, shard_condition
from flbsql.input.tables import is_wildcard

if TYPE_CHECKING:
    from collections.abc import Sequence

    from flbsql.conn.pool import Pool
    from flbsql.dialects.base import Column, Dialect
    from flbsql.input.shard import Shard
    from flbsql.settings import InputConfig

__all__ = [
    "SourceSpec",
    "check_names",
    "check_options",
    "event_time_column",
    "named_columns",
    "position_name",
    "resolve",
    "validate",
]


@dataclasses.dataclass(frozen=True)
class SourceSpec:
    """What is read from one source, resolved against the database once."""

    order: tuple[str, ...]
    tracked: bool
    kinds: dict[str, str]
    name: str  # position name, one per source
    source: str  # identity checked against the stored row
    table: str | None = None  # as configured or listed (None: the query)
    extra: dict[str, str] = dataclasses.field(default_factory=dict)  # table_key -> table


def validate(cfg: InputConfig, dialect: Dialect) -> str | None:
    """Everything Init checks of a poll-mode input without the database; its time column.

    The plugin and ``flbsql check`` both run it, so the checker never passes a
    configuration that fails Init.
    """
    check_options(cfg)
    if parse_shard(cfg.shard) is not None:
        check_dialect(dialect)
    time_column = event_time_column(cfg)
    check_names(cfg, dialect, time_column)
    return time_column


def check_options(cfg: InputConfig) -> None:
    """One of ``table``/``tables``/``query``; a query has ``{position}`` and a ``key``."""
    given = [name for name in ("table", "tables", "query") if cfg.option(name)]
    if len(given) != 1:
        raise ConfigError(
            given[1] if len(given) > 1 else "table",
            "set exactly one of `table`, `tables` or `query`",
        )
    if cfg.query and "{position}" not in cfg.query:
        raise ConfigError(
            "query",
            "must contain {position} where the keyset "
            "condition goes, e.g. SELECT * FROM t WHERE {position}",
        )
    if cfg.query and not cfg.key:
        raise ConfigError("key", "required with `query` (the columns that identify a row)")
    if cfg.query and cfg.is_set("table_key"):
        raise ConfigError("table_key", "not with `query`: its rows come from no one table")
    if not cfg.table_key.strip():
        raise ConfigError("table_key", "must name a field")
    parse_shard(cfg.shard)


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
        option = "tables"
        for name in cfg.tables:
            if not is_wildcard(name):
                dialect.table_sql(name)
            elif name.strip() != "*":
                dialect.table_sql(name.strip()[:-1] + "x")  # the schema part
        for option, name in named_columns(cfg, cfg.key, time_column):  # noqa: B007 - in the error
            dialect.quote(name)
    except ValueError as exc:
        raise ConfigError(option, str(exc)) from None


def position_name(
    cfg: InputConfig, database: str | None, table: str | None, shard: Shard | None
) -> str:
    """The name a source's position is stored under (see the module docstring)."""
    db = database or "db"
    if table is None:
        base = cfg.position_name or f"{db}/query-{_query_hash(cfg)}"
    elif cfg.tables:
        base = f"{cfg.position_name or db}/{table}"
    else:
        base = cfg.position_name or f"{db}/{table}"
    return base if shard is None else f"{base}#shard{shard.index}"


def _query_hash(cfg: InputConfig) -> str:
    return hashlib.sha1((cfg.query or "").encode()).hexdigest()[:12]


def resolve(
    cfg: InputConfig, pool: Pool, time_column: str | None, table: str | None
) -> tuple[SourceSpec, KeysetQuery]:
    """Resolve key, order and column kinds of ``table`` (None: the query) against the database."""
    d = pool.dialect
    option = "tables" if cfg.tables else "table"
    kinds: dict[str, str] = {}
    exprs: dict[str, str] = {}
    cols: list[str] = []
    extra: tuple[str, str] | None = None
    with pool.connection() as conn:
        try:
            if table:
                schema, name = d.split_name(table)
                described = d.columns(conn, schema, name)
                cols = [c.name for c in described]
                if not cols:
                    raise ConfigError(
                        option,
                        f"table {table} does not exist (or is not visible to this user)",
                    )
                key = list(cfg.key) or d.primary_key(conn, schema, name)
                if not key:
                    raise ConfigError(
                        "key",
                        f"table {table} has no primary key: set `key` to "
                        "the columns that identify a row (e.g. key id or key a,b)",
                    )
                by_lower = {c.lower(): c for c in cols}
                for opt, c in named_columns(cfg, key, time_column):
                    if c.lower() not in by_lower:
                        raise ConfigError(
                            opt,
                            f"column {c!r} is not in table {table} (it has {', '.join(cols)})",
                        )
                if _adds_table_key(cfg) and cfg.table_key.lower() in by_lower:
                    raise ConfigError(
                        "table_key",
                        f"table {table} has a column {by_lower[cfg.table_key.lower()]!r}; "
                        "set table_key to a field name no table uses",
                    )
                key = [by_lower[k.lower()] for k in key]
                kinds = dict(d.input_column_kinds(conn, schema, name))
                # values the server renders faster than Python (PostgreSQL: ISO
                # timestamps); never order columns, whose typed values are the position,
                # nor the time column, unless the server also gives its event header
                raw = {*(k.lower() for k in key), (cfg.tracking_column or "").lower()}
                extra = _binary_time(d, described, time_column)
                if extra is None:
                    raw.add((time_column or "").lower())
                for col in described:
                    expr = d.input_select_expr(d.quote(col.name), col.type)
                    if expr and col.name.lower() not in raw:
                        exprs[col.name] = expr
                        kinds[col.name] = "quoted"  # a JSON string literal (encoding.py)
            else:
                key = list(cfg.key)
        finally:
            conn.rollback()
    shard = parse_shard(cfg.shard)
    order = tuple(([cfg.tracking_column] if cfg.tracking_column else []) + key)
    source = f"table:{table}" if table else "query:" + _query_hash(cfg)
    if shard is not None:
        source += f" shard {shard}"
    spec = SourceSpec(
        order,
        bool(cfg.tracking_column),
        kinds,
        position_name(cfg, pool.params.database, table, shard),
        source,
        table,
        {cfg.table_key: table} if table and _adds_table_key(cfg) else {},
    )
    query = KeysetQuery(
        d,
        order,
        table=table,
        query=cfg.query,
        columns=cfg.columns,
        where=cfg.where,
        exprs=exprs,
        table_columns=cols,
        last=extra,
        shard=None if shard is None else shard_condition(d, key, shard),
    )
    return spec, query


def _binary_time(
    d: Dialect, described: Sequence[Column], time_column: str | None
) -> tuple[str, str] | None:
    """(alias, SQL) of the time column read as a binary timestamp, or None."""
    col = next((c for c in described if c.name.lower() == (time_column or "").lower()), None)
    if col is None:
        return None
    expr = d.input_time_binary_expr(d.quote(col.name), col.type)
    return None if expr is None else (HEADER_COLUMN, expr)


def _adds_table_key(cfg: InputConfig) -> bool:
    """Records carry their table: always with ``tables``, with ``table`` when asked."""
    return bool(cfg.tables) or cfg.is_set("table_key")
