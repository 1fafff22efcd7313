"""Oracle through python-oracledb (thin mode): array DML, ORA-/DPY- classification.

Bulk path: ``executemany`` with ``batcherrors=True`` (array DML): the server runs
the whole batch in one round trip and reports the rows it rejected with their
offsets, so bad records are isolated without splitting the batch. Idempotent
writes use ``MERGE INTO t USING (SELECT :1 AS "a", ... FROM dual) s``, also as
array DML. Every identifier is quoted, so names keep the case they are written in.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from flbsql.conn.url import ConnectParams
from flbsql.dialects import import_driver, sql
from flbsql.dialects.base import Capabilities, Column, Connection, Dialect
from flbsql.errors import DisconnectError, RecordError, TerminalError, TransientError

__all__ = ["DIALECT", "OracleDialect"]

DISCONNECT_CODES = frozenset(
    {
        "ORA-00028",  # session killed
        "ORA-01012",  # not logged on
        "ORA-01033",
        "ORA-01034",
        "ORA-01089",  # starting up / not available / shutting down
        "ORA-02396",  # idle time exceeded
        "ORA-03113",
        "ORA-03114",
        "ORA-03135",
        "ORA-03156",  # end-of-file / lost contact
        "ORA-12170",
        "ORA-12514",
        "ORA-12528",
        "ORA-12537",
        "ORA-12541",
        "ORA-12547",
        "DPY-1001",  # not connected
        "DPY-4011",  # the database or network closed the connection
        "DPY-6005",  # cannot connect
    }
)
TRANSIENT_CODES = frozenset(
    {
        "ORA-00018",
        "ORA-00020",  # sessions / processes exceeded
        "ORA-00054",  # resource busy
        "ORA-00060",  # deadlock
        "ORA-00257",  # archiver stuck
        "ORA-01013",  # user requested cancel (call_timeout)
        "ORA-01555",  # snapshot too old
        "ORA-01653",
        "ORA-01654",
        "ORA-01688",
        "ORA-01691",  # unable to extend (space)
        "ORA-04031",
        "ORA-04036",  # memory
        "ORA-08177",  # cannot serialize
        "ORA-30006",  # resource busy with WAIT timeout
        "DPY-4024",  # call timeout
    }
)
RECORD_CODES = frozenset(
    {
        "ORA-00001",  # unique constraint
        "ORA-01400",  # cannot insert NULL
        "ORA-01401",
        "ORA-12899",  # value too large for column
        "ORA-01438",  # value larger than specified precision
        "ORA-01461",  # can bind a LONG value only for insert into a LONG column
        "ORA-01722",  # invalid number
        "ORA-01830",
        "ORA-01840",
        "ORA-01841",
        "ORA-01843",
        "ORA-01847",
        "ORA-01861",  # dates
        "ORA-02290",
        "ORA-02291",  # check (IS JSON), foreign key
        "ORA-40441",  # JSON syntax error
    }
)


def code_of(exc: BaseException) -> str | None:
    """``ORA-12899`` / ``DPY-4011`` from an oracledb error (or a batch error)."""
    err = exc.args[0] if getattr(exc, "args", None) else exc
    code = getattr(err, "full_code", None)
    return code if isinstance(code, str) else None


class OracleDialect(Dialect):
    """Oracle 19c+."""

    name = "oracle"
    driver = "oracledb"
    extra = "oracle"
    caps = Capabilities(
        default_port=1521,
        paramstyle="numeric",
        max_identifier_length=128,
        max_rows_per_insert=None,  # array DML
        max_params=65535,
        limit_style="fetch_first",
        upsert_style="merge",
        create_if_not_exists=False,
        add_column="ADD",
        batch_errors=True,  # executemany(batcherrors=True)
        types={
            "text": "CLOB",
            "string": "VARCHAR2(255 CHAR)",
            "key_text": "VARCHAR2(1000 CHAR)",  # a text column in a key index: the widest it can be
            "int": "NUMBER(19)",
            "float": "BINARY_DOUBLE",
            "bool": "NUMBER(1)",
            "timestamp": "TIMESTAMP(6)",
            "json": "CLOB",
            "bytes": "BLOB",
            "decimal": "NUMBER",
        },
    )

    def quote(self, name: str) -> str:
        """Oracle cannot store ``"`` in an identifier, quoted or not (no escape exists).

        Refused here, at Init, naming the option, instead of ORA-03001 at every flush.
        """
        if '"' in name:
            raise ValueError(f"identifier {name!r}: Oracle identifiers cannot contain '\"'")
        return super().quote(name)

    def _oracledb(self) -> Any:
        return import_driver(self.name, "oracledb", self.extra)

    def connect_kwargs(self, params: ConnectParams) -> dict[str, Any]:
        """Thin-mode keywords; TLS (tcps) for require and stricter modes."""
        kw: dict[str, Any] = {
            "user": params.user,
            "password": params.password,
            "host": params.host or "localhost",
            "port": params.port or self.caps.default_port,
            "service_name": params.database,
            "tcp_connect_timeout": params.connect_timeout,
        }
        if params.ssl_mode in ("require", "verify-ca", "verify-full"):
            kw["protocol"] = "tcps"
            kw["ssl_server_dn_match"] = params.ssl_mode == "verify-full"
            if params.ssl_ca:
                kw["wallet_location"] = os.path.dirname(params.ssl_ca) or "."
        return {k: v for k, v in kw.items() if v is not None}

    def connect(self, params: ConnectParams) -> Connection:
        """Connect, then bound every round trip with ``call_timeout``."""
        oracledb = self._oracledb()
        conn = oracledb.connect(**self.connect_kwargs(params))
        conn.call_timeout = math.ceil(params.statement_timeout * 1000)
        return conn  # type: ignore[no-any-return]

    def ping(self, conn: Connection) -> None:
        """A round trip (``Connection.ping``)."""
        conn.ping()  # type: ignore[attr-defined]

    def is_disconnect(self, exc: BaseException) -> bool:
        """Known lost-connection codes."""
        return code_of(exc) in DISCONNECT_CODES

    def classify_code(self, code: str | None, msg: str) -> Exception | None:
        """Sort an ORA-/DPY- code; None when it says nothing."""
        if code in DISCONNECT_CODES:
            return DisconnectError(msg)
        if code in TRANSIENT_CODES:
            return TransientError(msg)
        if code in RECORD_CODES:
            return RecordError(msg)
        return None

    def classify(self, exc: BaseException) -> Exception:
        """By code, then ``isrecoverable``, then the DB-API class."""
        msg = f"oracle: {type(exc).__name__}: {str(exc).strip()}"
        err = self.classify_code(code_of(exc), msg)
        if err is not None:
            return err
        oracledb = self._oracledb()
        detail = exc.args[0] if exc.args else None
        if getattr(detail, "isrecoverable", False):
            return TransientError(msg)
        if isinstance(exc, (oracledb.DataError, oracledb.IntegrityError)):
            return RecordError(msg)
        if isinstance(exc, oracledb.Error):
            return TerminalError(msg)
        return super().classify(exc)

    def savepoint_sql(self, name: str) -> str:
        """``SAVEPOINT name``."""
        return f"SAVEPOINT {name}"

    def release_sql(self, name: str) -> str | None:
        """Oracle has no RELEASE SAVEPOINT."""
        return None

    def columns(self, conn: Connection, schema: str | None, table: str) -> list[Column]:
        """``all_tab_columns``, in the current schema by default."""
        cur = conn.cursor()
        cur.execute(
            "SELECT column_name, data_type, nullable FROM all_tab_columns "
            "WHERE owner = NVL(:1, SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA')) "
            "AND table_name = :2 ORDER BY column_id",
            [schema, table],
        )
        return [Column(r[0], str(r[1]).lower(), r[2] == "Y") for r in cur.fetchall()]

    def primary_key(self, conn: Connection, schema: str | None, table: str) -> list[str]:
        """Columns of the ``P`` constraint in key order."""
        cur = conn.cursor()
        cur.execute(
            "SELECT cc.column_name FROM all_constraints c JOIN all_cons_columns cc "
            "ON cc.owner = c.owner AND cc.constraint_name = c.constraint_name "
            "WHERE c.constraint_type = 'P' "
            "AND c.owner = NVL(:1, SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA')) "
            "AND c.table_name = :2 ORDER BY cc.position",
            [schema, table],
        )
        return [r[0] for r in cur.fetchall()]

    # -- bulk path -----------------------------------------------------------------------

    def merge_source(self, columns: Sequence[str], nrows: int) -> str:
        """One row of binds from ``dual`` (array DML repeats it per row)."""
        cols = ", ".join(f"{self.placeholder(i)} AS {self.quote(c)}" for i, c in enumerate(columns))
        return f"(SELECT {cols} FROM dual) s"

    def _input_sizes(self, cur: Any, types: Sequence[str] | None) -> None:
        if not types:
            return
        oracledb = self._oracledb()
        lob = {
            "clob": oracledb.DB_TYPE_CLOB,
            "nclob": oracledb.DB_TYPE_NCLOB,
            "blob": oracledb.DB_TYPE_BLOB,
        }
        sizes = [lob.get(t) for t in types]
        if any(sizes):
            cur.setinputsizes(*sizes)

    def _array_dml(
        self, cur: Any, stmt: str, rows: Sequence[Sequence[Any]], types: Sequence[str] | None
    ) -> list[tuple[int, Exception]]:
        self._input_sizes(cur, types)
        cur.executemany(stmt, list(rows), batcherrors=True)
        failed: list[tuple[int, Exception]] = []
        for err in cur.getbatcherrors():
            msg = f"oracle: {err.full_code}: {err.message}"
            kind = self.classify_code(err.full_code, msg) or TerminalError(msg)
            if not isinstance(kind, RecordError):
                raise kind  # not the row's fault: the whole flush is retried or dropped
            failed.append((int(err.offset), kind))
        return failed

    def bulk_insert_partial(
        self,
        cur: Any,
        table_sql: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        types: Sequence[str] | None = None,
        key: Sequence[str] = (),
        update: bool = False,
    ) -> list[tuple[int, Exception]]:
        """Array DML with batch errors: the good rows stay, the bad ones are returned."""
        stmt = (
            sql.upsert(self, table_sql, columns, key, update)
            if key
            else sql.insert(self, table_sql, columns)
        )
        return self._array_dml(cur, stmt, rows, types)

    def bulk_insert(
        self,
        cur: Any,
        table_sql: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        types: Sequence[str] | None = None,
    ) -> None:
        """Array DML; any rejected row raises (the writer then isolates it)."""
        self._input_sizes(cur, types)
        cur.executemany(sql.insert(self, table_sql, columns), list(rows))

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
        """``MERGE`` as array DML."""
        self._input_sizes(cur, types)
        cur.executemany(sql.upsert(self, table_sql, columns, key, update), list(rows))


DIALECT = OracleDialect()
