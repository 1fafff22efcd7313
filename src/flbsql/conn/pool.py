"""A small, self-healing connection cache: one connection per calling thread.

With ``workers N`` each worker flushes on its own thread: one connection per worker.

- lazy: nothing connects until the first use (Init succeeds with the database down);
- a connection idle longer than ``pool.check_idle`` is pinged before use (this is
  what survives a server-side idle timeout or a restart while the pipeline was quiet);
- a connection older than ``pool.max_lifetime`` (minus up to 10 % jitter, so the
  workers do not all reconnect at once) is replaced before use;
- a failed connect arms an exponential backoff (``pool.backoff_initial`` doubling to
  ``pool.backoff_max``, +-10 % jitter); until it expires, :meth:`Pool.connection`
  fails fast with :class:`~flbsql.errors.TransientError` (FLB_RETRY), unless a cheap
  TCP probe of the server's port (every 0.5 s at most) says it is back;
- a disconnect (a :class:`~flbsql.errors.DisconnectError`, a failed ping, or a
  connection the driver reports closed/broken after an error) retires every
  connection opened before it (SQLAlchemy's ``_invalidate``): idle ones are closed
  at once, ones in use by another worker when that worker gives them back;
- after any other transient error the connection is replaced, since its state
  (a read timeout half-way through a result) is unknown;
- credentials come from a callable, asked on every checkout; when they change
  (rotated Vault credentials) new connections use the new ones and a connection
  made with the old ones is retired at its next checkout, after the transaction it
  was running; a failed connect calls the source's ``rejected`` (drops an OIDC token);
- every checkout (and the ping before it) is watched by :mod:`flbsql.conn.watchdog`: an
  operation that moves no bytes for ``statement_timeout`` plus a grace (a quarter,
  0.5 s to 5 s) is interrupted and its socket shut down from outside, so a hung
  server cannot hang a flush or a read where the driver has no read timeout
  (libpq); it leaves as a :class:`~flbsql.errors.DisconnectError`, is logged once
  and counted as ``timeouts``.

Driver exceptions that leave ``with pool.connection()`` are classified by the
dialect and re-raised as flbsql errors (the driver exception is the ``__cause__``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from flbsql.conn.backoff import Backoff
from flbsql.conn.slot import Credentials, PoolSettings, Slot, looks_dead
from flbsql.conn.watchdog import WATCHDOG, Watch, Watchdog, grace_for
from flbsql.errors import (
    ConfigError,
    DisconnectError,
    FlbSqlError,
    MissingDriverError,
    TransientError,
)
from flbsql.secrets import redact

if TYPE_CHECKING:
    from flbsql.conn.url import ConnectParams
    from flbsql.dialects.base import Connection, Dialect

__all__ = ["Credentials", "Pool", "PoolSettings"]


class Pool:
    """Connections for one plugin instance."""

    def __init__(
        self,
        dialect: Dialect,
        params: ConnectParams,
        settings: PoolSettings,
        log: logging.Logger,
        credentials: Credentials | None = None,
        watchdog: Watchdog | None = None,
    ) -> None:
        """Nothing connects here (``watchdog``: the process-wide one by default)."""
        self.dialect = dialect
        self.params = params
        self.settings = settings
        self.log = log
        self._credentials = credentials
        self._lock = threading.Lock()
        self._slots: dict[int, Slot] = {}
        self._generation = 0
        self.address = dialect.address(params)
        self._backoff = Backoff(settings.backoff_initial, settings.backoff_max, self.address)
        self._closed = False
        self._watchdog = watchdog or WATCHDOG
        self.grace = grace_for(params.statement_timeout)
        self.counters = {
            "connects": 0,
            "connect_failures": 0,
            "recycles": 0,
            "invalidations": 0,
            "pings_failed": 0,
            "rotations": 0,
            "discarded": 0,
            "timeouts": 0,
        }

    def __repr__(self) -> str:
        return f"Pool({self.params}, open={len(self._slots)})"

    # -- public --------------------------------------------------------------------------

    @contextlib.contextmanager
    def connection(self) -> Iterator[Connection]:
        """This thread's connection; errors leave classified, disconnects heal.

        Raises:
            TransientError: cannot connect now (backoff), or a transient failure.
            DisconnectError: the connection was lost, or broken by the watchdog after
                no answer within ``statement_timeout`` + grace; the pool was invalidated.
            FlbSqlError: whatever the block raised, classified by the dialect.
        """
        slot = self._checkout()
        watch = self._watch(slot.conn)
        try:
            yield slot.conn
        except Exception as exc:
            self._watchdog.release(watch)
            err = exc if isinstance(exc, FlbSqlError) else self.dialect.classify(exc)
            if watch.fired:
                err = DisconnectError(self._timeout_text(watch))
            elif not isinstance(err, DisconnectError) and looks_dead(slot.conn):
                err = DisconnectError(redact(str(err)), getattr(err, "sqlstate", None))
            if isinstance(err, DisconnectError):
                err.stale = slot.used and not watch.fired
                self._discard(slot)
                self.invalidate("" if watch.fired else str(err))  # fired: logged already
            elif isinstance(err, TransientError):
                self._discard(slot)
            if err is exc:
                raise
            raise err from exc
        else:
            self._watchdog.release(watch)
            if watch.fired:  # finished (or swallowed the error) as the watchdog struck
                self._discard(slot)
                self.invalidate()
        finally:
            self._watchdog.release(watch)
            self._checkin(slot)

    def invalidate(self, reason: str = "") -> None:
        """Retire every connection opened so far (after a disconnect).

        Idle connections are closed now; one in use by another worker is closed when
        it is given back, so a transaction in flight is never closed under its feet.
        """
        with self._lock:
            self._generation += 1
            self.counters["invalidations"] += 1
            idle = [(k, s) for k, s in self._slots.items() if not s.in_use]
            for key, _ in idle:
                del self._slots[key]
        for _, slot in idle:
            self._close_quietly(slot.conn)
        if reason:
            self.log.debug("connection to %s lost (%s); reconnecting", self.params, redact(reason))

    def close(self) -> None:
        """Close everything; later use raises."""
        self._closed = True
        with self._lock:
            slots = list(self._slots.values())
            self._slots.clear()
        for slot in slots:
            self._close_quietly(slot.conn)
        if self._credentials is not None:
            self._credentials.release()

    def stats(self) -> dict[str, int]:
        """Counters for the metrics line (``open`` = connections held now)."""
        with self._lock:
            return dict(self.counters, open=len(self._slots))

    get_stats = stats  # psycopg_pool's name

    # -- watchdog ------------------------------------------------------------------------
    def _watch(self, conn: Connection) -> Watch:
        """Put ``conn`` under the watchdog until released."""
        return self._watchdog.watch(
            conn,
            self.params.statement_timeout + self.grace,
            fileno=self.dialect.fileno(conn),
            interrupt=functools.partial(self.dialect.interrupt, conn),
            on_expire=self._timed_out,
            close_after=self.grace / 2,
        )

    def _timed_out(self, watch: Watch) -> None:
        """On the watchdog's thread: count and log, once per expired operation."""
        with self._lock:
            self.counters["timeouts"] += 1
        self.log.warning(
            "%s; interrupting it and closing the connection", self._timeout_text(watch)
        )

    def _timeout_text(self, watch: Watch) -> str:
        return (
            f"no answer from {self.params} for {watch.elapsed:.1f}s "
            f"(statement_timeout {self.params.statement_timeout:g}s + "
            f"{self.grace:g}s grace)"
        )

    # -- checkout ------------------------------------------------------------------------

    def _checkout(self) -> Slot:
        if self._closed:
            raise TransientError("pool is closed")
        key = threading.get_ident()
        with self._lock:
            slot = self._slots.get(key)
        creds = self._current_credentials(have_connection=slot is not None)
        if slot is not None:
            slot = self._validate(key, slot, creds)
        if slot is None:
            slot = self._connect(creds)
            with self._lock:
                self._slots[key] = slot
        slot.in_use = True
        return slot

    def _current_credentials(self, have_connection: bool) -> tuple[str | None, str | None] | None:
        if self._credentials is None:
            return None
        try:
            return self._credentials()
        except FlbSqlError as exc:
            if not have_connection:
                self._arm_backoff(f"credentials: {exc}")
                raise
            # an open connection is already authenticated: keep using it
            self.log.warning(
                "cannot refresh credentials (%s); keeping the open connection", redact(str(exc))
            )
            return None

    def _validate(self, key: int, slot: Slot, creds: Any) -> Slot | None:
        """The slot if it may be used, else None (it was dropped)."""
        now = time.monotonic()
        if slot.generation != self._generation:
            self._drop(key, slot, "discarded")
            return None
        if now >= slot.expires:
            self.log.debug("connection reached pool.max_lifetime; replacing it")
            self._drop(key, slot, "recycles")
            return None
        if creds is not None and slot.creds is not None and creds != slot.creds:
            self.log.info("credentials changed; replacing the connection")
            self._drop(key, slot, "rotations")
            return None
        if now - slot.last_used > self.settings.check_idle:
            watch = self._watch(slot.conn)  # a hung server must not hang the ping either
            try:
                self.dialect.ping(slot.conn)
            except Exception as exc:
                self._watchdog.release(watch)
                with self._lock:
                    self.counters["pings_failed"] += 1
                self._drop(key, slot, "discarded")
                self.invalidate(
                    "" if watch.fired else f"idle connection failed its ping: {type(exc).__name__}"
                )
                return None
            finally:
                self._watchdog.release(watch)
            if watch.fired:
                self._drop(key, slot, "discarded")
                self.invalidate()
                return None
        return slot

    def _checkin(self, slot: Slot) -> None:
        slot.last_used = time.monotonic()
        slot.used = True
        slot.in_use = False
        stale = self._closed or slot.generation != self._generation
        if stale:
            with self._lock:
                for key, held in list(self._slots.items()):
                    if held is slot:
                        del self._slots[key]
            self._close_quietly(slot.conn)

    def _discard(self, slot: Slot) -> None:
        with self._lock:
            for key, held in list(self._slots.items()):
                if held is slot:
                    del self._slots[key]
                    self.counters["discarded"] += 1
        self._close_quietly(slot.conn)

    def _drop(self, key: int, slot: Slot, counter: str) -> None:
        with self._lock:
            if self._slots.get(key) is slot:
                del self._slots[key]
            self.counters[counter] += 1
        self._close_quietly(slot.conn)

    # -- connect -------------------------------------------------------------------------

    def _connect(self, creds: tuple[str | None, str | None] | None) -> Slot:
        wait = self._backoff.remaining()
        if wait > 0:
            raise TransientError(
                f"{self.params}: database unavailable, next attempt in {wait:.1f}s"
            )
        params = self.params
        if creds is not None:
            user, password = creds
            params = params.with_(user=user or params.user, password=password or params.password)
        generation = self._generation
        try:
            conn = self.dialect.connect(params)
        except (TransientError, ConfigError, MissingDriverError) as exc:
            self._arm_backoff(str(exc))
            raise
        except FlbSqlError as exc:  # e.g. TLS refused: retried like an outage, never dropped
            self._arm_backoff(str(exc))
            raise TransientError(f"cannot connect to {self.params}: {redact(str(exc))}") from exc
        except Exception as exc:
            text = redact(str(self.dialect.classify(exc)))
            self._arm_backoff(text)
            if creds is not None and hasattr(self._credentials, "rejected"):
                self._credentials.rejected(creds)  # type: ignore[union-attr]
            raise TransientError(f"cannot connect to {self.params}: {text}") from exc
        with self._lock:
            self.counters["connects"] += 1
            if self._backoff.failures:
                self.log.debug(
                    "connected to %s after %d failed attempt(s)",
                    self.params,
                    self._backoff.failures,
                )
            self._backoff.success()
        now = time.monotonic()
        lifetime = self.settings.max_lifetime * (1.0 - random.uniform(0.0, 0.1))
        return Slot(conn, now, now + lifetime, now, generation, creds)

    def _arm_backoff(self, reason: str) -> None:
        with self._lock:
            self.counters["connect_failures"] += 1
            delay = self._backoff.failure()
            failures = self._backoff.failures
        # the first failure of a run is news; the repeats are in the flush/collect line
        self.log.debug(  # the flush, collect or CDC line that failed says it, once
            "cannot connect to %s (attempt %d): %s; next attempt in %.1fs",
            self.params,
            failures,
            redact(reason),
            delay,
        )

    @staticmethod
    def _close_quietly(conn: Connection) -> None:
        with contextlib.suppress(Exception):
            conn.close()
