"""Per-instance loggers that write through Fluent Bit's own logger.

Fluent Bit's ``log_print`` does not check levels, so every line is gated by the
instance's ``log_level`` (``*_log_check``, done in the shim) and long lines are
split by the shim (4 KiB limit). Each plugin instance gets its own
:class:`logging.Logger`, not registered globally, passed down explicitly to the
objects it owns; so two instances never mix their lines.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["FLB_LEVELS", "TRACE", "FluentBitHandler", "instance_logger"]

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

# Python level -> Fluent Bit level (flb_log.h)
FLB_LEVELS = ((logging.ERROR, 1), (logging.WARNING, 2), (logging.INFO, 3),
              (logging.DEBUG, 4), (TRACE, 5))


def _flb_level(levelno: int) -> int:
    for py, flb in FLB_LEVELS:
        if levelno >= py:
            return flb
    return 5


class FluentBitHandler(logging.Handler):
    """Sends records to ``shim_log`` of the instance's library."""

    def __init__(self, lib: Any, kind_no: int, api: Any, ins: Any, prefix: str) -> None:
        """Bind to one Fluent Bit instance (api and instance pointers from Init)."""
        super().__init__()
        self._lib = lib
        self._kind = kind_no
        self._api = api
        self._ins = ins
        self._prefix = prefix

    def emit(self, record: logging.LogRecord) -> None:
        """Format and forward; never raises into the caller."""
        try:
            msg = f"[{self._prefix}] {self.format(record)}"
            self._lib.shim_log(self._kind, self._api, self._ins, _flb_level(record.levelno),
                               msg.encode("utf-8", "replace"))
        except Exception:
            self.handleError(record)


def instance_logger(lib: Any, kind_no: int, api: Any, ins: Any, prefix: str) -> logging.Logger:
    """A private logger whose level is the instance's ``log_level``."""
    logger = logging.Logger(f"flbsql.{prefix}")
    level = logging.CRITICAL
    for py, flb in FLB_LEVELS:  # the most verbose level the instance admits
        if lib.shim_log_check(kind_no, api, ins, flb):
            level = py
    logger.setLevel(level)
    logger.addHandler(FluentBitHandler(lib, kind_no, api, ins, prefix))
    logger.propagate = False
    return logger
