"""The apply parking table: changes that came before an older change of their table.

Fluent Bit does not keep an output's chunks in order: after a restart it flushes the
filesystem backlog beside new records, and a chunk that failed is retried after newer
ones were flushed. in_sql numbers each table's changes (``seq``, dense:
:mod:`flbsql.cdc.sequence`), so apply mode sees the gap. A change whose ``seq`` is
more than one past the last applied of its table is parked here, in the flush's
transaction, and the flush succeeds; the flush that brings the missing changes
applies them and then the parked ones that follow, in order, and deletes those
(:mod:`flbsql.output.order`)::

    source        VARCHAR  -- as in the position table
    source_table  VARCHAR
    seq           BIGINT   -- the change's number in its table
    position      VARCHAR  -- its position, fixed-width hex (for the reader)
    parked_epoch  BIGINT   -- when it was parked, Unix seconds
    event         BLOB     -- the Fluent Bit event, msgpack [[sec, nsec], {}], body
    UNIQUE (source, source_table, seq)

``apply_parked_table`` (default ``flbsql_apply_parked``) is created on first use,
like the position table. A flush reads parked rows only while the table holds
some; one flush takes at most :data:`TAKE` of a table's, in order.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import msgpack

from flbsql.dialects import sql
from flbsql.events.codec import header
from flbsql.output.tables import OwnTable

if TYPE_CHECKING:
    import logging

    from flbsql.dialects.base import Dialect
    from flbsql.settings import OutputConfig

__all__ = ["TAKE", "Group", "Parked", "ParkedRow"]

TAKE = 20_000  # parked changes of one table read by one flush

COLUMN_TYPES = (
    ("source", "string"),
    ("source_table", "string"),
    ("seq", "int"),
    ("position", "string"),
    ("parked_epoch", "int"),
    ("event", "bytes"),
)
COLUMNS = tuple(c for c, _ in COLUMN_TYPES)
KEY = ("source", "source_table", "seq")
Group = tuple[str, str]  # (source, source table)
ParkedRow = tuple[str, str, int, str, int, bytes]  # COLUMNS' values


def pack_event(sec: int, nsec: int, body: Any) -> bytes:
    """The event as Fluent Bit's v2 msgpack (how it is stored, and read back)."""
    packed: bytes = msgpack.packb(body, use_bin_type=True, unicode_errors="surrogateescape")
    return header(sec, nsec) + packed


class Parked:
    """Reads, adds and removes parked changes (inside the caller's transaction)."""

    def __init__(self, name: str, dialect: Dialect) -> None:
        """``name`` is the option's value (validated here)."""
        self.own = OwnTable("apply_parked_table", name, dialect)
        self.table_sql = self.own.table_sql
        q, p = dialect.quote, dialect.placeholder
        self._groups = (
            f"SELECT {q('source')}, {q('source_table')}, MIN({q('parked_epoch')}) "
            f"FROM {self.table_sql} GROUP BY {q('source')}, {q('source_table')}"
        )
        self._take = dialect.limit(
            f"SELECT {', '.join(map(q, COLUMNS))} FROM {self.table_sql} "
            f"WHERE {q('source')} = {p(0)} AND {q('source_table')} = {p(1)} "
            f"ORDER BY {q('seq')}",
            TAKE,
        )
        # a change parked again (its chunk flushed twice) is the same change: kept once
        self._add = sql.upsert(dialect, self.table_sql, COLUMNS, KEY, False)
        self._remove = f"DELETE FROM {self.table_sql} WHERE " + " AND ".join(
            f"{q(c)} = {p(i)}" for i, c in enumerate(KEY)
        )
        self.maybe = True  # the table may hold rows: look (cleared when it held none)

    def ensure(self, conn: Any, cfg: OutputConfig, log: logging.Logger) -> None:
        """Create the table when missing (outside the flush transaction)."""
        self.own.ensure(conn, COLUMN_TYPES, KEY, cfg, log)

    def groups(self, cur: Any) -> dict[Group, int]:
        """(source, source table) -> when its oldest change was parked (Unix seconds)."""
        cur.execute(self._groups)
        found = {(str(s), str(t)): int(e) for s, t, e in cur.fetchall()}
        self.maybe = bool(found)
        return found

    def take(self, cur: Any, group: Group) -> list[ParkedRow]:
        """The group's first :data:`TAKE` parked changes, by ``seq``."""
        cur.execute(self._take, group)
        return [(str(s), str(t), int(n), str(p), int(e), bytes(ev)) for s, t, n, p, e, ev in cur]

    def add(self, cur: Any, rows: Sequence[tuple[str, str, int, str, bytes]]) -> None:
        """Park ``(source, source table, seq, position text, event)`` rows."""
        if rows:
            now = int(time.time())
            cur.executemany(self._add, [(s, t, n, p, now, ev) for s, t, n, p, ev in rows])
            self.maybe = True

    def remove(self, cur: Any, keys: Iterable[tuple[str, str, int]]) -> None:
        """Delete parked changes that were applied (or turned out to be replays)."""
        keys = list(keys)
        if keys:
            cur.executemany(self._remove, keys)
