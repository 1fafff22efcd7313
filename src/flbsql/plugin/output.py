"""The output plugin object: one per ``[OUTPUT] Name sql`` section."""

from __future__ import annotations

import logging

from flbsql.conn.connect import open_pool
from flbsql.failures import FailureLog
from flbsql.metrics import Metrics
from flbsql.options import ENGINE_THREAD
from flbsql.outcome import Outcome, to_outcome
from flbsql.output.choose import open_writer
from flbsql.settings import OutputConfig

__all__ = ["OutputPlugin"]


class OutputPlugin:
    """Init parses and validates; nothing connects until the first flush."""

    def __init__(self, cfg: OutputConfig, log: logging.Logger) -> None:
        """Build the pool and the writer from a validated config."""
        self.cfg = cfg
        self.log = log
        self.pool = open_pool(cfg, log)
        self.writer = open_writer(cfg, self.pool, log)
        self.metrics = Metrics.from_config(cfg, "out_sql", cfg.table or "", log)
        self.metrics.attach_pool(self.pool.stats)
        self.writer.metrics = self.metrics
        self.failures = FailureLog(log, "flush")
        self.thread_noted = False
        if cfg.apply != "off":
            log.info(
                "applying %s changes to %s table %s",
                cfg.apply,
                self.pool.params,
                cfg.table or "$table",
            )
        else:
            log.info("writing to %s table %s", self.pool.params, cfg.table)

    def flush(self, data: bytes | memoryview, tag: str) -> Outcome:
        """Write one chunk (:meth:`flbsql.output.writer.Writer.write`); never raises.

        A failure is counted, logged as one line (:class:`FailureLog`) and mapped to
        a return code by :func:`flbsql.outcome.to_outcome`.
        """
        try:
            outcome = self.writer.write(data, tag)
        except Exception as exc:
            outcome = to_outcome(exc)
            self.metrics.inc("errors")
            if outcome is Outcome.RETRY:
                self.metrics.inc("retries")
                self.failures.failed(exc, f"Fluent Bit retries the chunk (tag {tag})")
            else:
                self.failures.failed(
                    exc, f"the chunk (tag {tag}) is dropped: retrying cannot help", dropped=True
                )
            return outcome
        finally:
            self.metrics.tick()
        self.failures.succeeded()
        return outcome

    def note_thread(self, on_engine: bool) -> None:
        """Once, at the first flush: say so when flushes hold Fluent Bit's engine thread."""
        self.thread_noted = True
        if on_engine:
            self.log.info(
                "%s (no `workers`: Fluent Bit gives an external plugin none by default); "
                "set `workers 1` to run them beside it",
                ENGINE_THREAD,
            )

    def close(self) -> None:
        """Release connections (Python is never finalised inside Fluent Bit)."""
        try:
            self.log.info("%s", self.metrics.log_line())
            self.metrics.close()
        finally:
            self.pool.close()
