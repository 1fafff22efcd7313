"""The two CDC connections: connected the pool's way, watched by the pool's watchdog.

Two connections: ``main`` (``url``: catalog, publication, snapshot, heartbeat) and
``decoding`` (``replication_url``, else ``url``: slot, peek, advance, health). Both
use :data:`~flbsql.cdc.types.SESSION_SETTINGS` so that pgoutput (whose output
functions run in *our* session) and the snapshot's ``col::text`` produce the same
text.

They connect the way the pool does (:mod:`flbsql.conn.connect`): the user and
password come from a credential source asked on every connect (rotated Vault
credentials reconnect, see :meth:`PgConnections.credentials_changed`), and every
round trip is bounded by the pool's watchdog (:mod:`flbsql.conn.watchdog`): a server
that stops answering for ``statement_timeout`` plus a grace has its connection
broken, which the worker sees as a disconnect and reconnects. The reader slot, a
temporary copy of the durable slot that ``decoding`` consumes, lives and dies with
that session (:meth:`PgConnections.open_reader`).
"""

from __future__ import annotations

import contextlib
import functools
import secrets
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.conninfo import make_conninfo

from flbsql.cdc import SlotLostError
from flbsql.cdc.types import SESSION_SETTINGS
from flbsql.conn.connect import with_credentials
from flbsql.conn.watchdog import WATCHDOG, Watch, grace_for
from flbsql.dialects import get_dialect
from flbsql.errors import (
    DisconnectError,
    FlbSqlError,
    SecretError,
    TerminalError,
    TransientError,
)

if TYPE_CHECKING:
    import logging

    from flbsql.conn.pool import Credentials
    from flbsql.conn.url import ConnectParams

__all__ = ["DIALECT", "PgConnections", "Watched", "classify", "conninfo"]

DIALECT = get_dialect("postgresql")


def classify(exc: BaseException) -> Exception:
    """The PostgreSQL dialect's classification, plus the slot-lost state (its own, loud one)."""
    if isinstance(exc, SecretError):  # Vault unreachable, a rotated secret not readable yet
        return TransientError(f"credentials: {exc}")
    if isinstance(exc, FlbSqlError):
        return exc
    state = getattr(exc, "sqlstate", None)
    text = str(exc).strip()
    if state == "55000" and ("can no longer get changes" in text or "invalidated" in text):
        return SlotLostError(text, state)
    if isinstance(exc, psycopg.InterfaceError):  # used after close: reconnect
        return DisconnectError(text, state)
    return DIALECT.classify(exc)


def conninfo(params: ConnectParams) -> str:
    """Libpq conninfo from parsed URL + options (secrets already resolved)."""
    kw: dict[str, Any] = {
        "host": params.host,
        "port": params.port,
        "user": params.user,
        "password": params.password,
        "dbname": params.database,
        "connect_timeout": max(1, int(params.connect_timeout)),
        "sslmode": params.ssl_mode,
        "sslrootcert": params.ssl_ca,
        "sslcert": params.ssl_cert,
        "sslkey": params.ssl_key,
        "application_name": "flbsql-cdc",
    }
    kw.update(params.query)
    return make_conninfo("", **{k: v for k, v in kw.items() if v is not None})


