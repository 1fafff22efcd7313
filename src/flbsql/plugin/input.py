"""The input plugin object: one per ``[INPUT] Name sql`` section, called by the bridge.

It talks to a :class:`~flbsql.input.source.BatchSource` chosen by ``mode``
(:func:`open_source`), counts what goes through and owns the
metrics; the reading itself lives in :mod:`flbsql.input` (and :mod:`flbsql.cdc`).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from flbsql.conn.connect import open_pool
from flbsql.conn.pool import Pool
from flbsql.failures import FailureLog
from flbsql.input.intake import ENGINE_WAIT, Intake, no_counters
from flbsql.input.source import BatchSource
from flbsql.metrics import Metrics

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable

    from flbsql.input.intake import Counters
    from flbsql.settings import InputConfig

__all__ = ["InputPlugin"]


def open_source(cfg: InputConfig, log: logging.Logger) -> tuple[BatchSource, Pool | None]:
    """The source for ``mode``, and the pool the plugin closes after it (if any)."""
    if cfg.mode == "cdc":
        from flbsql.cdc.source import CdcSource  # imports psycopg: only in cdc mode

        return CdcSource(cfg, log), None
    from flbsql.input.poll import PollSource

    pool = open_pool(cfg, log)
    return PollSource(cfg, pool, log), pool


def instance_name(cfg: InputConfig) -> str:
    """The ``instance`` label of the metrics: what the input reads, and its shard."""
    if cfg.mode == "cdc":
        return cfg.position_name or cfg.slot
    name = cfg.position_name or cfg.table or ",".join(cfg.tables) or "query"
    return f"{name} shard {cfg.shard.strip()}" if cfg.shard else name


class InputPlugin:
    """collect() hands over a batch; commit() runs after Fluent Bit appended it."""

    def __init__(
        self,
        cfg: InputConfig,
        log: logging.Logger,
        counters: Callable[[], Counters | None] = no_counters,
    ) -> None:
        """Validate and start the source's background reading.

        ``counters``: the engine's counters of this instance (:mod:`flbsql.input.intake`).
        """
        self.cfg = cfg
        self.log = log
        self.intake = Intake(counters, log)
        self._lock = threading.Lock()
        if not cfg.is_set("db"):
            log.warning(
                "no `db` option: the position is kept in %s, under Fluent Bit's working "
                "directory; set `db` to a persistent path (like tail's db)",
                os.path.abspath("in_sql.db"),
            )
        self.metrics = Metrics.from_config(cfg, "in_sql", instance_name(cfg), log)
        try:
            self.source, self.pool = open_source(cfg, log)
        except BaseException:
            self.metrics.close()
            raise
        self.metrics.attach_pool(self.source.connection_stats)
        self.source.metrics = self.metrics  # type: ignore[attr-defined]
        self.failures = FailureLog(log, "collect")
        self._batch_rows = 0

    def collect(self) -> list[bytes]:
        """The next batch (pieces of encoded events), or [] when nothing is due; never raises.

        A failure is counted and logged as one line (:class:`FailureLog`); Fluent Bit
        calls again in a second.
        """
        with self._lock:
            self.metrics.tick()
            try:
                self.source.landed(self.intake.landed())
                # the engine has not taken the last batch yet
                if self.intake.waiting() and not self.intake.wait(ENGINE_WAIT):
                    return []
                pieces = self.source.next_batch()
            except Exception as exc:
                self.metrics.inc("errors")
                self.failures.failed(exc, "nothing handed over; next attempt in 1s")
                return []
            self.failures.succeeded()
            self._batch_rows = self.source.batch_rows if pieces else 0
            self.metrics.inc("rows_in", self._batch_rows)
            return pieces

    def commit(self) -> None:
        """Fluent Bit copied the last batch into its ring buffer (or dropped it there)."""
        with self._lock:
            rows, self._batch_rows = self._batch_rows, 0
            if not self.intake.appended(rows):
                self.log.warning(
                    "Fluent Bit dropped a batch of %d rows (its ring buffer stayed full: "
                    "the engine thread is busy); reading them again",
                    rows,
                )
                self.source.rewind()
                return
            self.source.commit()
            self.metrics.inc("rows_out", rows)

    def abort_batch(self) -> None:
        """The last batch could not be handed over; it will be read again."""
        with self._lock:
            self.source.rewind()

    def pause(self) -> None:
        """Fluent Bit paused the input (buffer limits)."""
        self.source.pause()

    def resume(self) -> None:
        """Fluent Bit resumed the input."""
        self.source.resume()

    def close(self) -> None:
        """Stop, store the position, release connections."""
        try:
            self.log.info("%s", self.metrics.log_line())
            self.metrics.close()
            try:
                self.source.landed(self.intake.landed(final=True))
            finally:
                self.source.close()
        finally:
            if self.pool is not None:
                self.pool.close()
