"""A watchdog that bounds every database operation, whatever the driver.

Some drivers have no client-side read timeout: libpq (psycopg) waits forever on
a server that stopped answering while its TCP connection stays up (a hung
backend, a stuck proxy whose kernel still acknowledges). Server-side
``statement_timeout`` cannot help then, and a flush that never returns stalls
Fluent Bit's engine. So the pool puts every checked-out connection under watch
here, and a connection that goes quiet for too long is broken from outside:

1. the dialect's ``interrupt`` runs on a short-lived side thread (PostgreSQL:
   ``cancel_safe`` with a timeout), since on a hung server the cancel itself may
   hang and must not hold up the watchdog;
2. ``close_after`` later, if the operation is still running, the socket is shut
   down (``shutdown(SHUT_RDWR)`` on a duplicate of the driver's descriptor, taken
   when the watch started, never ``close`` of the driver's own), so the blocked
   read returns with an error the dialect classifies as a disconnect.

Deadline rule. A watch starts with ``deadline = start + limit`` (the pool passes
``statement_timeout`` plus :func:`grace_for`). When it passes, the socket is
asked whether bytes moved since the last look (Linux ``TCP_INFO``: bytes the
peer acknowledged, bytes received, and the times of the last data each way). If
they did, the deadline becomes ``last transfer + limit`` and the watch goes on;
so a long COPY flush that keeps streaming, or a large result that keeps
arriving, is never cut, while one that stops moving for ``limit`` is. Idle time
of the holder counts too: a thread that keeps a connection checked out without
any traffic for ``limit`` is treated as hung. Where the socket cannot tell
(no socket, as SQLite; a Unix-domain socket; another OS) the deadline is simply
``start + limit`` for the whole checkout. The look costs one ``getsockopt`` and
happens only when a deadline passes; a watch costs one ``dup`` at checkout.

One daemon thread per process serves every pool. It starts with the first
watch, sleeps until the earliest deadline (or until woken by an earlier one),
and exits after ``idle_exit`` seconds without any watch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["WATCHDOG", "Watch", "Watchdog", "grace_for"]

# bound at import: tests that fake time.monotonic for the pool must not move our deadlines
_monotonic = time.monotonic

# struct tcp_info (linux/tcp.h): u32 tcpi_last_data_sent at 44, tcpi_last_data_recv at 52,
# u64 tcpi_bytes_acked at 120 and tcpi_bytes_received at 128 (Linux 4.1+)
_TCP_INFO = getattr(socket, "TCP_INFO", None)
_TCP_INFO_LEN = 136
_LAST_DATA = struct.Struct("=3I")  # last_data_sent, last_ack_sent, last_data_recv (ms ago)
_BYTES = struct.Struct("=2Q")  # bytes_acked, bytes_received


def grace_for(timeout: float) -> float:
    """Slack over ``statement_timeout`` before the watchdog steps in.

    A quarter of the timeout, at least 0.5 s and at most 5 s (60 s -> 65 s): the
    server's own ``statement_timeout`` fires first whenever the server is alive.
    """
    return min(5.0, max(0.5, 0.25 * timeout))


@dataclasses.dataclass(eq=False)
class Watch:
    """One checked-out connection under watch.

    Attributes:
        limit: seconds without progress after which the connection is broken.
        started: monotonic time the watch started.
        deadline: monotonic time of the next look.
        fired: the deadline passed without progress; the connection was (or is
            being) interrupted and closed. Read it after the operation ended.
        elapsed: seconds from ``started`` to the moment it fired.
    """

    conn: Any = dataclasses.field(repr=False)
    limit: float
    started: float
    deadline: float
    interrupt: Callable[[], object] | None = dataclasses.field(default=None, repr=False)
    on_expire: Callable[[Watch], object] | None = dataclasses.field(default=None, repr=False)
    sock: socket.socket | None = dataclasses.field(default=None, repr=False)
    seen: tuple[int, int] | None = None  # (bytes acked, bytes received) at the last look
    looked: float = 0.0
    close_after: float | None = None  # interrupt -> shutdown wait (None: the watchdog's)
    stage: int = 0  # 0 watching, 1 interrupted (socket shutdown due), 2 shut down
    fired: bool = False
    elapsed: float = 0.0


def _dup_socket(fileno: int | None) -> socket.socket | None:
    """A socket object on a duplicate of ``fileno`` (the driver keeps its own)."""
    if fileno is None or fileno < 0:
        return None
    try:
        fd = os.dup(fileno)
    except OSError:
        return None
    try:
        return socket.socket(fileno=fd)
    except OSError:  # not a socket
        os.close(fd)  # our duplicate, never the driver's descriptor
        return None


def _tcp_io(sock: socket.socket | None) -> tuple[int, int, float, float] | None:
    """(bytes acked, bytes received, s since data sent, s since data received)."""
    if sock is None or _TCP_INFO is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    try:
        buf = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 256)
    except OSError:
        return None
    if len(buf) < _TCP_INFO_LEN:
        return None
    sent_ms, _, recv_ms = _LAST_DATA.unpack_from(buf, 44)
    acked, received = _BYTES.unpack_from(buf, 120)
    return acked, received, sent_ms / 1000.0, recv_ms / 1000.0


class Watchdog:
    """Breaks connections whose operation outlived its deadline (see the module doc)."""

    def __init__(
        self,
        close_after: float = 1.0,
        idle_exit: float = 60.0,
        clock: Callable[[], float] = _monotonic,
    ) -> None:
        """Nothing starts here; the thread starts with the first watch.

        Args:
            close_after: longest wait between the interrupt and the socket shutdown
                (a watch may ask for less, so small timeouts stay small).
            idle_exit: the thread exits after this many seconds without watches.
            clock: monotonic clock (tests).
        """
        self.close_after = close_after
        self.idle_exit = idle_exit
        self._clock = clock
        self._cv = threading.Condition(threading.Lock())
        self._watches: set[Watch] = set()
        self._thread: threading.Thread | None = None
        self._wake_at = math.inf
        self.fired = 0

    # -- public --------------------------------------------------------------------------

    def watch(
        self,
        conn: Any,
        limit: float,
        fileno: int | None = None,
        interrupt: Callable[[], object] | None = None,
        on_expire: Callable[[Watch], object] | None = None,
        close_after: float | None = None,
    ) -> Watch:
        """Start watching ``conn``; :meth:`release` it when the operation ends.

        Args:
            conn: the connection (only kept for the caller's reference).
            limit: seconds without progress before it is broken.
            fileno: the driver's socket descriptor, if it has one (duplicated here).
            interrupt: asks the server to stop; called on a side thread.
            on_expire: called on the watchdog's thread when the deadline passed
                (log, count); must not block.
            close_after: wait between the interrupt and the socket shutdown for this
                watch (at most the watchdog's ``close_after``).

        Returns:
            The watch, whose ``fired`` flag tells the caller what happened.
        """
        now = self._clock()
        sock = _dup_socket(fileno)
        io = _tcp_io(sock)
        w = Watch(
            conn,
            limit,
            now,
            now + limit,
            interrupt,
            on_expire,
            sock,
            None if io is None else (io[0], io[1]),
            now,
            close_after,
        )
        with self._cv:
            self._watches.add(w)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="flbsql-watchdog", daemon=True
                )
                self._thread.start()
            elif w.deadline < self._wake_at:
                self._cv.notify()
        return w

    def release(self, w: Watch) -> None:
        """Stop watching (idempotent); after this the watchdog never touches it."""
        with self._cv:
            self._watches.discard(w)
            sock, w.sock = w.sock, None
            if sock is not None:
                sock.close()  # the duplicate only

    @property
    def active(self) -> int:
        """Connections under watch now."""
        with self._cv:
            return len(self._watches)

    @property
    def thread(self) -> threading.Thread | None:
        """The watchdog thread, while it runs."""
        with self._cv:
            return self._thread

    def _after_fork(self) -> None:
        """In a forked child: the parent's thread and operations are not ours."""
        self._cv = threading.Condition(threading.Lock())
        self._watches = set()
        self._thread = None
        self._wake_at = math.inf

    # -- thread --------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cv:
                actions = self._due(self._clock())
                if not actions:
                    if not self._watches:
                        self._wake_at = self._clock() + self.idle_exit
                        if not self._cv.wait(self.idle_exit) and not self._watches:
                            self._thread = None
                            self._wake_at = math.inf
                            return
                        continue
                    self._wake_at = min(w.deadline for w in self._watches)
                    wait = self._wake_at - self._clock()  # inf: only shut-down watches left
                    self._cv.wait(None if math.isinf(wait) else max(0.0, wait))
                    continue
            for action in actions:
                with contextlib.suppress(Exception):
                    action()

    def _due(self, now: float) -> list[Callable[[], object]]:
        """Advance every watch whose deadline passed; returns what to run unlocked."""
        actions: list[Callable[[], object]] = []
        for w in list(self._watches):
            if w.deadline > now:
                continue
            if w.stage == 0:
                if self._progressed(w, now):
                    continue
                w.fired, w.elapsed, w.stage = True, now - w.started, 1
                self.fired += 1
                w.deadline = now + (
                    self.close_after
                    if w.close_after is None
                    else min(w.close_after, self.close_after)
                )
                if w.on_expire is not None:
                    actions.append(_bind(w.on_expire, w))
                if w.interrupt is not None:
                    actions.append(_side_thread(w.interrupt))
            elif w.stage == 1:
                w.stage, w.deadline = 2, math.inf
                if w.sock is not None:  # under the lock: release() cannot close it meanwhile
                    with contextlib.suppress(OSError):
                        w.sock.shutdown(socket.SHUT_RDWR)
        return actions

    @staticmethod
    def _progressed(w: Watch, now: float) -> bool:
        """Move the deadline to ``last transfer + limit`` if bytes moved since the last look."""
        io = _tcp_io(w.sock)
        if io is None or w.seen is None:
            return False
        acked, received, since_sent, since_recv = io
        last: float | None = None
        if received != w.seen[1]:
            last = now - since_recv
        if acked != w.seen[0]:
            last = max(last if last is not None else -math.inf, now - since_sent)
        w.seen, prev, w.looked = (acked, received), w.looked, now
        if last is None:
            return False
        deadline = max(last, prev) + w.limit  # it moved after the previous look
        if deadline <= now:
            return False
        w.deadline = deadline
        return True


def _bind(fn: Callable[[Watch], object], w: Watch) -> Callable[[], object]:
    return lambda: fn(w)


def _side_thread(fn: Callable[[], object]) -> Callable[[], object]:
    """Run ``fn`` on its own daemon thread, swallowing its errors (it may hang)."""

    def quiet() -> None:
        with contextlib.suppress(Exception):
            fn()

    return threading.Thread(target=quiet, name="flbsql-interrupt", daemon=True).start


#: The process-wide watchdog every pool uses by default.
WATCHDOG = Watchdog()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=WATCHDOG._after_fork)
