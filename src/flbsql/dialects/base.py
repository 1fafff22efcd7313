"""What every dialect is: capabilities as data, plus a few driver overrides.

The ANSI core (:mod:`flbsql.dialects.sql`, the writer, the reader) reads
:class:`Capabilities` and never asks for a dialect by name. A dialect module
overrides only what is really driver- or server-specific: connecting, pinging,
recognising a disconnect, classifying an error, introspection queries, and the
bulk path. SQLAlchemy's ``mssql/pymssql.py`` and dlt's ``_raw_capabilities`` are
the models.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

from flbsql.conn.url import ConnectParams
from flbsql.errors import (
    DisconnectError,
    RecordError,
    TerminalError,
    TransientError,
    sqlstate_is_transient,
)

__all__ = ["Capabilities", "Column", "Connection", "Cursor", "Dialect"]


class Cursor(Protocol):
    """The DB-API 2 cursor surface the core uses."""

    description: Any
    rowcount: int

    def execute(self, sql: str, params: Any = ..., /) -> Any: ...  # noqa: D102
    def executemany(self, sql: str, seq: Any, /) -> Any: ...  # noqa: D102
    def fetchone(self) -> Any: ...  # noqa: D102
    def fetchmany(self, size: int = ..., /) -> Any: ...  # noqa: D102
    def fetchall(self) -> Any: ...  # noqa: D102
    def close(self) -> Any: ...  # noqa: D102


class Connection(Protocol):
    """The DB-API 2 connection surface the core uses."""

    def cursor(self, *args: Any, **kwargs: Any) -> Any: ...  # noqa: D102
    def commit(self) -> Any: ...  # noqa: D102
    def rollback(self) -> Any: ...  # noqa: D102
    def close(self) -> Any: ...  # noqa: D102


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """Limits and syntax of one database, used by the generic code.

    Attributes:
        paramstyle: DB-API paramstyle of the driver: qmark, format, numeric, named.
        quote_open / quote_close: identifier quotes.
        max_identifier_length: longest identifier the server accepts.
        max_rows_per_insert: rows in one multi-row VALUES (None: unbounded).
        max_params: bound parameters per statement.
        max_statement_bytes: statement size cap (MySQL's max_allowed_packet), or None.
        row_value_compare: ``(a, b) > (?, ?)`` works and uses the index.
        limit_style: ``limit`` (LIMIT n), ``fetch_first`` (FETCH FIRST n ROWS ONLY),
            ``top`` (SELECT TOP n).
        has_schemas: ``schema.table`` names are meaningful.
        upsert_style: on_conflict (PG, SQLite), mysql (INSERT IGNORE / ON DUPLICATE KEY),
            merge (Oracle, SQL Server).
        savepoints: SAVEPOINT / ROLLBACK TO SAVEPOINT is available.
        transactional_ddl: CREATE TABLE can be rolled back.
        types: generic type name -> this dialect's column type.
        timestamp_precision: fractional digits of the timestamp type.
        create_if_not_exists: ``CREATE TABLE IF NOT EXISTS`` is understood.
        text_nul: text columns can store U+0000 (PostgreSQL cannot).
        json_as_bytes: the bulk path takes JSON documents as UTF-8 bytes.
        current_schema: SQL for the session's default schema (introspection).
        column_type_field: the ``information_schema.columns`` field naming the type
            (MySQL's ``column_type`` keeps the length, e.g. ``varchar(255)``).
        epoch_micros: record times for zone-aware columns may be passed as
            :class:`flbsql.timestamps.EpochMicros` (the driver adapts them), which spares
            building a datetime per row on the hot path.
        enforces_length: the server rejects text longer than a VARCHAR(n) (SQLite does not,
            so the mapper checks it to behave like the others).
    """

    paramstyle: str = "qmark"
    quote_open: str = '"'
    quote_close: str = '"'
    max_identifier_length: int = 128
    max_rows_per_insert: int | None = 1000
    max_params: int = 32767
    max_statement_bytes: int | None = None
    row_value_compare: bool = True
    limit_style: str = "limit"
    has_schemas: bool = True
    upsert_style: str = "on_conflict"
    savepoints: bool = True
    transactional_ddl: bool = True
    timestamp_precision: int = 6
    create_if_not_exists: bool = True
    text_nul: bool = True
    json_as_bytes: bool = False
    current_schema: str = "CURRENT_SCHEMA"
    column_type_field: str = "data_type"
    epoch_micros: bool = False
    enforces_length: bool = True
    types: dict[str, str] = dataclasses.field(
        default_factory=lambda: {
            "text": "TEXT",
            "string": "VARCHAR(255)",
            "int": "BIGINT",
            "float": "DOUBLE PRECISION",
            "bool": "BOOLEAN",
            "timestamp": "TIMESTAMP",
            "json": "TEXT",
            "bytes": "BLOB",
            "decimal": "DECIMAL(38, 10)",
        }
    )


@dataclasses.dataclass(frozen=True)
class Column:
    """A column as introspected from the database."""

    name: str
    type: str  # the database's own type name, lower case
    nullable: bool = True


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
        """Ask the server to stop the operation ``conn`` is running.

        The watchdog calls it from a side thread while another thread is blocked
        on ``conn``, just before it shuts the socket down, so it must be safe to
        call concurrently; it may block (the thread is abandoned). Default: the
        driver's ``interrupt()`` (sqlite3) or ``cancel()`` (oracledb), if any.
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

        Default: disconnects first, then the SQLSTATE class; data errors (class 22
        data exception, 23 integrity constraint) are per-record; anything else is
        terminal for the statement.
        """
        msg = f"{self.name}: {type(exc).__name__}: {str(exc).strip()}"
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

    # -- statements that differ ----------------------------------------------------------

    def limit(self, sql: str, n: int) -> str:
        """Append a row limit to a SELECT."""
        if self.caps.limit_style == "fetch_first":
            return f"{sql} FETCH FIRST {int(n)} ROWS ONLY"
        if self.caps.limit_style == "top":
            return sql.replace("SELECT ", f"SELECT TOP {int(n)} ", 1)
        return f"{sql} LIMIT {int(n)}"

    def placeholder(self, index: int, name: str | None = None) -> str:
        """The bind marker for parameter ``index`` (0-based)."""
        style = self.caps.paramstyle
        if style == "qmark":
            return "?"
        if style in ("format", "pyformat"):
            return "%s"
        if style == "numeric":
            return f":{index + 1}"
        if style == "named":
            return f":{name or f'p{index}'}"
        raise AssertionError(style)

    def columns(self, conn: Connection, schema: str | None, table: str) -> list[Column]:
        """Columns of a table in ordinal order; empty when the table does not exist.

        ANSI ``information_schema``, in the session's current schema unless one is given
        (``caps.current_schema``); ``caps.column_type_field`` picks the type column.
        """
        cur = conn.cursor()
        try:
            cur.execute(
                f"SELECT column_name, {self.caps.column_type_field}, is_nullable "
                "FROM information_schema.columns WHERE table_schema = "
                f"COALESCE({self.placeholder(0)}, {self.caps.current_schema}) "
                f"AND table_name = {self.placeholder(1)} ORDER BY ordinal_position",
                (schema, table),
            )
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
            cur.execute(
                "SELECT k.column_name FROM information_schema.table_constraints c "
                "JOIN information_schema.key_column_usage k "
                "ON k.constraint_name = c.constraint_name AND k.table_schema = c.table_schema "
                "AND k.table_name = c.table_name WHERE c.constraint_type = 'PRIMARY KEY' "
                f"AND c.table_schema = COALESCE({self.placeholder(0)}, "
                f"{self.caps.current_schema}) AND c.table_name = {self.placeholder(1)} "
                "ORDER BY k.ordinal_position",
                (schema, table),
            )
            return [r[0] for r in cur.fetchall()]
        finally:
            cur.close()

    def bulk_insert(
        self,
        cur: Any,
        table_sql: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        types: Sequence[str] | None = None,
    ) -> None:
        """Insert rows through the dialect's fastest bound path (default executemany).

        ``types`` are the target columns' database types (from :meth:`columns`),
        for bulk paths that bind by type (PostgreSQL binary COPY).
        """
        from flbsql.dialects import sql

        cur.executemany(sql.insert(self, table_sql, columns), rows)

    def upsert(
        self,
        cur: Any,
        table_sql: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        key: Sequence[str],
        update: bool,
        types: Sequence[str] | None = None,
    ) -> None:
        """Insert rows, skipping (or updating) those whose ``key`` already exists."""
        from flbsql.dialects import sql

        cur.executemany(sql.upsert(self, table_sql, columns, key, update), rows)

    def split_name(self, name: str) -> tuple[str | None, str]:
        """``schema.table`` to (schema, table); a plain name has no schema.

        A dot separates the schema from the table. A part written in double quotes
        is taken as it is, dots included: ``"my.table"`` is one table named
        ``my.table``, ``sales."2024.q1"`` the table ``2024.q1`` in schema ``sales``;
        inside the quotes ``""`` stands for one ``"``. A part that does not start
        with a quote is literal up to the dot (``tab"le`` is the table ``tab"le``).
        Refused: more than two parts, an empty part, an unclosed quote, or text
        after a closing quote.
        """
        parts: list[str] = []
        i, n = 0, len(name)
        while True:
            if name.startswith('"', i):  # quoted part: up to the lone closing quote
                buf, j = [], i + 1
                while True:
                    k = name.find('"', j)
                    if k < 0:
                        raise ValueError(f"invalid table name {name!r}: unclosed double quote")
                    buf.append(name[j:k])
                    if name.startswith('""', k):  # "" inside quotes: one literal quote
                        buf.append('"')
                        j = k + 2
                        continue
                    i = k + 1
                    break
                parts.append("".join(buf))
                if i < n and name[i] != ".":
                    raise ValueError(
                        f"invalid table name {name!r}: text after a closing double quote"
                    )
            else:
                k = name.find(".", i)
                k = n if k < 0 else k
                parts.append(name[i:k])
                i = k
            if i >= n:
                break
            i += 1  # the dot
            if i >= n:
                parts.append("")
                break
        if len(parts) > 2 or not all(parts):
            raise ValueError(
                f"invalid table name {name!r}: expected table or schema.table "
                '(write a name that contains a dot in double quotes, e.g. "my.table")'
            )
        return (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])

    def table_sql(self, name: str) -> str:
        """A possibly schema-qualified table name, each part quoted."""
        schema, table = self.split_name(name)
        return self.quote(table) if schema is None else f"{self.quote(schema)}.{self.quote(table)}"

    # -- transactions --------------------------------------------------------------------

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

    def input_select_expr(self, quoted: str, db_type: str) -> str | None:
        """SQL that makes the server render a column as its event value, or None.

        Only for values the server formats faster than Python does, with the same
        meaning as :mod:`flbsql.input.encoding` gives them; never used for order columns.
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
