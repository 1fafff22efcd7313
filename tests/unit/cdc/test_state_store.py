"""The CDC state lives in the input's position file; files written before still load."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from flbsql.input.store import PositionStore

STATE = {
    "phase": "stream",
    "slot": "s1",
    "done": ["public.t"],
    "table": None,
    "key": None,
    "rows": 3,
    "snapshot_end_lsn": 1234,
    "slot_created_lsn": 1000,
}


def _old_cdc_file(path: Any, with_poll: bool) -> None:
    """What cdc/state.py's StateStore (and, with_poll, the old PositionStore) wrote."""
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    if with_poll:
        c.execute(
            "CREATE TABLE IF NOT EXISTS in_sql_positions (name TEXT PRIMARY KEY, "
            "source TEXT NOT NULL, position TEXT NOT NULL, updated_at TEXT NOT NULL)"
        )
        c.execute("PRAGMA user_version=1")
    c.execute(
        "CREATE TABLE IF NOT EXISTS in_sql_cdc (name TEXT PRIMARY KEY, "
        "state TEXT NOT NULL, updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
    )
    c.execute(
        "INSERT INTO in_sql_cdc (name, state) VALUES (?, ?)",
        ("cdc:s1", json.dumps(STATE, sort_keys=True)),
    )
    c.close()


def test_state_round_trip_and_migration_count(tmp_path):
    path = str(tmp_path / "pos.db")
    store = PositionStore(path)
    assert store.load_state("cdc:s1") is None
    store.save_state("cdc:s1", STATE)
    store.save_state("cdc:s1", {**STATE, "rows": 4})
    store.close()
    store = PositionStore(path)
    assert store.load_state("cdc:s1") == {**STATE, "rows": 4}
    store.close()
    c = sqlite3.connect(path)
    assert c.execute("PRAGMA user_version").fetchone()[0] == 2
    tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"in_sql_positions", "in_sql_cdc"}


def test_a_cdc_file_written_by_the_old_state_store_loads(tmp_path):
    for with_poll in (False, True):
        path = str(tmp_path / f"old-{with_poll}.db")
        _old_cdc_file(path, with_poll)
        store = PositionStore(path)
        assert store.load_state("cdc:s1") == STATE
        assert store.load_state("cdc:other") is None
        store.save_state("cdc:s1", {**STATE, "rows": 9})
        assert (store.load_state("cdc:s1") or {}).get("rows") == 9
        store.close()
