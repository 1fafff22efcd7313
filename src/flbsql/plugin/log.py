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
import time
import traceback
from collections.abc import Iterator
from typing import Any

from flbsql.errors import FlbSqlError

__all__ = [
    "FLB_LEVELS",
    "TRACE",
    "FailureLog",
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


_REMIND_EVERY = 60.0  # seconds between reminders while the same trouble goes on


class FailureLog:
    """One log line per event for the failures of one kind of callback (flush, collect).

    An expected failure (any :class:`~flbsql.errors.FlbSqlError`: the database is
    down, a credential store does not answer, a table is missing) is one line that
    says what failed, why and what happens next: the first one of a run of failures
    at WARNING (ERROR when the chunk is dropped), repeats at DEBUG with a reminder
    every minute, and one INFO line when the callback works again. Anything else is
    a bug: its traceback is logged once per distinct place, later ones at DEBUG.
    """

    def __init__(self, log: logging.Logger, what: str) -> None:
        """``what`` names the callback in the lines, e.g. ``flush``."""
        self.log = log
        self.what = what
        self._lock = threading.Lock()
        self._bugs: set[tuple[str, str]] = set()
        self._failures = 0
        self._since = 0.0
        self._reminded = 0.0

    def failed(self, exc: BaseException, next_step: str, *, dropped: bool = False) -> None:
        """Log ``exc``; ``next_step`` says what happens now (e.g. the chunk is retried)."""
        now = time.monotonic()
        with self._lock:
            self._failures += 1
            first = self._failures == 1
            if first:
                self._since = self._reminded = now
            remind = not first and now - self._reminded >= _REMIND_EVERY
            if remind:
                self._reminded = now
            failures, since = self._failures, self._since
        if not isinstance(exc, FlbSqlError):
            self._bug(exc, next_step)
            return
        text = " ".join(str(exc).split()) or type(exc).__name__
        if dropped:
            self.log.error("%s failed: %s; %s", self.what, text, next_step)
        elif first:
            self.log.warning("%s failed: %s; %s", self.what, text, next_step)
        elif remind:
            self.log.warning(
                "%s still failing after %d attempts in %.0fs: %s; %s",
                self.what,
                failures,
                now - since,
                text,
                next_step,
            )
        else:
            self.log.debug("%s failed (attempt %d): %s; %s", self.what, failures, text, next_step)

    def succeeded(self) -> None:
        """The callback worked: close a run of failures with one line."""
        if not self._failures:  # the common case, without the lock
            return
        with self._lock:
            failures, since, self._failures = self._failures, self._since, 0
        if failures:
            self.log.info(
                "%s works again after %d failed attempt(s) in %.1fs",
                self.what,
                failures,
                time.monotonic() - since,
            )

    def _bug(self, exc: BaseException, next_step: str) -> None:
        frames = traceback.extract_tb(exc.__traceback__)
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
        key = (type(exc).__name__, where)
        with self._lock:
            new = key not in self._bugs
            self._bugs.add(key)
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
        if new:
            self.log.error(
                "%s failed with an unexpected %s (a bug: please report it); %s:\n%s",
                self.what,
                type(exc).__name__,
                next_step,
                tb,
            )
        else:
            self.log.error(
                "%s failed again with the unexpected %s at %s (traceback at debug); %s",
                self.what,
                type(exc).__name__,
                where,
                next_step,
            )
            self.log.debug("%s", tb)
