"""Which writer an ``[OUTPUT]`` gets: apply mode, a table per record, or one table."""

from __future__ import annotations

import logging

from flbsql.conn.pool import Pool
from flbsql.errors import ConfigError
from flbsql.output.apply import Applier
from flbsql.output.routed import RoutedWriter
from flbsql.output.routing import TableRouter
from flbsql.output.writer import Writer
from flbsql.settings import OutputConfig

__all__ = ["APPLY_ONLY", "open_writer"]

#: Options that only apply mode reads: refused without it, not ignored.
APPLY_ONLY = ("apply_position_table", "apply_parked_table", "apply_gap_wait", "apply_source")


def open_writer(cfg: OutputConfig, pool: Pool, log: logging.Logger) -> Writer | Applier:
    """The writer for ``cfg`` (validates its options; nothing connects)."""
    if cfg.apply != "off":
        return Applier(cfg, pool, log)
    for name in APPLY_ONLY:
        if cfg.is_set(name):
            raise ConfigError(name, "only used with apply cdc, debezium or auto (apply is off)")
    if TableRouter.is_template(cfg.table or ""):
        return RoutedWriter(cfg, pool, log)
    return Writer(cfg, pool, log)
