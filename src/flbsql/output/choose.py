"""Which writer an ``[OUTPUT]`` gets: apply mode, a table per record, or one table."""

from __future__ import annotations

import logging

from flbsql.conn.pool import Pool
from flbsql.output.apply import Applier
from flbsql.output.routed import RoutedWriter
from flbsql.output.routing import TableRouter
from flbsql.output.writer import Writer
from flbsql.settings import OutputConfig

__all__ = ["open_writer"]


def open_writer(cfg: OutputConfig, pool: Pool, log: logging.Logger) -> Writer | Applier:
    """The writer for ``cfg`` (validates its options; nothing connects)."""
    if cfg.apply != "off":
        return Applier(cfg, pool, log)
    if TableRouter.is_template(cfg.table or ""):
        return RoutedWriter(cfg, pool, log)
    return Writer(cfg, pool, log)
