"""The one retry policy: exponential backoff with jitter (pool, CDC, poll).

``pool.backoff_initial`` doubling up to ``pool.backoff_max``, each delay spread by
+-10 % so that many instances do not retry in step (psycopg_pool's
``AttemptWithBackoff``). Not thread-safe: the owner holds its own lock.

With a ``probe`` address (a server's host and port), a backoff ends early when that
port accepts a TCP connection again: a cheap probe (no login, no TLS) at most every
:data:`PROBE_EVERY` seconds. So a database that comes back is used within about a
second, not at the end of a delay that grew during a long outage, while a server
that is down sees one TCP SYN per probe instead of full connection attempts.
"""

from __future__ import annotations

import random
import socket
import time

__all__ = ["PROBE_EVERY", "Backoff", "jitter"]

PROBE_EVERY = 0.5  # seconds between reachability probes


def jitter(value: float, spread: float = 0.1) -> float:
    """``value`` spread by +-``spread`` (a fraction)."""
    return value * (1.0 + random.uniform(-spread, spread))


class Backoff:
    """Delays after consecutive failures; :meth:`success` starts over."""

    def __init__(
        self, initial: float, cap: float, probe: tuple[str | None, int | None] | None = None
    ) -> None:
        """``initial`` seconds after the first failure, doubling up to ``cap``."""
        self.initial = initial
        self.cap = cap
        host, port = probe or (None, None)  # no host (SQLite) or a Unix socket: no probe
        self.probe: tuple[str, int] | None = None
        if host and port and not host.startswith("/"):
            self.probe = (host, port)
        self._probe_at = 0.0
        self.failures = 0
        self._delay = 0.0
        self._until = 0.0

    def failure(self) -> float:
        """Count a failure; the delay before the next attempt (also kept for :meth:`remaining`)."""
        self.failures += 1
        self._delay = self.initial if not self._delay else min(self._delay * 2, self.cap)
        delay = min(jitter(self._delay), self.cap)
        self._until = time.monotonic() + delay
        return delay

    def success(self) -> None:
        """The operation worked: the next failure waits ``initial`` again."""
        self.failures = 0
        self._delay = 0.0
        self._until = 0.0

    @property
    def due_at(self) -> float:
        """``time.monotonic()`` at which the next attempt is due."""
        return self._until

    def remaining(self) -> float:
        """Seconds until the next attempt is due (0 when it is, or the probe answers)."""
        now = time.monotonic()
        left = max(0.0, self._until - now)
        if left and self.probe is not None and now >= self._probe_at:
            self._probe_at = now + PROBE_EVERY
            try:
                socket.create_connection(self.probe, timeout=PROBE_EVERY).close()
            except OSError:
                return left
            self._until = now  # the server is back: try now
            return 0.0
        return left
