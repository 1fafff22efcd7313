"""One log line per event for a callback or a loop that keeps failing and recovering.

Used by everything that retries: the output's flush, the input's collect, the poll
reader's and the CDC worker's loops. The pool below them logs its own attempts at
DEBUG only, so an outage reads as two lines: what failed and what happens next, then
that it works again.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback

from flbsql.errors import FlbSqlError

__all__ = ["FailureLog"]

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
