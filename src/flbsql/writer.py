"""Output: decode a chunk, map records to rows, write them in one transaction."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
from typing import Any

from flbsql.config import Config
from flbsql.outcome import Outcome
from flbsql.pool import Pool
from flbsql.records import BadEntry, decode_chunk

__all__ = ["Writer"]

_UTC = dt.timezone.utc


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    return str(value)


class Writer:
    """Minimal default shape: (tag, time, data JSON)."""

    def __init__(self, cfg: Config, pool: Pool, log: logging.Logger) -> None:
        """Nothing touches the database here."""
        if not cfg.table:
            from flbsql.errors import ConfigError  # noqa: PLC0415

            raise ConfigError("table", "required")
        self.cfg = cfg
        self.pool = pool
        self.log = log
        self.dialect = pool.dialect
        self.table_sql = self.dialect.quote(cfg.table)
        self._ready = False

    def write(self, data: bytes | memoryview, tag: str) -> Outcome:
        """One chunk, one transaction."""
        rows = []
        for ev in decode_chunk(data):
            if isinstance(ev, BadEntry):
                self.log.error("record %d of tag %s is not an event (%s)", ev.index, tag,
                               ev.reason)
                continue
            t = dt.datetime.fromtimestamp(ev.time.sec, _UTC).replace(
                microsecond=ev.time.nsec // 1000)
            rows.append((tag, t.isoformat(), json.dumps(ev.body, default=_json_default)))
        if not rows:
            return Outcome.OK
        with self.pool.connection() as conn:
            cur = conn.cursor()
            try:
                if not self._ready:
                    cur.execute(f"CREATE TABLE IF NOT EXISTS {self.table_sql} "
                                "(tag TEXT, time TEXT, data TEXT)")
                    self._ready = True
                self.dialect.bulk_insert(cur, self.table_sql, ("tag", "time", "data"), rows)
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                cur.close()
        return Outcome.OK
