"""Durable positions in a SQLite file, the way in_tail keeps its offsets.

Two tables, one row per position name in each: ``in_sql_positions`` for the
polling input (a typed :class:`~flbsql.input.position.Position`; one row per table of
a many-table or per shard of a sharded input, see :mod:`flbsql.input.spec`, so a file
written by a single-table input needs no migration to be read by one that reads more
tables) and ``in_sql_cdc``
for ``mode cdc`` (its state as JSON, see :data:`flbsql.cdc.CdcState`). The file runs in
WAL mode with ``synchronous`` from ``db.sync`` (tail's option of the same name):
``normal`` survives a crash of the process (kill -9) and loses at most the last
commits on power loss; ``full``/``extra`` survive power loss too.

Migrations are idempotent and counted in ``PRAGMA user_version``. A saved row is
checked before it is trusted (in_tail's ``compute_offset_marker``): its source
and order columns must match the configuration, or Init fails with a message
saying what changed, instead of resuming at a position from another table.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import threading
from typing import Any

from flbsql.dialects.sqlite import journal_wal
from flbsql.errors import ConfigError
from flbsql.input.position import Position

__all__ = ["PositionStore"]

_MIGRATIONS = (
    # 1: the table
    """CREATE TABLE IF NOT EXISTS in_sql_positions (
        name       TEXT PRIMARY KEY,
        source     TEXT NOT NULL,
        position   TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    # 2: the CDC state (files written before the migrations counted it already have it)
    """CREATE TABLE IF NOT EXISTS in_sql_cdc (
        name       TEXT PRIMARY KEY,
        state      TEXT NOT NULL,
        updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
    )""",
)

_SQL_LOAD = "SELECT source, position FROM in_sql_positions WHERE name = ?"
_SQL_SAVE = (
    "INSERT INTO in_sql_positions (name, source, position, updated_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (name) DO UPDATE SET source = excluded.source, "
    "position = excluded.position, updated_at = excluded.updated_at"
)
_SQL_LOAD_STATE = "SELECT state FROM in_sql_cdc WHERE name = ?"
_SQL_SAVE_STATE = (
    "INSERT INTO in_sql_cdc (name, state) VALUES (?, ?) ON CONFLICT (name) "
    "DO UPDATE SET state = excluded.state, updated_at = CURRENT_TIMESTAMP"
)
_BUSY_TIMEOUT = 10.0  # seconds a writer waits for another's lock on the file
_SYNC = {"off": "OFF", "normal": "NORMAL", "full": "FULL", "extra": "EXTRA"}


class PositionStore:
    """The position file of one input instance (several may share a file)."""

    def __init__(self, path: str, sync: str = "normal") -> None:
        """Open (create) the file and bring its schema up to date."""
        self.path = path
        parent = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(parent, exist_ok=True)
            self._conn = sqlite3.connect(
                path, timeout=_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            self._migrate(sync)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError("db", f"cannot open position file {path!r}: {exc}") from None
        self._lock = threading.Lock()

    def _migrate(self, sync: str) -> None:
        c = self._conn
        journal_wal(c, _BUSY_TIMEOUT)
        c.execute(f"PRAGMA synchronous={_SYNC[sync]}")
        version = c.execute("PRAGMA user_version").fetchone()[0]
        for number, ddl in enumerate(_MIGRATIONS, start=1):
            if number > version:
                c.execute("BEGIN IMMEDIATE")
                c.execute(ddl)
                c.execute(f"PRAGMA user_version={number}")
                c.execute("COMMIT")

    def load(self, name: str, source: str, columns: tuple[str, ...]) -> Position | None:
        """The saved position, checked against the configuration; None if none."""
        with self._lock:
            row = self._conn.execute(_SQL_LOAD, (name,)).fetchone()
        if row is None:
            return None
        saved_source, text = row
        try:
            pos = Position.from_json(text)
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                "db",
                f"position {name!r} in {self.path} is unreadable "
                f"({exc}); delete that row to start over",
            ) from None
        if saved_source != source or pos.columns != columns:
            raise ConfigError(
                "position_name",
                f"position {name!r} in {self.path} belongs to {saved_source} ordered by "
                f"{', '.join(pos.columns)}, not to {source} ordered by {', '.join(columns)}; "
                "set another position_name (or delete that row) to start over",
            )
        return pos

    def save(self, name: str, source: str, position: Position) -> None:
        """Store durably (one small transaction)."""
        self.save_many([(name, source, position)])

    def save_many(self, items: list[tuple[str, str, Position]]) -> None:
        """Store the positions of several sources (name, source, position) in one transaction."""
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
        rows = [(name, source, pos.to_json(), now) for name, source, pos in items]
        with self._lock:
            if len(rows) == 1:
                self._conn.execute(_SQL_SAVE, rows[0])
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(_SQL_SAVE, rows)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def load_state(self, name: str) -> dict[str, Any] | None:
        """The saved CDC state of ``name``, or None."""
        with self._lock:
            row = self._conn.execute(_SQL_LOAD_STATE, (name,)).fetchone()
        if row is None:
            return None
        try:
            state: dict[str, Any] = json.loads(row[0])
        except ValueError as exc:
            raise ConfigError(
                "db",
                f"CDC position {name!r} in {self.path} is unreadable "
                f"({exc}); delete that row to start over",
            ) from None
        return state

    def save_state(self, name: str, state: dict[str, Any]) -> None:
        """Replace the saved CDC state of ``name`` (durable per ``db.sync``)."""
        text = json.dumps(state, sort_keys=True)
        with self._lock:
            self._conn.execute(_SQL_SAVE_STATE, (name, text))

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._conn.close()
