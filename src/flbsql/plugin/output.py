"""The output plugin object: one per ``[OUTPUT] Name sql`` section."""

from __future__ import annotations

import logging

from flbsql.config import Config
from flbsql.connect import open_pool
from flbsql.outcome import Outcome
from flbsql.writer import Writer

__all__ = ["OutputPlugin"]


class OutputPlugin:
    """Init parses and validates; nothing connects until the first flush."""

    def __init__(self, cfg: Config, log: logging.Logger) -> None:
        """Build the pool and the writer from a validated config."""
        self.cfg = cfg
        self.log = log
        self.pool = open_pool(cfg, log)
        self.writer = Writer(cfg, self.pool, log)
        log.info("writing to %s table %s", self.pool.params, cfg.table)

    def flush(self, data: bytes | memoryview, tag: str) -> Outcome:
        """Write one chunk; see :meth:`flbsql.writer.Writer.write`."""
        return self.writer.write(data, tag)

    def close(self) -> None:
        """Release connections (Python is never finalised inside Fluent Bit)."""
        self.pool.close()
