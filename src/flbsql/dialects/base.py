"""What every dialect is: capabilities as data, plus a few driver overrides.

The ANSI core (:mod:`flbsql.dialects.sql`, the writer, the reader) reads
:class:`~flbsql.dialects.capabilities.Capabilities` and never asks for a dialect by
name. :class:`Dialect` is the whole contract between the generic code and a
database: every hook the writer, the table setup, the dead letters and the reader
call is declared here, with an ANSI default where one exists. A dialect module
overrides only what is really driver- or server-specific: connecting, pinging,
recognising a disconnect, classifying an error, introspection queries, and the bulk
path. SQLAlchemy's ``mssql/pymssql.py`` and dlt's ``_raw_capabilities`` are the
models. Imports go one way: capabilities, dbapi <- sql <- base <- one per database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from flbsql.conn.url import ConnectParams
from flbsql.dialects import sql
from flbsql.dialects.capabilities import Capabilities
from flbsql.dialects.dbapi import Column, Connection, Cursor
from flbsql.errors import (
    DisconnectError,
    RecordError,
    TerminalError,
    TransientError,
    sqlstate_is_transient,
)

__all__ = ["Capabilities", "Column", "Connection", "Cursor", "Dialect"]


class Dialect:
    """ANSI defaults; subclasses override data and the driver hooks."""

    name: ClassVar[str] = "ansi"
    driver: ClassVar[str] = ""  # module imported by connect()
    extra: ClassVar[str] = ""  # pip extra that installs it
    caps: ClassVar[Capabilities] = Capabilities()

    # -- identifiers -------------------------------------------------------------------

    def quote(self, name: str) -> str:
        """Quote one identifier, doubling the closing quote character inside it."""
        if not name or "\x00" in name:
            raise ValueError(f"invalid identifier {name!r}")
        if "%" in name and self.caps.paramstyle in ("format", "pyformat"):
            # the driver would read it as a placeholder in statements that bind values
            raise ValueError(
                f"identifier {name!r}: '%' is not supported by the {self.name} driver's paramstyle"
            )
        if len(name.encode("utf-8")) > self.caps.max_identifier_length:
            raise ValueError(
                f"identifier {name!r} is longer than {self.caps.max_identifier_length} bytes"
            )
        q = self.caps.quote_close
        return self.caps.quote_open + name.replace(q, q + q) + q

    def normalize_name(self, name: str) -> str:
        """How the server stores an unquoted identifier (Oracle: upper case)."""
        return name

    # -- connections -------------------------------------------------------------------

    def connect(self, params: ConnectParams) -> Connection:
        """Open a connection with timeouts and TLS from ``params``; autocommit off."""
        raise NotImplementedError

    def ping(self, conn: Connection) -> None:
        """Cheap liveness check; raises on a dead connection."""
        cur = conn.cursor()
        try:
            cur.execute("SELECT 1")
            cur.fetchall()
        finally:
            cur.close()

    def is_disconnect(self, exc: BaseException) -> bool:
        """True when ``exc`` means the connection is unusable."""
        return False

    def fileno(self, conn: Connection) -> int | None:
        """The connection's socket descriptor, or None (no socket, or closed).

        The pool's watchdog (:mod:`flbsql.conn.watchdog`) duplicates it to watch the
        traffic and, past the deadline, to shut the socket down from outside.
        Default: the driver's ``fileno()`` where it has one (psycopg).
        """
        fileno = getattr(conn, "fileno", None)
        if not callable(fileno):
            return None
        try:
            fd = fileno()
        except Exception:
            return None
        return fd if isinstance(fd, int) and fd >= 0 else None

    def interrupt(self, conn: Connection) -> None:
        """Ask the server to stop what ``conn`` runs (the watchdog, from a side thread).

        Safe to call concurrently; it may block. Default: the driver's ``interrupt()``
        (sqlite3) or ``cancel()`` (oracledb), if any.
        """
        for name in ("interrupt", "cancel"):
            method = getattr(conn, name, None)
            if callable(method):
                method()
                return

    def sqlstate(self, exc: BaseException) -> str | None:
        """The SQLSTATE of a driver error, where the driver reports one."""
        return getattr(exc, "sqlstate", None)

    def classify(self, exc: BaseException) -> Exception:
        """Sort a driver error into the flbsql tree (keep ``exc`` as the cause).

        Default: disconnects first, then the SQLSTATE class; data errors (class 22, 23)
        are per-record; anything else is terminal for the statement.
        """
        msg = f"{self.name}: {type(exc).__name__}: {self.error_text(exc)}"
        state = self.sqlstate(exc)
        if self.is_disconnect(exc):
            return DisconnectError(msg, state)
        if sqlstate_is_transient(state):
            return TransientError(msg, state)
        if state and state[:2] in ("22", "23"):
            return RecordError(msg, state)
        if state is None and isinstance(
            exc, (UnicodeError, ValueError, TypeError, OverflowError)
        ):  # the driver could not convert a value: that record's fault
            return RecordError(msg)
        return TerminalError(msg, state)

    def address(self, params: ConnectParams) -> tuple[str | None, int | None]:
        """Host and TCP port a URL connects to: the dialect's default port if it names none."""
        return params.host, params.port or self.caps.default_port

    def error_text(self, exc: BaseException) -> str:
        """The driver's message on one line, for logs and dead letters."""
        return " ".join(str(exc).split())

    # -- names and statements that differ -------------------------------------------

    def split_name(self, name: str) -> tuple[str | None, str]:
        """``schema.table`` to (schema, table); see :func:`flbsql.dialects.sql.split_name`."""
        return sql.split_name(name)

    def table_sql(self, name: str) -> str:
        """A possibly schema-qualified table name, each part quoted."""
        schema, table = self.split_name(name)
        return self.quote(table) if schema is None else f"{self.quote(schema)}.{self.quote(table)}"

    def limit(self, sql_text: str, n: int) -> str:
        """Append a row limit to a SELECT (``caps.limit_style``)."""
        return sql.limit(self.caps, sql_text, n)

    def placeholder(self, index: int, name: str | None = None) -> str:
        """The bind marker for parameter ``index`` (0-based, ``caps.paramstyle``)."""
        return sql.placeholder(self.caps, index, name)

    def merge_target(self, table_sql: str) -> str:
        """The MERGE target with the alias ``t`` (SQL Server adds a lock hint)."""
        return f"{table_sql} t"

    def merge_source(self, columns: Sequence[str], nrows: int) -> str:
        """The MERGE source aliased ``s`` with ``columns``: ANSI ``VALUES`` rows."""
        return sql.values_source(self, columns, nrows)

    # -- introspection -----------------------------------------------------------------

    def columns(self, conn: Connection, schema: str | None, table: str) -> list[Column]:
        """Columns of a table in ordinal order; empty when the table does not exist.

        ANSI ``information_schema``, in the session's current schema unless one is given.
        """
        cur = conn.cursor()
        try:
            cur.execute(sql.columns_query(self), (schema, table))
            return [
                Column(r[0], str(r[1]).lower(), r[2] in ("YES", "Y", 1, True))
                for r in cur.fetchall()
            ]
        finally:
            cur.close()

    def primary_key(self, conn: Connection, schema: str | None, table: str) -> list[str]:
        """Primary key columns in key order (empty when none), from ``information_schema``."""
        cur = conn.cursor()
        try:
            cur.execute(sql.primary_key_query(self), (schema, table))
            return [r[0] for r in cur.fetchall()]
        finally:
            cur.close()

    # -- output: one flush is one transaction -----------------------------------------

    def begin(self, conn: Connection, cur: Cursor) -> None:
        """Open the flush transaction, where the driver does not do it by itself.

        Called once per flush before the first savepoint. Default: nothing (DB-API
        drivers open a transaction implicitly; SQLite needs an explicit BEGIN).
        """

    def insert_rows(
        self, cur: Cursor, table_sql: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert rows with a plain bound ``executemany`` of a single-row INSERT.

        The path of ``bulk insert`` (e.g. no COPY privilege) and of the dead letters.
        """
        cur.executemany(sql.insert(self, table_sql, columns), rows)

    def bulk_insert(
        self,
        cur: Cursor,
        table_sql: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        types: Sequence[str] | None = None,
    ) -> None:
        """Insert rows by the fastest bound path; ``types``: the columns' types (binary COPY).

        ``rows`` may be an iterator with ``caps.streaming``. A refused row raises.
        """
        self.insert_rows(cur, table_sql, columns, rows)

    def upsert(
        self,
        cur: Cursor,
        table_sql: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        key: Sequence[str],
        update: bool,
        types: Sequence[str] | None = None,
    ) -> None:
        """Insert rows, skipping (or updating) those whose ``key`` already exists."""
        cur.executemany(sql.upsert(self, table_sql, columns, key, update), rows)

    def encode_chunk(
        self, data: bytes | memoryview, tag: str, types: Sequence[str] | None, utc: bool = True
    ) -> tuple[Iterable[Sequence[Any]], int] | None:
        """A default-shape chunk as (``rows`` for bulk_insert, count), or None: map in Python.

        ``utc``: the output's ``time_zone`` is UTC (a naive time column is written in it).
        """
        return None

    def bulk_path(self, conn: Connection) -> tuple[str, str | None]:
        """The bulk path this connection uses, and why not a faster one (None: fastest)."""
        return f"{self.name} bulk insert", None

    def statement_write(
        self, cur: Cursor, table_sql: str, columns: Sequence[str], rows: Any, key: Any, update: bool
    ) -> None:
        """Write with statements, whose errors name the bad rows, a batch the bulk path refused."""
        raise NotImplementedError(f"{self.name}: no bulk path refuses batches")

    def bulk_insert_partial(
        self,
        cur: Cursor,
        table_sql: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        types: Sequence[str] | None = None,
        key: Sequence[str] = (),
        update: bool = False,
    ) -> list[tuple[int, Exception]]:
        """Insert (or upsert, with ``key``) the good rows; return (index, error) of the rest.

        Only called when ``caps.batch_errors`` is set. Each returned error is a
        :class:`~flbsql.errors.RecordError`; an error that is not about one row is raised.
        """
        raise NotImplementedError(f"{self.name}: no batch errors (caps.batch_errors)")

    def failed_row(self, exc: BaseException) -> int | None:
        """0-based index of the row a failed bulk write stopped at, or None if unknown.

        Only called when ``caps.locates_failed_row`` is set; the rows before it went in.
        """
        return None

    def savepoint_sql(self, name: str) -> str:
        """Statement that sets a savepoint."""
        return f"SAVEPOINT {name}"

    def rollback_to_sql(self, name: str) -> str:
        """Statement that undoes the work done since a savepoint."""
        return f"ROLLBACK TO SAVEPOINT {name}"

    def release_sql(self, name: str) -> str | None:
        """Statement that forgets a savepoint (None where there is none)."""
        return f"RELEASE SAVEPOINT {name}"

    # -- input --------------------------------------------------------------------------
    # Hooks of the keyset reader (flbsql.input.poll); defaults are ANSI.

    #: One writer at a time commits in key order (SQLite): a key-only read needs no
    #: settle window, since no transaction can commit a lower key later.
    input_serial_writers: ClassVar[bool] = False

    def input_row_values(self) -> bool:
        """Write ``(a, b) > (?, ?)`` (True) or the expanded OR form (False)."""
        return self.caps.row_value_compare

    def input_prepare(self, conn: Connection) -> None:
        """Per-connection setup before the first read (e.g. the session time zone)."""

    def input_cursor(self, conn: Connection) -> Any:
        """The cursor pages are read with (PostgreSQL: binary results, cheaper to load)."""
        return conn.cursor()

    def input_horizon_sql(self, table: str | None) -> str | None:
        """SELECT-list expression naming the transactions in flight, or None.

        It is evaluated in the same statement as the signpost sample, after its
        snapshot was taken; ``table`` is the source table (None for a query).
        Where it exists, :meth:`input_settled` decides when the sample is safe to
        read up to, and no settle window is needed.
        """
        return None

    def input_settled(self, conn: Connection, horizon: Any) -> bool:
        """True once every transaction named by ``horizon`` has finished."""
        raise NotImplementedError

    def input_blockers(self, conn: Connection, horizon: Any) -> list[str]:
        """The transactions of ``horizon`` still running, as an operator finds them."""
        return []

    def input_select_expr(self, quoted: str, db_type: str) -> str | None:
        """SQL that makes the server render a column as its event value, or None.

        Only for values the server formats faster than Python does, with the same meaning
        as :mod:`flbsql.input.encoding` gives them, as a JSON string literal whose quotes
        the encoder drops (``csrc/frame.c``); never used for order columns.
        """
        return None

    def input_time_binary_expr(self, quoted: str, db_type: str) -> str | None:
        """SQL giving a time column as PostgreSQL's binary timestamp, or None: not offered.

        8 bytes, big-endian int64 microseconds since 2000-01-01 UTC; the event header
        is built from them in C (:func:`flbsql.events.codec.header_of_pg_micros`).
        """
        return None

    def input_column_kinds(
        self, conn: Connection, schema: str | None, table: str
    ) -> dict[str, str]:
        """Columns needing a conversion the value's Python type does not tell.

        Returns name -> kind: ``json`` (text holding a JSON document) or ``utc``
        (naive timestamps that are UTC, not ``time_zone``).
        """
        return {
            c.name: "json" for c in self.columns(conn, schema, table) if c.type in ("json", "jsonb")
        }
