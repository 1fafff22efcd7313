"""SQL Server through pymssql (FreeTDS): message numbers, 1,000-row VALUES batches.

Bulk path: multi-row ``INSERT ... VALUES (...), (...)`` statements, each within
SQL Server's limits of 1,000 rows per VALUES list and 2,100 parameters per
request (2,099 used: the request itself takes one). Idempotent writes use
``MERGE ... WITH (HOLDLOCK)`` over a ``VALUES`` source. Savepoints are
``SAVE TRANSACTION`` / ``ROLLBACK TRANSACTION``.

Errors carry a message number in ``args[0]`` (FreeTDS 20xxx for the client side).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flbsql.conn.url import ConnectParams
from flbsql.dialects import import_driver, sql
from flbsql.dialects.base import Capabilities, Connection, Dialect
from flbsql.errors import DisconnectError, RecordError, TerminalError, TransientError

__all__ = ["DIALECT", "MSSQLDialect"]

DISCONNECT_NUMBERS = frozenset(
    {
        20002,  # connection failed
        20004,  # read from the server failed
        20006,  # write to the server failed
        20009,  # unable to connect: server unavailable or does not exist
        20017,  # unexpected EOF from the server
        20047,  # DBPROCESS is dead or not enabled
        233,
        10053,
        10054,  # transport-level / connection reset
        6005,  # SHUTDOWN is in progress
    }
)
TRANSIENT_NUMBERS = frozenset(
    {
        20003,  # adaptive server timeout
        701,
        8645,  # memory
        1105,
        9002,  # filegroup / log full
        1204,
        1205,
        1222,  # locks, deadlock victim, lock timeout
        4060,  # cannot open database (failover)
        10928,
        10929,
        40197,
        40501,
        40613,
        49918,
        49919,
        49920,  # Azure throttling
    }
)
RECORD_NUMBERS = frozenset(
    {
        220,
        232,
        8115,  # arithmetic overflow
        241,
        242,  # date/time conversion / out of range
        245,
        8114,
        8169,  # conversion failed
        515,  # cannot insert NULL
        547,  # constraint (check, foreign key)
        2601,
        2627,  # duplicate key
        2628,
        8152,  # string or binary data would be truncated
        13609,  # JSON text is not properly formatted
    }
)


def number_of(exc: BaseException) -> int | None:
    """The message number pymssql puts first in ``args``."""
    number = getattr(exc, "number", None)
    if isinstance(number, int):
        return number
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


class MSSQLDialect(Dialect):
    """SQL Server 2016+ / Azure SQL."""

    name = "mssql"
    driver = "pymssql"
    extra = "mssql"
    caps = Capabilities(
        default_port=1433,
        paramstyle="format",
        current_schema="SCHEMA_NAME()",
        quote_open="[",
        quote_close="]",
        max_identifier_length=128,
        max_rows_per_insert=1000,
        max_params=2099,
        limit_style="top",
        upsert_style="merge",
        create_if_not_exists=False,
        merge_terminator=";",
        add_column="ADD",
        types={
            "text": "NVARCHAR(MAX)",
            "string": "NVARCHAR(255)",
            "key_text": "NVARCHAR(450)",  # a text column in a key index: the widest it can be
            "int": "BIGINT",
            "float": "FLOAT",
            "bool": "BIT",
            "timestamp": "DATETIME2(6)",
            "json": "NVARCHAR(MAX)",
            "bytes": "VARBINARY(MAX)",
            "decimal": "DECIMAL(38, 10)",
        },
    )

    def _pymssql(self) -> Any:
        return import_driver(self.name, "pymssql", self.extra)

    def connect_kwargs(self, params: ConnectParams) -> dict[str, Any]:
        """Pymssql keywords; FreeTDS ``encryption`` from ssl_mode.

        FreeTDS verifies certificates from its own configuration (``ca file`` in
        freetds.conf), so ``ssl_ca`` is not passed here.
        """
        encryption = {"disable": "off", "prefer": "request"}.get(params.ssl_mode, "require")
        return {
            "server": params.host or "localhost",
            "port": str(params.port or self.caps.default_port),
            "user": params.user,
            "password": params.password,
            "database": params.database or "",
            "login_timeout": max(1, round(params.connect_timeout)),
            "timeout": max(1, round(params.statement_timeout)),
            "charset": "UTF-8",
            "appname": "flbsql",
            "autocommit": False,
            "encryption": encryption,
            "use_datetime2": True,
        }

    def connect(self, params: ConnectParams) -> Connection:
        """Pymssql connection, autocommit off."""
        pymssql = self._pymssql()
        return pymssql.connect(**self.connect_kwargs(params))  # type: ignore[no-any-return]

    def is_disconnect(self, exc: BaseException) -> bool:
        """FreeTDS link errors, or a closed connection."""
        if number_of(exc) in DISCONNECT_NUMBERS:
            return True
        text = str(exc)
        return "DBPROCESS is dead" in text or "Connection is closed" in text

    def classify(self, exc: BaseException) -> Exception:
        """By message number, then by pymssql's exception class."""
        pymssql = self._pymssql()
        number = number_of(exc)
        msg = f"mssql: {type(exc).__name__}: {exc}"
        if self.is_disconnect(exc):
            return DisconnectError(msg)
        if number in TRANSIENT_NUMBERS:
            return TransientError(msg)
        if number in RECORD_NUMBERS or isinstance(exc, (pymssql.DataError, pymssql.IntegrityError)):
            return RecordError(msg)
        if isinstance(exc, pymssql.Error):
            return TerminalError(msg)
        return super().classify(exc)

    def savepoint_sql(self, name: str) -> str:
        """``SAVE TRANSACTION name``."""
        return f"SAVE TRANSACTION {name}"

    def rollback_to_sql(self, name: str) -> str:
        """``ROLLBACK TRANSACTION name``."""
        return f"ROLLBACK TRANSACTION {name}"

    def release_sql(self, name: str) -> str | None:
        """SQL Server has no savepoint release."""
        return None

    def ping(self, conn: Connection) -> None:
        """``SELECT 1``."""
        cur = conn.cursor()
        cur.execute("SELECT 1")
        cur.fetchall()

    # -- bulk path -----------------------------------------------------------------------

    def rows_per_statement(self, ncols: int) -> int:
        """Rows in one VALUES list: 1,000 and 2,099 // ncols parameters."""
        return max(
            1, min(self.caps.max_rows_per_insert or 1000, self.caps.max_params // max(1, ncols))
        )

    def merge_target(self, table_sql: str) -> str:
        """``t WITH (HOLDLOCK) AS t``: HOLDLOCK closes the MERGE race window."""
        return f"{table_sql} WITH (HOLDLOCK) AS t"

    def _run(self, cur: Any, build: Any, ncols: int, rows: Sequence[Sequence[Any]]) -> None:
        size = self.rows_per_statement(ncols)
        stmt_full = None
        for start in range(0, len(rows), size):
            part = rows[start : start + size]
            if len(part) == size:
                stmt_full = stmt_full or build(size)
                stmt = stmt_full
            else:
                stmt = build(len(part))
            cur.execute(stmt, tuple(v for row in part for v in row))

    def bulk_insert(
        self,
        cur: Any,
        table_sql: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        types: Sequence[str] | None = None,
    ) -> None:
        """Multi-row VALUES statements."""
        self._run(cur, lambda n: sql.insert_values(self, table_sql, columns, n), len(columns), rows)

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
        """``MERGE`` over multi-row VALUES sources."""
        self._run(
            cur, lambda n: sql.upsert(self, table_sql, columns, key, update, n), len(columns), rows
        )


DIALECT = MSSQLDialect()
