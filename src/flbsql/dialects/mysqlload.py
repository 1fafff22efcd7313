r"""MySQL/MariaDB bulk load: ``LOAD DATA LOCAL INFILE`` fed from memory.

PyMySQL answers the server's LOCAL INFILE request by opening the file the server
names (``pymysql.connections._send_local_file``), so the rows would have to go
through a temporary file. :func:`connection_class` is a PyMySQL ``Connection``
whose result reader answers the request from a buffer armed on the connection just
before the statement (:func:`load`) instead, and for any other file name (a server
that asks for ``/etc/passwd``) sends nothing: ``local_infile=True`` then reads no
client file at all. It overrides PyMySQL's ``MySQLResult._read_load_local_packet``
(PyMySQL 1.1 and 1.2 share it).

The payload is the server's default text format (tab-separated fields, newline-ended
lines, backslash escapes, ``\N`` for NULL). A chunk of the default table shape
(tag, time, JSON) goes from msgpack to that text in C (:func:`encode_chunk`); other
rows are built a column at a time by C-level calls (:func:`tsv`): a text column is
joined once, escaped with ``str.replace`` and split again, numbers and times go
through ``map(str, ...)``, binary columns through ``bytes.hex`` and ``UNHEX()`` on
the server. Rows that come as an iterator are built
a slice at a time while the server loads the previous ones. A value of a type not
listed refuses the load (:class:`~flbsql.errors.BulkRefusedError`): the batch is then
written with INSERT statements.

``LOAD DATA LOCAL`` cannot stop mid-file, so the server turns every data error into
a warning (a duplicate key is skipped, an over-long text truncated, a NULL for a
NOT NULL column replaced) even in strict mode. :func:`load` therefore treats any
warning, or a loaded row count that differs from the rows sent, as the refusal of
the batch: :class:`BulkRefusedError` makes the writer undo it (savepoint) and write that
batch with statements, which name the bad rows (:func:`flbsql.output.batching.isolate`).
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import hashlib
import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from flbsql.dialects.pgbinary import Encoded, c_encode
from flbsql.errors import BulkRefusedError

__all__ = [
    "INFILE",
    "connection_class",
    "encode_chunk",
    "hex_columns",
    "infile",
    "load",
    "load_rows",
    "load_statement",
    "stage",
    "tsv",
]

INFILE = "flbsql:memory"  # the name in the statement; the server sends it back
_PACKET = 1 << 20  # payload bytes per protocol packet (the server's limit is 16 MB)
_SLICE = 1000  # rows built per block of a streamed load
_SEP = "\udc80"  # a lone surrogate: no text that can be encoded as UTF-8 holds one
_NULL = "\\N"
_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\x00", "\\0"))
_BOOL = {True: "1", False: "0"}
_QUALIFIED = re.compile(r"(`(?:[^`]|``)*`\.)?`(?:[^`]|``)*`", re.S)


@functools.cache
def connection_class() -> type:
    """PyMySQL's ``Connection`` answering LOCAL INFILE requests from memory only."""
    import pymysql.connections as pc
    from pymysql import err
    from pymysql.constants import CR, ER
    from pymysql.protocol import LoadLocalPacketWrapper

    class MemoryResult(pc.MySQLResult):  # type: ignore[misc]
        def _read_load_local_packet(self, first_packet: Any) -> None:
            conn = self.connection
            asked = LoadLocalPacketWrapper(first_packet).filename
            payload, conn.flbsql_infile = getattr(conn, "flbsql_infile", None), None
            try:
                if payload is None or asked != INFILE.encode():
                    raise err.OperationalError(
                        ER.FILE_NOT_FOUND,
                        f"the server asked for file {asked!r}: only flbsql's rows are sent",
                    )
                for block in payload:  # written as the rows are built
                    view = memoryview(block)
                    for start in range(0, len(view), _PACKET):
                        conn.write_packet(view[start : start + _PACKET])
            finally:
                conn.write_packet(b"")  # end of data
                ok = conn._read_packet()  # raises the server's error, if any
            if not ok.is_ok_packet():
                raise err.OperationalError(CR.CR_COMMANDS_OUT_OF_SYNC, "Commands Out of Sync")
            self._read_ok_packet(ok)

    class MemoryInfileConnection(pc.Connection):  # type: ignore[misc]
        """A PyMySQL connection whose LOAD DATA LOCAL reads ``flbsql_infile``."""

        flbsql_infile: bytes | None = None

        def _read_query_result(self, unbuffered: bool = False) -> int:
            self._result = None
            result = MemoryResult(self)
            if unbuffered:
                result.init_unbuffered_query()
            else:
                result.read()
            self._result = result
            if result.server_status is not None:
                self.server_status = result.server_status
            return int(result.affected_rows or 0)

    return MemoryInfileConnection


