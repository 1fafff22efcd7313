"""Poll mode: stream tables (or a query) in key order, resume exactly where each stopped.

:class:`PollSource` is the :class:`~flbsql.input.source.BatchSource` of ``mode poll``.
It puts together the parts, one job each:

- :mod:`~flbsql.input.spec`: the options and names checked, the sources resolved (the
  tables of ``tables``: :mod:`~flbsql.input.tables`; ``shard``: :mod:`~flbsql.input.shard`);
- :mod:`~flbsql.input.fetch`: the background thread that reads keyset pages
  (:mod:`~flbsql.input.page`, :mod:`~flbsql.input.keyset`, :mod:`~flbsql.input.encoding`)
  up to the late-commit horizon (:mod:`~flbsql.input.horizon`) and reports progress
  (:mod:`~flbsql.input.progress`);
- :mod:`~flbsql.input.handoff`: the bounded queue, bounded by bytes and rows, from which
  the input callback only takes, so it returns within milliseconds;
- :mod:`~flbsql.input.tracker`: the acknowledged, pending and read positions of each
  source (the position protocol), stored by :mod:`~flbsql.input.store`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flbsql.errors import ConfigError, FlbSqlError
from flbsql.input.fetch import Fetcher
from flbsql.input.handoff import FILL_WAIT, ChunkQueue, CollectLimit
from flbsql.input.spec import validate
from flbsql.input.store import PositionStore
from flbsql.input.tracker import PositionTracker
from flbsql.timestamps import parse_zone

if TYPE_CHECKING:
    import logging

    from flbsql.conn.pool import Pool
    from flbsql.input.spec import SourceSpec
    from flbsql.metrics import Metrics
    from flbsql.settings import InputConfig

__all__ = ["PollSource"]


class PollSource:
    """Keyset polling with a background fetch thread."""

    def __init__(
        self, cfg: InputConfig, pool: Pool, log: logging.Logger, store: PositionStore | None = None
    ) -> None:
        """Validate the options; try to resolve the source (a database outage is fine)."""
        time_column = validate(cfg, pool.dialect)
        self.cfg = cfg
        self.pool = pool
        self.log = log
        self.batch_rows = 0
        zone = parse_zone(cfg.time_zone)
        self.store = (
            store if store is not None else PositionStore(cfg.db or "in_sql.db", cfg.db_sync)
        )
        self._own_store = store is None
        queue = ChunkQueue(cfg.bytes_per_collect)
        self._limit = CollectLimit(
            queue, cfg.bytes_per_collect, cfg.rows_per_collect, fill=FILL_WAIT
        )
        self._tracker = PositionTracker(queue)
        self._fetcher = Fetcher(cfg, pool, log, self.store, self._tracker, zone, time_column)
        try:
            self._fetcher.setup()
        except ConfigError:
            raise
        except FlbSqlError as exc:
            log.warning("database not reachable at init (%s); retrying in the background", exc)
        self._fetcher.start()

    @property
    def specs(self) -> list[SourceSpec]:
        """What is read, one per table (empty until the database answered once)."""
        return [lane.spec for lane in self._fetcher.lanes or ()]

    @property
    def metrics(self) -> Metrics | None:
        """Where progress reports ``lag_rows`` (set by the plugin)."""
        return self._fetcher.progress.metrics

    @metrics.setter
    def metrics(self, metrics: Metrics | None) -> None:
        self._fetcher.progress.metrics = metrics

    # -- BatchSource ------------------------------------------------------------------------

    def next_batch(self) -> list[bytes]:
        """Queued pages within the collect limit; [] when nothing is due."""
        self.batch_rows = 0
        chunks = self._limit.take(self._tracker.hand_over)
        self.batch_rows = sum(c.rows for c in chunks)
        return [c.data for c in chunks]

    def commit(self) -> None:
        """Fluent Bit copied the last batch into its ring buffer: acknowledge its end."""
        self._tracker.commit()
        self._limit.taken()

    def landed(self, batches: int) -> None:
        """Store the positions of the batches now in Fluent Bit's chunks."""
        self._tracker.landed(batches)
        self._save_acknowledged()

    def rewind(self) -> None:
        """Forget the batch in flight and the queue; re-read from the acknowledged end."""
        self._tracker.rewind()
        self._limit.shrink()

    def pause(self) -> None:
        """Stop issuing queries (Fluent Bit paused the input: its buffers are full)."""
        self._fetcher.pause()
        self._limit.shrink()

    def resume(self) -> None:
        """Fetch again."""
        self._fetcher.resume()

    def connection_stats(self) -> dict[str, int]:
        """The pool's counters."""
        return self.pool.stats()

    def close(self) -> None:
        """Stop the thread and store the positions of what landed."""
        self._fetcher.stop(timeout=self.cfg.statement_timeout + 5)
        self._save_acknowledged()
        if self._own_store:
            self.store.close()

    def _save_acknowledged(self) -> None:
        unsaved = self._tracker.take_unsaved()
        if unsaved:
            sources = self._fetcher.sources
            self.store.save_many([(name, sources[name], pos) for name, pos in unsaved.items()])
