"""The apply position table: the last change applied, per source and source table.

``apply_position_table`` (default ``flbsql_apply_position``) is created on first use
in the connection's default schema, like the dead-letter table::

    source        VARCHAR  -- apply_source, Debezium's source.name, or the tag
    source_table  VARCHAR  -- the change's source table, schema.table
    position      VARCHAR  -- the source's order as fixed-width hex: compares as text
    lsn           VARCHAR  -- the same position as the source writes it (16/B374D848)
    pos           BIGINT   -- the change's number inside its transaction
    seq           BIGINT   -- in_sql's change number of the table (flbsql.cdc.sequence)
    applied_at    TIMESTAMP
    UNIQUE (source, source_table)

It is read at the start of each flush's transaction and written in it, so a flush
commits its changes and the position together or neither. A change before the
stored position of its source table was applied already (Fluent Bit replays a
chunk whose acknowledgement was lost, in_sql re-delivers after a crash) and is
skipped. A change *at* the stored position is applied again: that is idempotent
(the last change of a table leaves its rows as it wants them), and Debezium gives
several events one position (a key change is a delete and a create from one WAL
record). A snapshot row has no position of its own; it is skipped when the table
already has changes applied from after the point it was read at (a replayed
snapshot chunk must not bring old values back). Deleting a
row makes the next changes of that table apply again from wherever they start
(what a re-initialised replica needs).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flbsql.dialects import sql
from flbsql.output.convert import TimeConverter, time_kind
from flbsql.output.tables import OwnTable

if TYPE_CHECKING:
    from flbsql.dialects.base import Dialect
    from flbsql.settings import OutputConfig

__all__ = ["Positions"]

COLUMN_TYPES = (
    ("source", "string"),
    ("source_table", "string"),
    ("position", "string"),
    ("lsn", "string"),
    ("pos", "int"),
    ("seq", "int"),
    ("applied_at", "timestamp"),
)
COLUMNS = tuple(c for c, _ in COLUMN_TYPES)
KEY = ("source", "source_table")
Position = tuple[int, ...]
Stored = tuple[Position, int | None]  # the last applied position and change number
Moved = tuple[str, str, int, int | None]  # position text, lsn, pos, seq


def _parse(text: str) -> Position:
    return tuple(int(p, 16) for p in str(text).split(":"))


class Positions:
    """Reads and writes one source's positions inside the flush transaction."""

    def __init__(self, name: str, dialect: Dialect) -> None:
        """``name`` is the option's value (validated here)."""
        self.dialect = dialect
        self.name = name
        self.own = OwnTable("apply_position_table", name, dialect)
        self.table_sql = self.own.table_sql
        self._tconv: TimeConverter | None = None
        self._read = (
            f"SELECT {dialect.quote('source_table')}, {dialect.quote('position')}, "
            f"{dialect.quote('seq')} "
            f"FROM {self.table_sql} WHERE {dialect.quote('source')} = {dialect.placeholder(0)}"
        )
        self._write = sql.upsert(dialect, self.table_sql, COLUMNS, KEY, True)

    def ensure(self, conn: Any, cfg: OutputConfig, log: logging.Logger) -> None:
        """Create the table when missing (outside the flush transaction)."""
        types = self.own.ensure(conn, COLUMN_TYPES, KEY, cfg, log)
        self._tconv = TimeConverter(time_kind(types["applied_at"]), dt.timezone.utc)

    def read(self, cur: Any, source: str) -> dict[str, Stored]:
        """Source table -> its last applied position and change number."""
        cur.execute(self._read, (source,))
        return {
            str(table): (_parse(pos), None if seq is None else int(seq))
            for table, pos, seq in cur.fetchall()
        }

    def write(self, cur: Any, source: str, moved: Mapping[str, Moved]) -> None:
        """Store ``source_table -> (position text, lsn, pos, seq)`` for the tables that moved."""
        if not moved:
            return
        now = dt.datetime.now(dt.timezone.utc)
        tconv = self._tconv or TimeConverter("aware", dt.timezone.utc)
        when = tconv(int(now.timestamp()), now.microsecond * 1000)
        rows = [
            (source, table, p, lsn, pos, seq, when) for table, (p, lsn, pos, seq) in moved.items()
        ]
        cur.executemany(self._write, rows)
