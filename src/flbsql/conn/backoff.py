"""The one retry policy: exponential backoff with jitter (pool, CDC, poll).

``pool.backoff_initial`` doubling up to ``pool.backoff_max``, each delay spread by
+-10 % so that many instances do not retry in step (psycopg_pool's
``AttemptWithBackoff``). Not thread-safe: the owner holds its own lock.
"""

from __future__ import annotations

import random
import time

__all__ = ["Backoff", "jitter"]


def jitter(value: float, spread: float = 0.1) -> float:
    """``value`` spread by +-``spread`` (a fraction)."""
    return value * (1.0 + random.uniform(-spread, spread))


class Backoff:
    """Delays after consecutive failures; :meth:`success` starts over."""

    def __init__(self, initial: float, cap: float) -> None:
        """``initial`` seconds after the first failure, doubling up to ``cap``."""
        self.initial = initial
        self.cap = cap
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
        """Seconds until the next attempt is due (0 when it is)."""
        return max(0.0, self._until - time.monotonic())
