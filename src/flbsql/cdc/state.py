"""The CDC position: snapshot progress and stream phase, kept in the ``db`` file.

The stream position itself is the slot's ``confirmed_flush_lsn`` (PostgreSQL keeps
it); this file records what PostgreSQL cannot: how far the initial snapshot got,
when it ended (its LSN marks the overlap with the stream) and that the stream
started, so a slot that disappears later is detected as a loss instead of being
recreated. One row per position name in table ``in_sql_cdc`` (the polling input's
table, ``in_sql_positions``, is left alone).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from typing import Any

from flbsql.errors import ConfigError

__all__ = ["CdcState", "StateStore"]

CdcState = dict[str, Any]
# keys: phase ("snapshot" | "stream"), slot, done (list of tables), table, key (list of
# text or None), rows (int), snapshot_end_lsn (int | None), slot_created_lsn (int)

_SYNC = {"off": "OFF", "normal": "NORMAL", "full": "FULL", "extra": "EXTRA"}


class StateStore:
    """A tiny SQLite key -> JSON table, safe to use from one thread at a time."""

    def __init__(self, path: str, name: str, sync: str = "normal") -> None:
        """Open (create) the file; ``name`` is the position name of this instance."""
        self.path = path
        self.name = name
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self._conn = sqlite3.connect(
                path, timeout=10.0, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={_SYNC.get(sync, 'NORMAL')}")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS in_sql_cdc (name TEXT PRIMARY KEY, "
                "state TEXT NOT NULL, updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
            )
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError("db", f"cannot open position file {path!r}: {exc}") from None
        self._lock = threading.Lock()

    def load(self) -> CdcState | None:
        """The saved state, or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT state FROM in_sql_cdc WHERE name = ?", (self.name,)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def save(self, state: CdcState) -> None:
        """Replace the saved state (durable per ``db.sync``)."""
        text = json.dumps(state, sort_keys=True)
        with self._lock:
            self._conn.execute(
                "INSERT INTO in_sql_cdc (name, state) VALUES (?, ?) ON CONFLICT (name) "
                "DO UPDATE SET state = excluded.state, updated_at = CURRENT_TIMESTAMP",
                (self.name, text),
            )

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._conn.close()
