"""PostgreSQL binary COPY rows, encoded in a few C calls per value.

psycopg's ``Copy.write_row`` dispatches every value through its adapters (the
JSON ones are Python code), which costs about 3 us per log row. The column types
of a log table are few and simple, so we write their binary wire format
directly (``src/backend/utils/adt/*`` ``*_recv`` functions define it) and hand
psycopg whole buffers with ``Copy.write``. A type not listed here makes
:func:`encoders` return None and the dialect falls back to ``write_row``.

For the default table shape (tag text, time timestamptz, record jsonb),
:func:`encode_chunk` goes further: C code (``csrc/pgcopy.c``, the extension module
``flbsql.dialects.cpgcopy``) turns a whole Fluent Bit chunk into COPY rows without
a Python object per record, writing the JSON exactly as orjson does.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from flbsql.events.codec import PG_EPOCH_MICROS
from flbsql.timestamps import EpochMicros

_ffi: Any
_lib: Any
try:  # built by csrc/build_shim.py (make build, pip install)
    from flbsql.dialects import cpgcopy  # type: ignore[attr-defined,unused-ignore]

    _ffi, _lib = cpgcopy.ffi, cpgcopy.lib
    #: the output buffer is written before it is read: zeroing megabytes would be waste
    _alloc = _ffi.new_allocator(should_clear_after_alloc=False)
except ImportError:  # pragma: no cover - a source tree without the build
    _ffi = _lib = _alloc = None

__all__ = [
    "HEADER",
    "TRAILER",
    "Encoded",
    "c_encode",
    "encode_chunk",
    "encode_rows",
    "encoders",
    "register_epoch_dumper",
]

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = b"\xff\xff"
_NULL = b"\xff\xff\xff\xff"
_LEN = struct.Struct(">i").pack
_I2 = struct.Struct(">ih").pack
_I4 = struct.Struct(">ii").pack
_I8 = struct.Struct(">iq").pack
_F8 = struct.Struct(">id").pack
_F4 = struct.Struct(">if").pack
_BOOL = {True: b"\x00\x00\x00\x01\x01", False: b"\x00\x00\x00\x01\x00"}
_PG_EPOCH_TZ = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
_PG_EPOCH = dt.datetime(2000, 1, 1)
_US = dt.timedelta(microseconds=1)

Encoder = Callable[[Any], bytes]


def _text(v: Any) -> bytes:
    b = v.encode() if isinstance(v, str) else bytes(v)
    return _LEN(len(b)) + b


def _jsonb(v: Any) -> bytes:
    b = v.encode() if isinstance(v, str) else v
    return _LEN(len(b) + 1) + b"\x01" + b


def _bytea(v: Any) -> bytes:
    b = bytes(v)
    return _LEN(len(b)) + b


def _timestamptz(v: Any) -> bytes:
    if v.__class__ is EpochMicros:  # the record time, already an integer
        return _I8(8, v - PG_EPOCH_MICROS)
    if v.tzinfo is None:
        raise ValueError("naive datetime for a timestamptz column")
    return _I8(8, (v - _PG_EPOCH_TZ) // _US)


def _timestamp(v: dt.datetime) -> bytes:
    if v.tzinfo is not None:
        v = v.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return _I8(8, (v - _PG_EPOCH) // _US)


_ENCODERS: dict[str, Encoder] = {
    "text": _text,
    "character varying": _text,
    "varchar": _text,
    "name": _text,
    "character": _text,
    "bpchar": _text,
    "json": _text,
    "jsonb": _jsonb,
    "bytea": _bytea,
    "timestamp with time zone": _timestamptz,
    "timestamptz": _timestamptz,
    "timestamp without time zone": _timestamp,
    "timestamp": _timestamp,
    "bigint": lambda v: _I8(8, v),
    "integer": lambda v: _I4(4, v),
    "smallint": lambda v: _I2(2, v),
    "double precision": lambda v: _F8(8, v),
    "real": lambda v: _F4(4, v),
    "boolean": lambda v: _BOOL[bool(v)],
}


def encoders(types: Sequence[str] | None) -> list[Encoder] | None:
    """One encoder per column, or None when a type is not covered."""
    if types is None:
        return None
    out = [_ENCODERS.get(t) for t in types]
    return None if any(e is None for e in out) else out  # type: ignore[return-value]


def _memo(enc: Encoder) -> Encoder:
    last: list[Any] = [None, b""]

    def cached(v: Any) -> bytes:
        if v is last[0]:
            return last[1]  # type: ignore[no-any-return]
        b = enc(v)
        last[0], last[1] = v, b
        return b

    return cached


def _row_encoder(encs: Sequence[Encoder]) -> Callable[[Sequence[Any]], bytes]:
    """One function that encodes a whole row of this shape, without a per-value loop.

    Generated once per COPY (as ``collections.namedtuple`` generates its class):
    for a log row the loop over ``zip(encoders, row)`` cost more than the encoding.
    """
    n = len(encs)
    names = ", ".join(f"v{i}" for i in range(n)) + ("," if n == 1 else "")
    parts = " + ".join(f"(NULL if v{i} is None else e{i}(v{i}))" for i in range(n))
    src = f"def encode_row(row):\n    {names} = row\n    return NFIELDS + {parts}\n"
    env: dict[str, Any] = {f"e{i}": e for i, e in enumerate(encs)}
    env.update(NULL=_NULL, NFIELDS=struct.pack(">h", n))
    exec(src, env)
    fn: Callable[[Sequence[Any]], bytes] = env["encode_row"]
    return fn


def encode_rows(
    encs: Sequence[Encoder],
    rows: Iterable[Sequence[Any]],
    write: Callable[[bytes | memoryview], Any],
    flush_bytes: int = 1 << 16,
) -> None:
    """Encode ``rows`` and pass ~``flush_bytes`` buffers to ``write`` (no header/trailer).

    Raises:
        ValueError: a value does not fit its column; the message names the row.
    """
    if isinstance(rows, Encoded):  # a whole chunk, encoded in C (encode_chunk)
        write(rows.payload)
        return
    encs = [_memo(e) if e is _text else e for e in encs]  # the tag repeats on every row
    encode_row = _row_encoder(encs)
    parts: list[bytes] = []
    append = parts.append
    size = 0
    i = -1
    try:
        for i, row in enumerate(rows):  # noqa: B007 - i names the failing row
            b = encode_row(row)
            append(b)
            size += len(b)
            if size >= flush_bytes:
                write(b"".join(parts))
                parts.clear()
                size = 0
    except ValueError as exc:
        exc.row = i  # type: ignore[attr-defined]
        raise
    except (struct.error, TypeError, AttributeError, OverflowError, UnicodeError) as exc:
        err = ValueError(f"row {i}: {type(exc).__name__}: {exc}")
        err.row = i  # type: ignore[attr-defined]
        raise err from exc
    if parts:
        write(b"".join(parts))


def register_epoch_dumper(conn: Any) -> None:
    """Let psycopg bind :class:`EpochMicros` as a timestamptz.

    Used wherever our encoders are not: the ``write_row`` fallback, ``bulk insert``,
    upserts.
    """
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    class EpochMicrosDumper(Dumper):
        format = Format.TEXT
        oid = conn.adapters.types["timestamptz"].oid

        def dump(self, obj: Any) -> bytes:
            when = _UNIX_EPOCH_TZ + dt.timedelta(microseconds=int(obj))
            return when.isoformat().encode()

    conn.adapters.register_dumper(EpochMicros, EpochMicrosDumper)


_UNIX_EPOCH_TZ = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


#: The column types of the default shape that csrc/pgcopy.c writes.
DEFAULT_SHAPE = (
    frozenset({"text", "character varying", "varchar"}),
    frozenset({"timestamp with time zone", "timestamptz"}),
    frozenset({"jsonb"}),
)
_NO_ROOM = -2


class Encoded:
    """A chunk already encoded as COPY rows (no header or trailer); iterates as no rows."""

    __slots__ = ("payload", "rows")

    def __init__(self, payload: memoryview, rows: int) -> None:
        """``rows`` rows, one per record of the chunk, in order (a view of C's buffer)."""
        self.payload = payload
        self.rows = rows

    def __iter__(self) -> Any:
        """Nothing to map: the rows are in :attr:`payload`."""
        return iter(())


def encode_chunk(
    data: bytes | memoryview, tag: str, types: Sequence[str] | None
) -> tuple[Encoded, int] | None:
    """The chunk's rows for a (tag, time, jsonb) table and their count, or None (Python's).

    None also for any chunk the C code does not take as is (a binary value, a group
    marker, invalid UTF-8, ...): the Python path decodes it and isolates bad records.
    """
    if types is None or len(types) != 3:
        return None
    if not all(t in allowed for t, allowed in zip(types, DEFAULT_SHAPE, strict=True)):
        return None
    return c_encode("flbsql_pg_copy_default", data, tag.encode("utf-8", "surrogateescape"), 1)


def c_encode(
    name: str, data: bytes | memoryview, tag: bytes, *flags: int
) -> tuple[Encoded, int] | None:
    """Run one of csrc/pgcopy.c's chunk encoders: (Encoded, rows), or None (Python's)."""
    if _lib is None:
        return None
    encoder = getattr(_lib, name)
    buf = _ffi.from_buffer(data)  # the chunk as it is: no copy
    rows = _ffi.new("size_t *")
    cap = 2 * len(data) + 4096
    while True:
        out = _alloc("char[]", cap)
        n = encoder(buf, len(data), tag, len(tag), *flags, out, cap, rows)
        if n != _NO_ROOM:
            break
        cap *= 2
    if n < 0:
        return None
    payload = memoryview(_ffi.buffer(out, n))  # keeps ``out`` alive, no copy
    return Encoded(payload, int(rows[0])), int(rows[0])