def _escape(texts: Sequence[str]) -> list[str] | None:
    """Backslash-escape a column of text in a few C calls (None: it holds a surrogate)."""
    joined = _SEP.join(texts)
    if joined.count(_SEP) != len(texts) - 1:
        return None
    for char, escaped in _ESCAPES:
        if char in joined:
            joined = joined.replace(char, escaped)
    return joined.split(_SEP)


def _plain(fmt: Callable[[Any], str]) -> Callable[[Sequence[Any]], list[str]]:
    return lambda values: list(map(fmt, values))


def _datetimes(values: Sequence[Any]) -> list[str] | None:
    if values[0].tzinfo is not None:  # one converter per column: all aware or none
        return None
    return list(map(str, values))  # 2024-05-01 12:00:00[.123456]


_FORMATS: dict[type, Callable[[Sequence[Any]], list[str] | None]] = {
    str: _escape,
    int: _plain(str),
    bool: _plain(_BOOL.__getitem__),
    float: _plain(repr),  # inf/nan are refused by the server: a warning, then statements
    decimal.Decimal: _plain("{:f}".format),
    dt.datetime: _datetimes,
    dt.date: _plain(str),
    bytes: _plain(bytes.hex),  # loaded through UNHEX(@var)
}


def _column(values: Sequence[Any], hexed: bool) -> list[str]:
    """One column's fields (bytes as hex in a ``hexed`` column, only there)."""
    kinds = set(map(type, values))
    nulls = type(None) in kinds
    kinds.discard(type(None))
    if not kinds:
        return [_NULL] * len(values)
    kind = kinds.pop()
    fmt = _FORMATS.get(kind)
    out = None
    if fmt is not None and not kinds and (kind is bytes) == hexed:
        out = fmt([v for v in values if v is not None] if nulls else values)
    if out is None:
        raise BulkRefusedError(
            f"mysql: LOAD DATA cannot take values of type {type(values[0]).__name__}"
        )
    if not nulls:
        return out
    it = iter(out)
    return [_NULL if v is None else next(it) for v in values]


def tsv(rows: Sequence[Sequence[Any]], hexed: Sequence[bool]) -> bytes:
    """The rows in LOAD DATA's default text format; BulkRefusedError when they cannot be."""
    if not rows:
        return b""
    fields = [_column(values, h) for values, h in zip(zip(*rows, strict=True), hexed, strict=True)]
    text = "\n".join(map("\t".join, zip(*fields, strict=True)))
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BulkRefusedError(f"mysql: LOAD DATA cannot take this text: {exc}") from None


def _blocks(rows: Iterable[Sequence[Any]], hexed: Sequence[bool], sent: list[int]) -> Any:
    """The payload a slice of rows at a time, counting them into ``sent[0]``.

    An iterator is consumed as the server reads (decoding and mapping overlap the load).
    """
    if isinstance(rows, Sequence):
        sent[0] = len(rows)
        yield tsv(rows, hexed)
        return
    it = iter(rows)
    while part := list(itertools.islice(it, _SLICE)):
        sent[0] += len(part)
        yield tsv(part, hexed)


def load_statement(table_sql: str, quoted: Sequence[str], hexed: Sequence[bool]) -> str:
    """``LOAD DATA LOCAL INFILE`` into ``table_sql`` with an explicit column list."""
    pairs = list(enumerate(zip(quoted, hexed, strict=True)))
    targets = [f"@flbsql_{i}" if h else q for i, (q, h) in pairs]
    sets = [f"{q} = UNHEX(@flbsql_{i})" for i, (q, h) in pairs if h]
    stmt = (
        f"LOAD DATA LOCAL INFILE '{INFILE}' INTO TABLE {table_sql} CHARACTER SET utf8mb4 "
        f"({', '.join(targets)})"
    )
    return stmt + (f" SET {', '.join(sets)}" if sets else "")


