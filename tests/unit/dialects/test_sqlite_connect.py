"""What the SQLite dialect does when it opens a file."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from flbsql.conn.url import parse_url
from flbsql.dialects import get_dialect


def test_opening_a_new_file_waits_for_another_connections_lock_then_switches_to_wal(
    tmp_path: Path,
) -> None:
    """The journal switch needs the file's exclusive lock; SQLite refuses it at once,
    without the busy handler, while another connection writes (as two writers opening
    a new file together do): connect waits for the lock instead of failing."""
    path = tmp_path / "new.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE t (a)")  # holds the write lock of a rollback-journal file
    release = threading.Timer(0.3, other.execute, ("COMMIT",))
    release.start()
    try:
        start = time.monotonic()
        conn = get_dialect("sqlite").connect(parse_url(str(path)).with_(statement_timeout=10.0))
        waited = time.monotonic() - start
        cur = conn.cursor()
        cur.execute("PRAGMA journal_mode")
        mode = cur.fetchone()[0]
        conn.close()
    finally:
        release.join()
        other.close()
    assert mode == "wal"
    assert 0.25 <= waited < 5.0


def test_a_lock_held_past_statement_timeout_fails_the_connect(tmp_path: Path) -> None:
    """The wait is bounded by statement_timeout, as every other lock wait is."""
    path = tmp_path / "held.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE t (a)")
    try:
        start = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            get_dialect("sqlite").connect(parse_url(str(path)).with_(statement_timeout=0.2))
        assert time.monotonic() - start >= 0.2
    finally:
        other.close()
