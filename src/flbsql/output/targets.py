"""The tables apply mode writes to: found (or created) once, with their key and types.

A target is introspected the first time a flush names it, before the flush's
transaction (MySQL and Oracle commit DDL implicitly): its columns and types, and
its key (the primary key, else ``unique_key``). A missing table is created from
the first change's columns when ``auto_create_table`` is on (types from the
values: integer, float, boolean, JSON for maps and lists, bytes, text; the key is
``unique_key``), and columns a change brings that the table lacks are added when
``auto_add_columns`` is on. A table that cannot be written (missing, no key) is
not remembered: its records are dead-lettered with the reason, and the next flush
looks again, so creating the table by hand is picked up without a restart.

Values are converted for the column they go to (:mod:`flbsql.output.convert`):
ISO times to times, numbers, JSON documents, bytes. A value the converter does not
recognise goes to the database as it is when the column is a time or a decimal
(``infinity``, ``NaN``) or has a type without a converter (a UUID, a date, an
array), and the database decides.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from flbsql.errors import FlbSqlError, TerminalError
from flbsql.output.convert import TimeConverter, converter, time_kind
from flbsql.output.routing import TableName, TableRouter
from flbsql.output.tables import ensure_table

if TYPE_CHECKING:
    import datetime as dt

    from flbsql.dialects.base import Dialect
    from flbsql.settings import OutputConfig

__all__ = ["Target", "column_kind", "load_target"]

Converter = Callable[[Any], Any]
_KINDS = (  # (substring of the database type, generic kind); first match wins
    ("[]", "other"),  # PostgreSQL arrays: the driver adapts lists
    ("interval", "other"),
    ("point", "other"),
    ("bool", "bool"),
    ("tinyint(1)", "bool"),
    ("int", "int"),
    ("double", "float"),
    ("float", "float"),
    ("real", "float"),
    ("numeric", "decimal"),
    ("decimal", "decimal"),
    ("number", "decimal"),
    ("json", "json"),
    ("bytea", "bytes"),
    ("blob", "bytes"),
    ("binary", "bytes"),
    ("raw", "bytes"),
    ("timestamp", "timestamp"),
    ("datetime", "timestamp"),
    ("char", "text"),
    ("text", "text"),
    ("clob", "text"),
)


def column_kind(db_type: str) -> str:
    """The generic kind a database type takes values as (``other``: passed as they are)."""
    t = db_type.lower()
    for part, kind in _KINDS:
        if part in t:
            return kind
    return "other"


def _lenient(conv: Converter) -> Converter:
    def convert(v: Any) -> Any:
        try:
            return conv(v)
        except ValueError:
            if isinstance(v, str):  # 'infinity', 'NaN', ...: the database decides
                return v
            raise

    return convert


@dataclasses.dataclass
class Target:
    """One table apply mode writes: quoted name, columns, key, converters."""

    name: TableName
    table_sql: str
    types: dict[str, str]  # column -> database type, table order
    key: tuple[str, ...]
    convs: dict[str, Converter]

    def bulk_types(self, columns: Sequence[str]) -> list[str] | None:
        """Types for a bulk path that binds by type, None when the values are not all typed."""
        kinds = [column_kind(self.types[c]) for c in columns]
        return None if "other" in kinds else [self.types[c] for c in columns]

    def values(self, row: dict[str, Any], columns: Sequence[str]) -> tuple[Any, ...]:
        """The bound values of ``columns`` from a record row (errors name the column)."""
        out = []
        for c in columns:
            v = row.get(c)
            try:
                out.append(None if v is None else self.convs[c](v))
            except (ValueError, TypeError, FlbSqlError) as exc:
                raise ValueError(f"column {c!r}: {exc}") from None
        return tuple(out)


def _infer(value: Any, keyed: bool, types: dict[str, str]) -> str:
    if isinstance(value, bool):
        return types["bool"]
    if isinstance(value, int):
        return types["int"]
    if isinstance(value, float):
        return types["float"]
    if isinstance(value, (dict, list)):
        return types["json"]
    if isinstance(value, (bytes, bytearray)):
        return types["bytes"]
    return types["key_text" if keyed else "text"]


def _convs(dialect: Dialect, types: dict[str, str], zone: dt.tzinfo) -> dict[str, Converter]:
    caps = dialect.caps
    out: dict[str, Converter] = {}
    for name, db_type in types.items():
        kind = column_kind(db_type)
        if kind == "other":
            out[name] = lambda v: v
            continue
        conv = converter(
            kind,
            nul_ok=caps.text_nul,
            json_bytes=False,
            tconv=TimeConverter(time_kind(db_type), zone),
        )
        out[name] = _lenient(conv) if kind in ("timestamp", "decimal") else conv
    return out


def load_target(
    conn: Any,
    dialect: Dialect,
    router: TableRouter,
    name: TableName,
    columns: dict[str, Any],
    cfg: OutputConfig,
    log: logging.Logger,
    zone: dt.tzinfo,
) -> Target:
    """Introspect (create, extend) a table for ``columns`` (column -> a sample value).

    Raises:
        TerminalError: the table cannot be written; the message says why and what to do.
    """
    schema, table = name
    table_sql = router.table_sql(name)
    text = router.text(name)
    found = dialect.columns(conn, schema, table)
    conn.rollback()
    key = list(cfg.unique_key)
    grow = not found or (cfg.auto_add_columns and set(columns) - {c.name for c in found})
    if grow:
        if not found and (not key or any(k not in columns for k in key)):
            raise TerminalError(
                f"table {text!r} does not exist and cannot be created: set unique_key to "
                f"its key columns (the change has {', '.join(columns) or 'no columns'})"
            )
        keep = {c.name for c in found}
        coldefs = [(c, _infer(v, c in key, dialect.caps.types)) for c, v in columns.items()]
        coldefs = [d for d in coldefs if d[0] not in keep] if found else coldefs
        ensure_table(conn, dialect, schema, table, table_sql, coldefs, key, cfg, log)
        found = dialect.columns(conn, schema, table)
        conn.rollback()
    types = {c.name: c.type for c in found}
    pk = dialect.primary_key(conn, schema, table)
    conn.rollback()
    if not key or any(k not in types for k in key):  # unique_key, when set, comes first
        key = pk
    if not key:
        raise TerminalError(
            f"table {text!r} has no primary key: set unique_key to the columns that identify a row"
        )
    return Target(name, table_sql, types, tuple(key), _convs(dialect, types, zone))