class PgConnections:
    """The connections of one CDC instance, and their round trips under watch."""

    """Connections and statements for one CDC instance."""

    def __init__(
        self,
        main: ConnectParams,
        decoding: ConnectParams,
        log: logging.Logger,
        statement_timeout: float = 60.0,
        credentials: Credentials | None = None,
        dec_credentials: Credentials | None = None,
    ) -> None:
        """Nothing connects until :meth:`open`.

        ``credentials``/``dec_credentials``: asked on every connect of ``main`` /
        ``decoding`` (see :func:`flbsql.conn.connect.resolve_connection`).
        """
        self.params = main
        self.dec_params = decoding
        self.log = log
        self.statement_timeout = statement_timeout
        self.credentials = credentials
        self.dec_credentials = dec_credentials
        self.main: Any = None
        self.dec: Any = None
        self._creds: dict[str, tuple[str | None, str | None] | None] = {}
        self._text_oids: dict[int, list[int]] = {}
        self.reader: str | None = None
        self.reader_of: str | None = None  # the durable slot the reader was copied from
        self.grace = grace_for(statement_timeout)
        self.timeouts = 0
        self.counters = {"connects": 0, "connect_failures": 0, "rotations": 0}

    # -- connections --------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """The pool's counters, for the same metrics: connects, failures, timeouts, rotations."""
        return {**self.counters, "timeouts": self.timeouts}

    def _connect(self, which: str, params: ConnectParams, source: Credentials | None) -> Any:
        creds = self._creds[which] = None if source is None else source()
        conn = psycopg.connect(conninfo(with_credentials(params, creds)), autocommit=True)
        self.counters["connects"] += 1
        for name, value in {
            **SESSION_SETTINGS,
            "statement_timeout": f"{int(self.statement_timeout * 1000)}",
        }.items():
            self.execute(conn, "SELECT set_config(%s, %s, false)", (name, value))
        return conn

    def open(self) -> None:
        """Connect both connections (classified errors)."""
        try:
            if self.main is None or self.main.closed:
                self.main = self._connect("main", self.params, self.credentials)
            if self.dec is None or self.dec.closed:
                self.dec = self._connect("dec", self.dec_params, self.dec_credentials)
        except Exception as exc:
            self.counters["connect_failures"] += 1
            self.close()
            err = classify(exc)
            if isinstance(err, TerminalError):
                raise err from exc
            raise TransientError(f"cannot connect for CDC: {exc}".strip()) from exc

    def close(self) -> None:
        """Close both connections quietly."""
        for conn in (self.main, self.dec):
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
        self.main = self.dec = None
        self.reader = None  # a temporary slot: gone with its session

    def release(self) -> None:
        """At the final stop: give back leased credentials (Vault revokes them)."""
        for source in {id(s): s for s in (self.credentials, self.dec_credentials) if s}.values():
            source.release()

    def credentials_changed(self) -> bool:
        """True when a credential source now gives other credentials (rotated).

        The pool replaces a connection at its next checkout then; CDC holds its two
        connections for good, so the worker reconnects. A source that cannot answer
        keeps the connections (they are authenticated already), as in the pool.
        """
        for which, source in (("main", self.credentials), ("dec", self.dec_credentials)):
            if source is None or which not in self._creds:
                continue
            try:
                now = source()
            except FlbSqlError as exc:
                self.log.warning("cannot refresh credentials (%s); keeping the connections", exc)
                continue
            if now != self._creds[which]:
                return True
        return False

    # -- round trips under the watchdog ----------------------------------------------------

    def watch(self, conn: Any) -> Watch:
        """Put ``conn`` under the watchdog (as the pool does); release it after."""
        return WATCHDOG.watch(
            conn,
            self.statement_timeout + self.grace,
            fileno=DIALECT.fileno(conn),
            interrupt=functools.partial(DIALECT.interrupt, conn),
            on_expire=self._timed_out,
            close_after=self.grace / 2,
        )

    def _timed_out(self, watch: Watch) -> None:
        """On the watchdog's thread: count and log, once per expired round trip."""
        self.timeouts += 1
        self.log.warning(
            "CDC: %s; interrupting it and closing the connection", self.hung_text(watch)
        )

    def hung_text(self, watch: Watch) -> str:
        """What the watchdog saw: no answer for that long."""
        return (
            f"no answer for {watch.elapsed:.1f}s (statement_timeout "
            f"{self.statement_timeout:g}s + {self.grace:g}s grace)"
        )

    # -- the reader slot ------------------------------------------------------------------

    def open_reader(self, slot: str) -> str:
        """A temporary copy of ``slot`` that this session consumes (no re-decoding).

        Peeking the durable slot would decode everything since its confirmed position
        on every call, and the durable slot may only move once Fluent Bit took the
        records. So the changes are *consumed* from a temporary copy (dropped by the
        server with this session), and the durable slot is advanced separately. After
        a reconnect the copy starts again at the durable slot's position.
        """
        reader = f"{slot[:50]}_rd_{secrets.token_hex(3)}"
        self.execute(
            self.dec, "SELECT pg_copy_logical_replication_slot(%s, %s, true)", (slot, reader)
        )
        self.reader, self.reader_of = reader, slot
        return reader

    def reopen_reader(self) -> str:
        """Drop the reader slot and copy it again from the durable one (its position).

        For a peek given up half read: what it consumed is read again from the durable
        slot's confirmed position (transactions handed over already are skipped).
        """
        old = self.reader
        if old is not None:
            self.reader = None
            self.execute(self.dec, "SELECT pg_drop_replication_slot(%s)", (old,))
        assert self.reader_of is not None
        return self.open_reader(self.reader_of)

    def watched(self, conn: Any) -> Watched:
        """Bound the round trips in a ``with`` block by the watchdog."""
        return Watched(self, conn)

    def execute(self, conn: Any, stmt: Any, params: Any = None) -> Any:
        """``conn.execute`` under the watchdog; the result is read already (client cursor)."""
        with self.watched(conn):
            return conn.execute(stmt, params)


class Watched:
    """The watchdog over one connection while armed: from ``with`` to its end.

    :meth:`pause` and :meth:`resume` leave out time the caller spends elsewhere (a
    generator waiting for its consumer). A round trip the watchdog broke leaves as
    a :class:`~flbsql.errors.DisconnectError`.
    """

    def __init__(self, pg: PgConnections, conn: Any) -> None:
        """Not armed before ``with``."""
        self.pg = pg
        self.conn = conn
        self.watch: Watch | None = None

    def resume(self) -> None:
        """Watch again."""
        self.watch = self.pg.watch(self.conn)

    def pause(self, cause: BaseException | None = None) -> None:
        """Stop watching; raises if the watchdog struck meanwhile (the connection is gone)."""
        watch, self.watch = self.watch, None
        if watch is None:
            return
        WATCHDOG.release(watch)
        if watch.fired:
            raise DisconnectError(self.pg.hung_text(watch)) from cause

    def __enter__(self) -> Watched:
        self.resume()
        return self

    def __exit__(self, typ: object, exc: BaseException | None, tb: object) -> None:
        self.pause(exc)
        broken = getattr(self.conn, "broken", False)
        if exc is not None and not isinstance(exc, FlbSqlError) and broken:
            # the server ended the session mid-statement (a terminated backend, a
            # restart); psycopg may report that as a protocol error ("received 2
            # results from command FETCH"): it is a lost connection, reconnect
            raise DisconnectError(f"connection lost: {exc}") from exc
