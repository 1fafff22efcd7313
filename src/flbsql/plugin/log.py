"""Per-instance loggers that write through Fluent Bit's own logger.

Fluent Bit's ``log_print`` does not check levels, so every line is gated by the
instance's ``log_level`` (``*_log_check``, done in the shim) and long lines are
split by the shim (4 KiB limit). Each plugin instance gets its own
:class:`logging.Logger`, not registered globally, passed down explicitly to the
objects it owns; so two instances never mix their lines.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

__all__ = [
    "FLB_LEVELS",
    "TRACE",
    "FluentBitHandler",
    "callback_scope",
    "instance_logger",
]

# True on a thread while it runs a Fluent Bit callback. Only such threads have
# Fluent Bit's log context; a line logged by any other thread (a reader or CDC
# worker, the pool) would go straight to stderr (docs/fluent-bit-abi.md §7), so it is
# held back and written by the next callback of the same instance.
_scope = threading.local()
_DEFERRED_MAX = 1000

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

# Python level -> Fluent Bit level (flb_log.h)
FLB_LEVELS = (
    (logging.ERROR, 1),
    (logging.WARNING, 2),
    (logging.INFO, 3),
    (logging.DEBUG, 4),
    (TRACE, 5),
)


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
        self._deferred: collections.deque[tuple[int, str]] = collections.deque()
        self._dropped = 0
        self._defer_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        """Format and forward (or hold back off a callback thread); never raises."""
        try:
            msg = f"[{self._prefix}] {self.format(record)}"
            level = _flb_level(record.levelno)
            if getattr(_scope, "active", False):
                self._send(level, msg)
                return
            with self._defer_lock:
                if len(self._deferred) >= _DEFERRED_MAX:
                    self._dropped += 1
                else:
                    self._deferred.append((level, msg))
        except Exception:
            self.handleError(record)

    def _send(self, level: int, msg: str) -> None:
        self._lib.shim_log(self._kind, self._api, self._ins, level, msg.encode("utf-8", "replace"))

    def drain(self) -> None:
        """Write the lines other threads logged since the last callback."""
        with self._defer_lock:
            lines = list(self._deferred)
            self._deferred.clear()
            dropped, self._dropped = self._dropped, 0
        for level, msg in lines:
            self._send(level, msg)
        if dropped:
            self._send(
                2,
                f"[{self._prefix}] {dropped} log lines of background threads "
                "were dropped (more than 1000 between two callbacks)",
            )


@contextlib.contextmanager
def callback_scope(logger: logging.Logger | None) -> Iterator[None]:
    """Mark this thread as running a Fluent Bit callback; flush held-back lines."""
    outer = getattr(_scope, "active", False)
    _scope.active = True
    handlers = [h for h in (logger.handlers if logger else ()) if isinstance(h, FluentBitHandler)]
    try:
        for h in handlers:
            h.drain()
        yield
    finally:
        for h in handlers:
            h.drain()
        _scope.active = outer


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
