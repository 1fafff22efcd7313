"""SQLite (stdlib ``sqlite3``): the embedded default, no server needed.

The database is a file; concurrent writers wait up to ``statement_timeout`` for
the lock (busy timeout) instead of failing at once. WAL journal mode lets the
input read while the output writes. Our connection checkpoints the WAL into the
database every 4,096 pages (16 MiB at the default page size; SQLite's default is
1,000): each flush commits a chunk, and a checkpoint every few chunks held the
engine thread often enough to cost the output 10% (1M records in Fluent Bit 5.1.1:
99k -> 108k rows/s).
"""

from __future__ import annotations

import decimal
import itertools
import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any

from flbsql.conn.url import ConnectParams
from flbsql.dialects.base import Capabilities, Column, Connection, Dialect
from flbsql.dialects.pgbinary import c_encode
from flbsql.errors import DisconnectError, RecordError, TerminalError, TransientError

__all__ = ["DIALECT", "SQLiteDialect", "journal_wal"]


def journal_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """``PRAGMA journal_mode=WAL``, waiting for a lock as the busy timeout would.

    Switching a new file's journal takes its exclusive lock, and SQLite answers
    "database is locked" at once, without its busy handler, when another connection
    holds a lock on it: two writers (the default) opening a new file together, one
    of them then failing its first connect and every flush in the pool's backoff.
    The one that waits finds the file in WAL mode already (it is kept in the file).
    The input's position file (``input/store.py``) opens its file the same way.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:  # noqa: PERF203 - at open, rarely twice
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


class SQLiteDialect(Dialect):
    """SQLite 3.24+ (upsert, row values)."""

    name = "sqlite"
    driver = "sqlite3"
    caps = Capabilities(
        paramstyle="qmark",
        max_identifier_length=1024,
        max_rows_per_insert=None,
        max_params=32766,
        upsert_style="on_conflict",
        enforces_length=False,
        streaming=True,  # executemany consumes an iterator of rows as it goes
        # one writer at a time, but a flush encodes its chunk before it takes the lock
        # (BEGIN IMMEDIATE): a second thread encodes while the first writes
        writers=2,
        types={
            "text": "TEXT",
            "string": "VARCHAR(255)",
            "key_text": "TEXT",  # a text column in a key index: the widest it can be
            "int": "INTEGER",
            "float": "REAL",
            "bool": "INTEGER",
            "timestamp": "TEXT",
            "json": "TEXT",
            "bytes": "BLOB",
            "decimal": "TEXT",
        },
    )

    def connect(self, params: ConnectParams) -> Connection:
        """Open the file with a busy timeout; WAL journal for concurrent readers.

        A ``decimal.Decimal`` (a DECIMAL column's value in apply mode) is bound as its
        exact text, which SQLite's NUMERIC affinity stores as a number.
        """
        sqlite3.register_adapter(decimal.Decimal, str)
        conn = sqlite3.connect(
            params.database or ":memory:",
            timeout=params.statement_timeout,
            isolation_level="DEFERRED",
            check_same_thread=False,
        )
        if params.database not in (None, ":memory:"):
            journal_wal(conn, params.statement_timeout)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA wal_autocheckpoint=4096")
        return conn

    def begin(self, conn: Any, cur: Any) -> None:
        """Open the flush transaction explicitly.

        A SAVEPOINT outside a transaction starts one, and releasing it would
        COMMIT; an explicit BEGIN keeps the whole flush one transaction. IMMEDIATE
        takes the write lock at once (waiting up to ``statement_timeout`` for another
        flush's commit), so a flush never fails half way for a lock it could not upgrade.
        """
        if not conn.in_transaction:
            cur.execute("BEGIN IMMEDIATE")

    def bulk_path(self, conn: Connection) -> tuple[str, str | None]:
        """``executemany`` in the flush's one transaction."""
        return "executemany, one transaction per flush", None

    def encode_chunk(
        self, data: bytes | memoryview, tag: str, types: Sequence[str] | None, utc: bool = True
    ) -> tuple[Iterable[Sequence[Any]], int] | None:
        """A chunk for a (tag, time, data) table of TEXT columns, its rows built in C.

        ``csrc/pgcopy.c`` ``flbsql_lines_iso`` writes each record's UTC time as ISO text
        and its JSON on lines of their own, exactly what the Python path binds
        (tests/unit/dialects/test_pgcopy.py); splitting the text gives both columns
        without a Python step per row. None (the Python path) for another shape or zone,
        or a chunk the C code does not take as is.
        """
        if not utc or types is None or [t.lower() for t in types] != ["text"] * 3:
            return None
        encoded = c_encode("flbsql_lines_iso", data, b"")
        if encoded is None:
            return None
        lines = str(encoded[0].payload, "utf-8").split("\n")
        return zip(itertools.repeat(tag), lines[0:-1:2], lines[1::2]), encoded[1]

    def is_disconnect(self, exc: BaseException) -> bool:
        """A closed handle or a vanished/corrupt file."""
        return (isinstance(exc, sqlite3.ProgrammingError) and "closed" in str(exc)) or (
            isinstance(exc, sqlite3.OperationalError) and "unable to open" in str(exc)
        )

    def classify(self, exc: BaseException) -> Exception:
        """SQLite has no SQLSTATE: sort by exception class and message."""
        msg = f"sqlite: {type(exc).__name__}: {exc}"
        text = str(exc).lower()
        if self.is_disconnect(exc):
            return DisconnectError(msg)
        if isinstance(exc, sqlite3.OperationalError) and (
            "locked" in text or "busy" in text or "disk i/o" in text or "full" in text
        ):
            return TransientError(msg)
        if isinstance(exc, (sqlite3.IntegrityError, sqlite3.DataError)):
            return RecordError(msg)
        if isinstance(exc, (sqlite3.InterfaceError, OverflowError, ValueError, TypeError)):
            return RecordError(msg)
        return TerminalError(msg)

    def columns(self, conn: Connection, schema: str | None, table: str) -> list[Column]:
        """PRAGMA table_info, in ordinal order."""
        cur = conn.cursor()
        try:
            cur.execute(f"PRAGMA table_info({self.quote(table)})")
            return [Column(r[1], str(r[2]).lower(), not r[3]) for r in cur.fetchall()]
        finally:
            cur.close()

    def primary_key(self, conn: Connection, schema: str | None, table: str) -> list[str]:
        """Primary key columns in key order; a rowid table without one has none."""
        cur = conn.cursor()
        try:
            cur.execute(f"PRAGMA table_info({self.quote(table)})")
            keyed = sorted((r[5], r[1]) for r in cur.fetchall() if r[5])
            return [name for _, name in keyed]
        finally:
            cur.close()

    # -- input --------------------------------------------------------------------------

    # One write transaction at a time: a rowid or key taken inside it is committed
    # before any other writer can take a larger one.
    input_serial_writers = True


DIALECT = SQLiteDialect()
