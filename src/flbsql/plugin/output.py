"""The output plugin object: one per ``[OUTPUT] Name sql`` section."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flbsql.conn.connect import open_pool
from flbsql.failures import FailureLog
from flbsql.metrics import Metrics
from flbsql.options import ENGINE_THREAD, default_workers, default_workers_note
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

    def choose_workers(self, workers: Callable[[int], int]) -> None:
        """At init: run flushes beside the engine thread unless the operator set ``workers``.

        ``workers(want)`` is the instance's worker count after setting it to ``want`` when
        it is 0 (``want`` 0: only read it), or -1 where the host does not say (then the
        first flush tells the operator, :meth:`note_thread`). See
        docs/fluent-bit-abi.md section 8.2.
        """
        if workers(0) != 0:  # the operator's count, or a host that does not say
            return
        want = default_workers(self.cfg.apply, self.pool.dialect.caps.writers)
        if workers(want) == want:
            self.log.info("%s", default_workers_note(want))

    def note_thread(self, on_engine: bool) -> None:
        """Once, at the first flush: say so when flushes hold Fluent Bit's engine thread."""
        self.thread_noted = True
        if on_engine:
            self.log.info(
                "%s (no `workers`, and this Fluent Bit does not let out_sql set one: "
                "docs/fluent-bit-abi.md section 8.2); set `workers 1` to run them beside it",
                ENGINE_THREAD,
            )

    def close(self) -> None:
        """Release connections (Python is never finalised inside Fluent Bit)."""
        try:
            self.log.info("%s", self.metrics.log_line())
            self.metrics.close()
        finally:
            self.pool.close()
