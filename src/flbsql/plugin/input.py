"""The input plugin object: one per ``[INPUT] Name sql`` section."""

from __future__ import annotations

import logging

from flbsql.config import Config
from flbsql.connect import open_pool
from flbsql.reader import Reader

__all__ = ["InputPlugin"]


class InputPlugin:
    """collect() hands over a batch; commit() runs after Fluent Bit appended it."""

    def __init__(self, cfg: Config, log: logging.Logger) -> None:
        """Validate; nothing connects yet."""
        self.cfg = cfg
        self.log = log
        self.pool = open_pool(cfg, log)
        self.reader = Reader(cfg, self.pool, log)

    def collect(self) -> bytes:
        """The next batch of encoded events, or b"" when nothing is due."""
        return self.reader.next_batch()

    def commit(self) -> None:
        """Fluent Bit took the last batch: move the position past it."""
        self.reader.commit()

    def abort_batch(self) -> None:
        """The last batch could not be handed over; it will be read again."""
        self.reader.rewind()

    def pause(self) -> None:
        """Fluent Bit paused the input (buffer limits)."""
        self.reader.paused = True

    def resume(self) -> None:
        """Fluent Bit resumed the input."""
        self.reader.paused = False

    def close(self) -> None:
        """Stop and release connections."""
        self.pool.close()
