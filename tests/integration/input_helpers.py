"""Shared helpers of the input tests: build a PollSource, drain it like Fluent Bit does."""

from __future__ import annotations

import logging
import time
from typing import Any

from flbsql.conn.connect import open_pool
from flbsql.events.chunk import Event, decode_chunk
from flbsql.input.poll import PollSource
from flbsql.settings import parse

LOG = logging.getLogger("test.in_sql")

TEXT = {"sqlite": "TEXT", "postgresql": "TEXT", "mysql": "VARCHAR(64)"}
INTKEY = {
    "sqlite": "INTEGER PRIMARY KEY",
    "postgresql": "BIGSERIAL PRIMARY KEY",
    "mysql": "BIGINT AUTO_INCREMENT PRIMARY KEY",
}
TS = {"sqlite": "TEXT", "postgresql": "TIMESTAMP", "mysql": "DATETIME(6)"}


def ph(db: Any) -> str:
    """The test driver's placeholder."""
    return "?" if db.dialect == "sqlite" else "%s"


def q(db: Any, name: str) -> str:
    """Quote an identifier for the test's own SQL."""
    return f"`{name}`" if db.dialect == "mysql" else f'"{name}"'


def source(db: Any, tmp_path: Any, **opts: Any) -> PollSource:
    """A PollSource on ``db`` with a position file in ``tmp_path``."""
    props = {
        "url": db.url,
        "db": str(tmp_path / "pos.db"),
        "settle": "0.2s",
        "poll_interval": "0.05s",
        "progress_interval": "0",
    }
    props.update({k.replace("__", "."): str(v) for k, v in opts.items()})
    cfg = parse("input", props.get)
    pool = open_pool(cfg, LOG)
    try:
        return _Closing(cfg, pool, LOG)
    except BaseException:
        pool.close()
        raise


class _Closing(PollSource):
    """A PollSource that also closes its pool (the plugin does that in production)."""

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.pool.close()


def drain(src: PollSource, want: int, timeout: float = 30.0, commit: bool = True) -> list[Event]:
    """Call next_batch()/commit() like the input callback until ``want`` events arrived."""
    events: list[Event] = []
    deadline = time.monotonic() + timeout
    while len(events) < want and time.monotonic() < deadline:
        data = b"".join(src.next_batch())
        if not data:
            time.sleep(0.02)
            continue
        events.extend(e for e in decode_chunk(data) if isinstance(e, Event))
        if commit:
            src.commit()
            src.landed(1)  # the engine took it into a chunk
    return events


def settle_quietly(src: PollSource, seconds: float) -> list[Event]:
    """Everything handed over within ``seconds`` (expecting nothing, usually)."""
    out: list[Event] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        data = b"".join(src.next_batch())
        if data:
            out.extend(e for e in decode_chunk(data) if isinstance(e, Event))
            src.commit()
            src.landed(1)  # the engine took it into a chunk
        time.sleep(0.02)
    return out
