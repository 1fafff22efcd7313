"""The output plugin object: one per ``[OUTPUT] Name sql`` section."""

from __future__ import annotations

import logging

from flbsql.conn.connect import open_pool
from flbsql.metrics import Metrics
from flbsql.outcome import Outcome, to_outcome
from flbsql.output.writer import Writer
from flbsql.settings import Config

__all__ = ["OutputPlugin"]


class OutputPlugin:
    """Init parses and validates; nothing connects until the first flush."""

    def __init__(self, cfg: Config, log: logging.Logger) -> None:
        """Build the pool and the writer from a validated config."""
        self.cfg = cfg
        self.log = log
        self.pool = open_pool(cfg, log)
        self.writer = Writer(cfg, self.pool, log)
        self.metrics = Metrics.from_config(cfg, "out_sql", cfg.table, log)
        self.metrics.attach_pool(self.pool.stats)
        self.writer.metrics = self.metrics
        log.info("writing to %s table %s", self.pool.params, cfg.table)

    def flush(self, data: bytes | memoryview, tag: str) -> Outcome:
        """Write one chunk; see :meth:`flbsql.output.writer.Writer.write`."""
        try:
            return self.writer.write(data, tag)
        except BaseException as exc:  # counted here, mapped to a code by the bridge
            self.metrics.inc("errors")
            if to_outcome(exc) is Outcome.RETRY:
                self.metrics.inc("retries")
            raise
        finally:
            self.metrics.tick()

    def close(self) -> None:
        """Release connections (Python is never finalised inside Fluent Bit)."""
        try:
            self.log.info("%s", self.metrics.log_line())
            self.metrics.close()
        finally:
            self.pool.close()
