"""MySQL and MariaDB through PyMySQL: errno classification, LOAD DATA or multi-row INSERT.

Bulk path: ``LOAD DATA LOCAL INFILE`` fed from memory (:mod:`flbsql.dialects.mysqlload`;
the default table shape encoded in C) when the server allows it (``@@local_infile``,
read once per connection); with a ``unique_key``, the load fills a temporary staging
table and one ``INSERT ... SELECT ... ON DUPLICATE KEY UPDATE`` moves it. A load the
server warns about is refused as a whole and that batch is written with statements.
Statement path (``local_infile`` OFF): multi-row INSERTs (:mod:`.mysqlvalues`).
``read_timeout``/``write_timeout`` (PyMySQL blocks forever on a silent server without
them) come from ``statement_timeout``; the session is ``STRICT_ALL_TABLES``.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterable, Sequence
from typing import Any

from flbsql.conn.url import ConnectParams
from flbsql.dialects import import_driver, mysqlload, mysqlvalues, sql
from flbsql.dialects.base import Capabilities, Connection, Dialect
from flbsql.errors import (
    BulkRefusedError,
    DisconnectError,
    RecordError,
    TerminalError,
    TransientError,
)

__all__ = ["DIALECT", "MySQLDialect"]

# client (CR_*) and server (ER_*) error numbers, from MySQL's errmsg.h / mysqld_error.h
DISCONNECT_ERRNOS = frozenset(
    {
        2003,  # CR_CONN_HOST_ERROR
        2006,  # CR_SERVER_GONE_ERROR
        2013,  # CR_SERVER_LOST
        2014,  # CR_COMMANDS_OUT_OF_SYNC
        2045,  # CR_NAMEDPIPEOPEN_ERROR
        2055,  # CR_SERVER_LOST_EXTENDED
        1053,  # ER_SERVER_SHUTDOWN
        1077,  # ER_NORMAL_SHUTDOWN
        1152,  # ER_ABORTING_CONNECTION
        1153,  # ER_NET_PACKET_TOO_LARGE (the server drops the connection)
        1927,  # MariaDB ER_CONNECTION_KILLED
        4031,  # ER_CLIENT_INTERACTION_TIMEOUT
    }
)
TRANSIENT_ERRNOS = frozenset(
    {
        1021,  # ER_DISK_FULL
        1040,  # ER_CON_COUNT_ERROR
        1114,  # ER_RECORD_FILE_FULL
        1203,  # ER_TOO_MANY_USER_CONNECTIONS
        1205,  # ER_LOCK_WAIT_TIMEOUT
        1213,  # ER_LOCK_DEADLOCK
        1290,  # ER_OPTION_PREVENTS_STATEMENT (--read-only during failover)
        1317,  # ER_QUERY_INTERRUPTED
        1792,  # ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
        1836,  # ER_READ_ONLY_MODE
        1969,  # MariaDB ER_STATEMENT_TIMEOUT
        3024,  # ER_QUERY_TIMEOUT
    }
)
RECORD_ERRNOS = frozenset(
    {
        1048,  # ER_BAD_NULL_ERROR
        1062,  # ER_DUP_ENTRY
        1264,  # ER_WARN_DATA_OUT_OF_RANGE
        1265,  # WARN_DATA_TRUNCATED
        1292,  # ER_TRUNCATED_WRONG_VALUE
        1300,  # ER_INVALID_CHARACTER_STRING
        1366,  # ER_TRUNCATED_WRONG_VALUE_FOR_FIELD
        1367,  # ER_ILLEGAL_VALUE_FOR_TYPE
        1406,  # ER_DATA_TOO_LONG
        1411,  # ER_WRONG_VALUE_FOR_TYPE
        1416,  # ER_CANT_CREATE_GEOMETRY_OBJECT
        1451,
        1452,  # foreign key
        1690,  # ER_DATA_OUT_OF_RANGE
        3140,  # ER_INVALID_JSON_TEXT (MySQL)
        3819,  # ER_CHECK_CONSTRAINT_VIOLATED (MySQL)
        4025,  # MariaDB ER_CONSTRAINT_FAILED (the JSON_VALID check of a JSON column)
    }
)


def errno_of(exc: BaseException) -> int | None:
    """PyMySQL puts the error number first in ``args``."""
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


class MySQLDialect(Dialect):
    """MySQL 5.7+/8 and MariaDB 10.3+."""

    name = "mysql"
    driver = "pymysql"
    extra = "mysql"
    caps = Capabilities(
        default_port=3306,
        paramstyle="format",
        current_schema="DATABASE()",
        column_type_field="column_type",
        quote_open="`",
        quote_close="`",
        max_identifier_length=64,
        max_rows_per_insert=None,  # bounded by bytes: max_allowed_packet
        max_params=65535,
        max_statement_bytes=16 << 20,
        upsert_style="mysql",
        streaming=True,  # LOAD DATA reads rows as they are built
        naive_time_text=True,
        types={
            "text": "LONGTEXT",
            "string": "VARCHAR(255)",
            "key_text": "VARCHAR(768)",  # a text column in a key index: the widest it can be
            "int": "BIGINT",
            "float": "DOUBLE",
            "bool": "BOOLEAN",
            "timestamp": "DATETIME(6)",
            "json": "JSON",
            "bytes": "LONGBLOB",
            "decimal": "DECIMAL(38, 10)",
        },
    )

    def quote(self, name: str) -> str:
        """Backtick-quote, refusing what MySQL/MariaDB cannot name.

        Identifiers hold only Basic Multilingual Plane characters (no emoji: the
        server answers error 1300 "Invalid utf8mb4 character string" at CREATE
        TABLE, i.e. at every flush) and cannot end with a space. Refused at Init.
        """
        if any(ord(ch) > 0xFFFF for ch in name):
            raise ValueError(
                f"identifier {name!r}: MySQL/MariaDB identifiers cannot hold characters "
                "outside the Basic Multilingual Plane (e.g. emoji)"
            )
        if name.endswith(" "):
            raise ValueError(f"identifier {name!r}: MySQL/MariaDB names cannot end with a space")
        return super().quote(name)

    def _pymysql(self) -> Any:
        return import_driver(self.name, "pymysql", self.extra)

    def ssl_args(self, params: ConnectParams) -> dict[str, Any] | None:
        """PyMySQL's ``ssl`` dict; it uses TLS when the server offers it (prefer)."""
        if params.ssl_mode == "disable":
            return None
        verify = params.ssl_mode in ("verify-ca", "verify-full")
        args: dict[str, Any] = {
            "check_hostname": params.ssl_mode == "verify-full",
            "verify_mode": ssl.CERT_REQUIRED if verify else ssl.CERT_NONE,
        }
        for opt, key in (("ssl_ca", "ca"), ("ssl_cert", "cert"), ("ssl_key", "key")):
            if getattr(params, opt):
                args[key] = getattr(params, opt)
        return args

    def connect_kwargs(self, params: ConnectParams) -> dict[str, Any]:
        """Keyword arguments for ``pymysql.connect``."""
        timeout = max(1, round(params.statement_timeout))
        return {
            "host": params.host or "localhost",
            "port": params.port or self.caps.default_port,
            "user": params.user or "root",
            "password": params.password or "",
            "database": params.database,
            "charset": "utf8mb4",
            "autocommit": False,
            "connect_timeout": max(1, round(params.connect_timeout)),
            "read_timeout": timeout,
            "write_timeout": timeout,
            "ssl": self.ssl_args(params),
            "local_infile": True,  # answered from memory only (mysqlload.connection_class)
            "init_command": "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@sql_mode, ''), "
            "'STRICT_ALL_TABLES'), time_zone = '+00:00'",
        }

    def connect(self, params: ConnectParams) -> Connection:
        """PyMySQL connection; ``require`` fails when the server has no TLS."""
        pymysql = self._pymysql()
        kwargs = self.connect_kwargs(params)
        connect = mysqlload.connection_class()
        try:
            conn = connect(**kwargs)
        except pymysql.err.OperationalError as exc:
            if params.ssl_mode != "prefer" or errno_of(exc) != 2026:  # CR_SSL_CONNECTION_ERROR
                raise
            conn = connect(**{**kwargs, "ssl": None})  # prefer: plaintext fallback
        if params.ssl_mode in ("require", "verify-ca", "verify-full") and not isinstance(
            getattr(conn, "_sock", None), ssl.SSLSocket
        ):
            conn.close()
            raise TerminalError(f"mysql: ssl_mode {params.ssl_mode} but the server offers no TLS")
        cur = conn.cursor()
        cur.execute("SELECT @@max_allowed_packet, @@local_infile")
        server_max, local_infile = cur.fetchone()
        cur.close()
        conn.flbsql_max_stmt = max(
            64 << 10, min(int(server_max), self.caps.max_statement_bytes or int(server_max)) - 4096
        )
        conn.flbsql_local_infile = bool(int(local_infile or 0))
        return conn  # type: ignore[no-any-return]

    def ping(self, conn: Connection) -> None:
        """``ping(reconnect=False)``: a reconnect would hide a lost transaction."""
        conn.ping(reconnect=False)  # type: ignore[attr-defined]

    def is_disconnect(self, exc: BaseException) -> bool:
        """Client errors for a lost link, server shutdown, killed connection."""
        pymysql = self._pymysql()
        if isinstance(exc, pymysql.err.InterfaceError):
            return True  # "(0, '')": the socket is already closed
        return errno_of(exc) in DISCONNECT_ERRNOS

    def fileno(self, conn: Connection) -> int | None:
        """PyMySQL keeps its socket in ``_sock`` (None once closed).

        No ``interrupt``: ``read_timeout`` already bounds each read, and the server
        abandons the statement when it finds the socket shut down.
        """
        sock = getattr(conn, "_sock", None)
        try:
            return None if sock is None else int(sock.fileno())
        except (OSError, ValueError):
            return None

    def classify(self, exc: BaseException) -> Exception:
        """By errno, then by PyMySQL's exception class."""
        pymysql = self._pymysql()
        errno = errno_of(exc)
        msg = f"mysql: {type(exc).__name__}: {exc}"
        if self.is_disconnect(exc):
            return DisconnectError(msg)
        if errno in TRANSIENT_ERRNOS:
            return TransientError(msg)
        if errno in RECORD_ERRNOS or isinstance(
            exc, (pymysql.err.DataError, pymysql.err.IntegrityError)
        ):
            return RecordError(msg)
        return super().classify(exc) if errno is None else TerminalError(msg)

    def _sized(self, cur: Any) -> Any:
        cur.max_stmt_length = getattr(cur.connection, "flbsql_max_stmt", 1 << 20)
        return cur

    def bulk_path(self, conn: Connection) -> tuple[str, str | None]:
        """LOAD DATA from memory when the server allows ``local_infile``; else INSERTs."""
        if getattr(conn, "flbsql_local_infile", False):
            return "LOAD DATA LOCAL INFILE from memory", None
        return "multi-row INSERT", (
            "the server has local_infile OFF, so rows go through multi-row INSERT "
            "(LOAD DATA LOCAL INFILE is about 3x faster: SET GLOBAL local_infile = 1)"
        )

    def _load(
        self, cur: Any, table_sql: str, columns: Sequence[str], rows: Any, types: Any
    ) -> bool:
        hexed = mysqlload.hex_columns(types, len(columns))
        return mysqlload.load_rows(cur, table_sql, [self.quote(c) for c in columns], rows, hexed)

    def encode_chunk(
        self, data: bytes | memoryview, tag: str, types: Sequence[str] | None, utc: bool = True
    ) -> tuple[Iterable[Sequence[Any]], int] | None:
        """A (tag, time, JSON) chunk as LOAD DATA text, in C (see :mod:`.mysqlload`)."""
        return mysqlload.encode_chunk(data, tag, types) if utc else None

    def bulk_insert(
        self,
        cur: Any,
        table_sql: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        types: Sequence[str] | None = None,
    ) -> None:
        """LOAD DATA LOCAL INFILE from memory, else multi-row INSERTs (PyMySQL's executemany)."""
        if not self._load(cur, table_sql, columns, rows, types):
            mysqlvalues.write(
                self._sized(cur), sql.insert(self, table_sql, columns), rows, len(columns)
            )

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
        """Upsert through a staging table loaded by LOAD DATA, else multi-row INSERTs.

        With LOAD DATA: into a temporary staging table, then ``INSERT ... SELECT ... ON
        DUPLICATE KEY UPDATE``; else multi-row ``INSERT ... ON DUPLICATE KEY UPDATE``.
        The staging table: :func:`flbsql.dialects.mysqlload.stage`.
        """
        stage = mysqlload.stage(cur, table_sql) if rows else None
        if stage is None or not self._load(cur, stage, columns, rows, types):
            stmt = sql.upsert(self, table_sql, columns, key, update)
            mysqlvalues.write(self._sized(cur), stmt, rows, len(columns))
            return
        try:
            cur.execute(sql.upsert_select(self, table_sql, columns, key, update, stage))
        except Exception as exc:  # a row the target refuses: statements find it
            err = self.classify(exc)
            if isinstance(err, RecordError):
                raise BulkRefusedError(str(err)) from exc
            raise

    def statement_write(
        self, cur: Any, table_sql: str, columns: Sequence[str], rows: Any, key: Any, update: bool
    ) -> None:
        """Multi-row INSERT (``ON DUPLICATE KEY UPDATE`` with a key): a refused load's batch."""
        stmt = sql.upsert(self, table_sql, columns, key, update) if key else None
        stmt = stmt or sql.insert(self, table_sql, columns)
        mysqlvalues.write(self._sized(cur), stmt, rows, len(columns))

    # -- input ---------------------------------------------------------------------------

    def input_row_values(self) -> bool:
        """Expanded OR form: MariaDB plans row-value comparisons as full scans."""
        return False

    def input_column_kinds(
        self, conn: Connection, schema: str | None, table: str
    ) -> dict[str, str]:
        """JSON columns (MariaDB's JSON is LONGTEXT + json_valid check); TIMESTAMP is UTC.

        The session runs with ``time_zone = '+00:00'``, so TIMESTAMP values come
        back as naive UTC; DATETIME values carry no zone and follow ``time_zone``.
        """
        kinds: dict[str, str] = {}
        for c in self.columns(conn, schema, table):
            if c.type == "json":
                kinds[c.name] = "json"
            elif c.type.startswith("timestamp"):
                kinds[c.name] = "utc"
        cur = conn.cursor()
        try:
            cur.execute(
                "SELECT check_clause FROM information_schema.check_constraints "
                "WHERE constraint_schema = COALESCE(%s, DATABASE()) AND table_name = %s",
                (schema, table),
            )
            for (clause,) in cur.fetchall():
                m = re.fullmatch(r"\s*json_valid\(`([^`]+)`\)\s*", str(clause))
                if m:
                    kinds[m.group(1)] = "json"
        except Exception:
            conn.rollback()
        finally:
            cur.close()
        return kinds


DIALECT = MySQLDialect()
