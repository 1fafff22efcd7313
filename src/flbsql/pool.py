"""A small, self-healing connection cache: one connection per calling thread.

With ``workers N`` each Fluent Bit worker flushes on its own executor thread, so
keying connections by thread gives one connection per worker with no sharing.

- lazy: nothing connects until the first use, so Init succeeds with the database down;
- a connection idle longer than ``pool.check_idle`` is pinged before use;
- a connection older than ``pool.max_lifetime`` (minus up to 10 % jitter) is replaced;
- a failed connect arms an exponential backoff (``pool.backoff_initial`` doubling to
  ``pool.backoff_max``, +-10 % jitter); until it expires, :meth:`Pool.connection`
  fails fast with :class:`~flbsql.errors.TransientError` instead of hammering the server;
- one :class:`~flbsql.errors.DisconnectError` retires every connection opened before it
  (SQLAlchemy's ``_invalidate``);
- credentials come from a callable on every connect, which is how rotated Vault
  credentials arrive.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from flbsql.dialects.base import Connection, Dialect
from flbsql.errors import DisconnectError, FlbSqlError, TransientError
from flbsql.url import ConnectParams

__all__ = ["Pool", "PoolSettings"]

Credentials = Callable[[], "tuple[str | None, str | None]"]


@dataclasses.dataclass(frozen=True)
class PoolSettings:
    """Timing knobs, from the ``pool.*`` options."""

    max_lifetime: float = 1800.0
    check_idle: float = 30.0
    backoff_initial: float = 1.0
    backoff_max: float = 30.0

    @classmethod
    def from_config(cls, cfg: Any) -> PoolSettings:
        """Read the ``pool.*`` options of a :class:`~flbsql.config.Config`."""
        return cls(cfg["pool.max_lifetime"], cfg["pool.check_idle"],
                   cfg["pool.backoff_initial"], cfg["pool.backoff_max"])


@dataclasses.dataclass
class _Slot:
    conn: Connection
    created: float
    expires: float
    last_used: float


def _jitter(value: float, spread: float = 0.1) -> float:
    return value * (1.0 + random.uniform(-spread, spread))


class Pool:
    """Connections for one plugin instance."""

    def __init__(
        self,
        dialect: Dialect,
        params: ConnectParams,
        settings: PoolSettings,
        log: logging.Logger,
        credentials: Credentials | None = None,
    ) -> None:
        """Nothing connects here."""
        self.dialect = dialect
        self.params = params
        self.settings = settings
        self.log = log
        self._credentials = credentials
        self._lock = threading.Lock()
        self._slots: dict[int, _Slot] = {}
        self._invalidated_at = 0.0
        self._backoff = 0.0
        self._next_attempt = 0.0
        self._closed = False
        self.counters = {"connects": 0, "connect_failures": 0, "recycles": 0,
                         "invalidations": 0, "pings_failed": 0}

    # -- public --------------------------------------------------------------------------

    @contextlib.contextmanager
    def connection(self) -> Iterator[Connection]:
        """This thread's connection; classified errors propagate, disconnects heal."""
        slot = self._checkout()
        try:
            yield slot.conn
        except BaseException as exc:
            err = exc if isinstance(exc, FlbSqlError) else self.dialect.classify(exc)
            if isinstance(err, DisconnectError):
                self.invalidate(str(err))
            raise
        finally:
            slot.last_used = time.monotonic()

    def invalidate(self, reason: str = "") -> None:
        """Retire every connection (after a disconnect)."""
        with self._lock:
            slots = list(self._slots.values())
            self._slots.clear()
            self._invalidated_at = time.monotonic()
            self.counters["invalidations"] += 1
        for slot in slots:
            self._close_quietly(slot.conn)
        if reason:
            self.log.warning("connection to %s lost (%s); reconnecting", self.params, reason)

    def close(self) -> None:
        """Close everything; later use raises."""
        self._closed = True
        self.invalidate()

    def stats(self) -> dict[str, int]:
        """Counters for the metrics line."""
        with self._lock:
            return dict(self.counters, open=len(self._slots))

    # -- internals -----------------------------------------------------------------------

    def _checkout(self) -> _Slot:
        if self._closed:
            raise TransientError("pool is closed")
        key = threading.get_ident()
        now = time.monotonic()
        with self._lock:
            slot = self._slots.get(key)
        if slot is not None:
            if now >= slot.expires:
                self._drop(key, slot, "recycles")
                slot = None
            elif now - slot.last_used > self.settings.check_idle:
                try:
                    self.dialect.ping(slot.conn)
                except Exception as exc:
                    self.log.info("idle connection failed its ping (%s); reconnecting",
                                  type(exc).__name__)
                    self._drop(key, slot, "pings_failed")
                    slot = None
        if slot is None:
            slot = self._connect()
            with self._lock:
                self._slots[key] = slot
        return slot

    def _drop(self, key: int, slot: _Slot, counter: str) -> None:
        with self._lock:
            self._slots.pop(key, None)
            self.counters[counter] += 1
        self._close_quietly(slot.conn)

    def _connect(self) -> _Slot:
        now = time.monotonic()
        if now < self._next_attempt:
            raise TransientError(
                f"{self.params}: reconnecting in {self._next_attempt - now:.1f}s"
            )
        params = self.params
        if self._credentials is not None:
            user, password = self._credentials()
            params = params.with_(user=user or params.user, password=password or params.password)
        try:
            conn = self.dialect.connect(params)
        except FlbSqlError:
            self._arm_backoff()
            raise
        except Exception as exc:
            self._arm_backoff()
            err = self.dialect.classify(exc)
            raise TransientError(f"cannot connect to {self.params}: {err}") from exc
        self._backoff = 0.0
        self._next_attempt = 0.0
        self.counters["connects"] += 1
        now = time.monotonic()
        return _Slot(conn, now, now + _jitter(self.settings.max_lifetime, 0.05) * 0.95 + 0,
                     now)

    def _arm_backoff(self) -> None:
        self.counters["connect_failures"] += 1
        s = self.settings
        self._backoff = s.backoff_initial if not self._backoff else min(
            self._backoff * 2, s.backoff_max)
        self._next_attempt = time.monotonic() + _jitter(self._backoff)

    @staticmethod
    def _close_quietly(conn: Connection) -> None:
        with contextlib.suppress(Exception):
            conn.close()