def load(cur: Any, statement: str, blocks: Iterable[bytes | memoryview], sent: list[int]) -> None:
    """Run one load; BulkRefusedError on any warning or fewer rows than ``sent[0]``."""
    conn = cur.connection
    conn.flbsql_infile = blocks
    try:
        loaded = cur.execute(statement)
    finally:
        conn.flbsql_infile = None
    warnings = int(getattr(conn._result, "warning_count", 0) or 0)
    if warnings or loaded != sent[0]:
        raise BulkRefusedError(
            f"mysql: LOAD DATA loaded {loaded} of {sent[0]} rows with {warnings} warnings"
            + _first_warnings(cur, warnings)
        )


def _first_warnings(cur: Any, count: int) -> str:
    if not count:
        return ""
    cur.execute("SHOW WARNINGS LIMIT 3")
    shown = "; ".join(f"{level} {code}: {text}" for level, code, text in cur.fetchall())
    return f" ({shown})" if shown else ""


def infile(cur: Any) -> bool:
    """The cursor's connection may LOAD DATA LOCAL (the server's ``@@local_infile``)."""
    return bool(getattr(getattr(cur, "connection", None), "flbsql_local_infile", False))


def hex_columns(types: Sequence[str] | None, ncols: int) -> list[bool]:
    """Binary columns, whose values are sent as hex and stored with ``UNHEX()``."""
    return [("blob" in t or "binary" in t) for t in types] if types else [False] * ncols


def load_rows(
    cur: Any, table_sql: str, quoted: Sequence[str], rows: Iterable[Any], hexed: Sequence[bool]
) -> bool:
    """LOAD DATA the rows into ``table_sql``; False when the statement path must write them."""
    if not infile(cur):
        if isinstance(rows, Encoded):  # no rows to write with statements: map them
            raise BulkRefusedError("mysql: local_infile is off")
        return False
    sent = [0]
    if isinstance(rows, Encoded):  # a whole chunk, encoded in C (encode_chunk)
        sent[0] = rows.rows
        load(cur, load_statement(table_sql, quoted, hexed), [rows.payload], sent)
        return True
    load(cur, load_statement(table_sql, quoted, hexed), _blocks(rows, hexed, sent), sent)
    return True


def encode_chunk(
    data: bytes | memoryview, tag: str, types: Sequence[str] | None
) -> tuple[Encoded, int] | None:
    """A chunk for a (tag, time, JSON) table as LOAD DATA text, in C; None: Python's path.

    The time column gets the time in UTC (the caller checks that the output's zone is
    UTC). The text is what :func:`tsv` makes of the Python path's rows, byte for byte
    (``csrc/pgcopy.c`` ``flbsql_tsv_default``; tests/unit/dialects/test_pgcopy.py).
    """
    if types is None or len(types) != 3:
        return None
    tag_t, time_t, json_t = (t.lower() for t in types)
    if not (
        ("char" in tag_t or "text" in tag_t)
        and time_t.startswith(("datetime", "timestamp"))
        and (json_t == "json" or "text" in json_t)
    ):
        return None
    escaped = _escape([tag])
    if escaped is None:
        return None
    return c_encode("flbsql_tsv_default", data, escaped[0].encode("utf-8"))


def stage(cur: Any, table_sql: str) -> str | None:
    """A fresh temporary staging table ``LIKE`` the target, in its schema (None: no load).

    Same types and checks as the target, so the load warns where the target would
    refuse; dropped and made again per batch (the target may have gained columns).
    Temporary tables neither commit the transaction nor outlive the session.
    """
    if not infile(cur):
        return None
    qualified = _QUALIFIED.fullmatch(table_sql)
    digest = hashlib.sha1(table_sql.encode()).hexdigest()[:12]  # never the target's own name
    name = ((qualified.group(1) or "") if qualified else "") + f"`flbsql_stage_{digest}`"
    cur.execute(f"DROP TEMPORARY TABLE IF EXISTS {name}")
    cur.execute(f"CREATE TEMPORARY TABLE {name} LIKE {table_sql}")
    return name
