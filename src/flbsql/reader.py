"""Input: keyset reads from a table, encoded as Fluent Bit events."""

from __future__ import annotations

import logging
import time
from typing import Any

import msgpack

from flbsql.config import Config
from flbsql.errors import ConfigError
from flbsql.pool import Pool
from flbsql.records import encode_event

__all__ = ["Reader"]


class Reader:
    """Minimal single-key reader; position kept in memory."""

    def __init__(self, cfg: Config, pool: Pool, log: logging.Logger) -> None:
        """Validate the table and key options."""
        if not cfg.table:
            raise ConfigError("table", "required")
        self.cfg = cfg
        self.pool = pool
        self.log = log
        self.dialect = pool.dialect
        self.position: Any = None
        self.pending: Any = None
        self.paused = False

    def next_batch(self) -> bytes:
        """Up to rows_per_collect rows after the position."""
        if self.paused:
            return b""
        d = self.dialect
        with self.pool.connection() as conn:
            key = list(self.cfg.key) or d.primary_key(conn, None, self.cfg.table)
            if not key:
                raise ConfigError("key", f"table {self.cfg.table} has no primary key; set key")
            k = d.quote(key[0])
            sql = f"SELECT * FROM {d.quote(self.cfg.table)}"
            params: list[Any] = []
            if self.position is not None:
                sql += f" WHERE {k} > {d.placeholder(0)}"
                params.append(self.position)
            sql = d.limit(sql + f" ORDER BY {k}", self.cfg.rows_per_collect)
            cur = conn.cursor()
            try:
                cur.execute(sql, params)
                names = [c[0] for c in cur.description]
                rows = cur.fetchall()
                conn.rollback()
            finally:
                cur.close()
        if not rows:
            return b""
        idx = names.index(key[0])
        now = time.time()
        sec, nsec = int(now), int((now % 1) * 1e9)
        out = b"".join(
            encode_event(sec, nsec, msgpack.packb(dict(zip(names, r, strict=True))))
            for r in rows
        )
        self.pending = rows[-1][idx]
        return out

    def commit(self) -> None:
        """Fluent Bit took the batch."""
        if self.pending is not None:
            self.position = self.pending
            self.pending = None

    def rewind(self) -> None:
        """Forget the batch in flight."""
        self.pending = None
