"""What the real-Fluent-Bit tests share: source tables, sink counts, waiting for rows."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from tests.fix_db import unique_table
from tests.fix_fluentbit import FLUENT_BIT

# at collection, so no database, cluster or Vault is started only to skip (CI has no binary)
needs_fluent_bit = pytest.mark.skipif(
    not FLUENT_BIT, reason="no Fluent Bit binary: set FLBSQL_FLUENT_BIT=/path/to/fluent-bit"
)


def source_table(db: Any, rows: int, prefix: str = "src") -> str:
    """A PostgreSQL table ``(id bigint primary key, msg text)`` with ids 1..rows."""
    table = unique_table(prefix)
    db.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, msg text NOT NULL)")
    if rows:
        db.execute(f"INSERT INTO {table} SELECT g, 'row ' || g FROM generate_series(1, {rows}) g")
    return table


def key_counts(url: str, table: str, key: str = "(data::jsonb->>'id')::bigint") -> tuple[int, int]:
    """(rows, distinct keys) in a sink table; (-1, -1) while it is unreachable or missing."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
            row = conn.execute(f"SELECT count(*), count(DISTINCT {key}) FROM {table}").fetchone()
            assert row is not None
            return int(row[0]), int(row[1])
    except psycopg.Error:
        return -1, -1


def wait_rows(url: str, table: str, want: int, timeout: float, key: str | None = None) -> float:
    """Seconds until the sink holds ``want`` rows; fails with the count after ``timeout``."""
    start = time.monotonic()
    got = (-1, -1)
    while time.monotonic() - start < timeout:
        got = key_counts(url, table, key) if key else key_counts(url, table)
        if got[0] >= want:
            return time.monotonic() - start
        time.sleep(0.5)
    raise AssertionError(f"{table}: {got} rows after {timeout}s, wanted {want}")


class Feeder(threading.Thread):
    """Inserts ``per_tick`` rows every ``tick`` seconds into a source table until halted."""

    def __init__(self, url: str, table: str, per_tick: int = 50, tick: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.url, self.table, self.per_tick, self.tick = url, table, per_tick, tick
        self.sent = 0
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                while not self.halt.is_set():
                    first = self.sent + 1
                    conn.execute(
                        f"INSERT INTO {self.table} SELECT g, 'row ' || g "
                        "FROM generate_series(%s::bigint, %s::bigint) g",
                        (first, first + self.per_tick - 1),
                    )
                    self.sent += self.per_tick
                    time.sleep(self.tick)
        except BaseException as exc:  # reported by the test
            self.error = exc

    def stop(self) -> int:
        """Stop feeding; the number of rows inserted."""
        self.halt.set()
        self.join(30)
        assert self.error is None, self.error
        return self.sent
