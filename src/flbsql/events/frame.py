"""Rows packed as msgpack arrays -> v2 events whose bodies are maps, without a dict per row.

An input's page of rows is packed by one ``msgpack.Packer`` call as an array of row
arrays: msgpack's C packer, no Python per row. :class:`Framer` re-frames those bytes
into concatenated ``[[EventTime, {}], {column: value, ...}]`` events: each row array
becomes the event header, a map header and, for every emitted column, its packed name
followed by the value's bytes, copied as they are. The work is done in C
(``csrc/frame.c``, built as the extension module ``flbsql.events.cframe`` next to
the plugin libraries); :func:`frame_py` is the same algorithm in Python, used when
the extension is not built and as the oracle its tests compare against.

The result is byte for byte what packing ``header + packb(dict(zip(keys, row)))``
per row gives (``tests/unit/events/test_frame.py``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import msgpack

from flbsql.events.codec import MAX_EVENT_SEC, STAMP_AT, header_of_pg_micros

_ffi: Any
_lib: Any
try:  # built by csrc/build_shim.py (make build, pip install)
    from flbsql.events import cframe  # type: ignore[attr-defined,unused-ignore]

    _ffi, _lib = cframe.ffi, cframe.lib
except ImportError:  # pragma: no cover - a source tree without the build
    _ffi = _lib = None

__all__ = ["UNQUOTE", "Framer", "accelerated", "frame_py", "unquote_literal"]

_MALFORMED, _NO_ROOM = -1, -2
UNQUOTE = 2  # an emit flag: the column holds JSON string literals, framed without quotes


def accelerated() -> bool:
    """True when the C re-framer is built and loaded."""
    return _lib is not None


def _map_header(n: int) -> bytes:
    return bytes((0x80 | n,)) if n < 16 else b"\xde" + n.to_bytes(2, "big")


def unquote_literal(text: str) -> str:
    """A JSON string literal without escapes, without its quotes; any other text as is."""
    if len(text) >= 2 and text[0] == text[-1] == '"' and "\\" not in text:
        return text[1:-1]
    return text


def _unquote(packed: bytes) -> bytes:
    """A packed JSON string literal without escapes, packed without its quotes; else as is."""
    if not (0xA0 <= packed[0] <= 0xBF or 0xD9 <= packed[0] <= 0xDB):
        return packed  # not a str
    text: str = msgpack.unpackb(packed, raw=False, unicode_errors="surrogateescape")
    inner = unquote_literal(text)
    if inner is text:
        return packed
    out: bytes = msgpack.packb(inner, use_bin_type=True, unicode_errors="surrogateescape")
    return out


def frame_py(
    packed: bytes,
    head: bytes,
    keys: Sequence[bytes],
    emit: Sequence[int],
    head_col: int = -1,
    tail: tuple[bytes, int] = (b"", 0),
) -> bytes:
    """The Python re-framer: the same bytes as the C one, for tests and source trees."""
    unpacker = msgpack.Unpacker(io.BytesIO(packed), raw=True, strict_map_key=False)
    rows = unpacker.read_array_header()
    map_head = _map_header(sum(1 for e in emit if e) + tail[1])
    out: list[bytes] = []
    for _ in range(rows):
        if unpacker.read_array_header() != len(emit):
            raise ValueError("a row has another number of columns")
        start = unpacker.tell()
        values = []
        for _ in emit:
            unpacker.skip()
            values.append(packed[start : unpacker.tell()])
            start = unpacker.tell()
        own = header_of_pg_micros(msgpack.unpackb(values[head_col])) if head_col >= 0 else None
        out.append((own or head) + map_head)
        shown = [
            _unquote(v) if on == UNQUOTE else v for v, on in zip(values, emit, strict=True) if on
        ]
        out.extend(k + v for k, v in zip(keys, shown, strict=True))
        out.append(tail[0])
    return b"".join(out)


class Framer:
    """Re-frames pages of one result shape: fixed column names and emitted columns."""

    def __init__(
        self,
        keys: Sequence[str],
        emit: Sequence[int],
        head_col: int = -1,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """``keys``: the names of the emitted columns, in order; ``emit``: per column.

        ``emit`` is 0 (not emitted), 1 (emitted as it is) or :data:`UNQUOTE`.

        ``head_col``: the column holding each row's time as PostgreSQL's binary
        timestamp (:func:`~flbsql.events.codec.header_of_pg_micros`; NULL or out of
        range: the page's header), or -1. ``extra``: fields added to every body after the
        columns (the same value for every row).
        """
        if sum(1 for e in emit if e) != len(keys):
            raise ValueError("one key per emitted column")
        self.keys = [msgpack.packb(k, use_bin_type=True) for k in keys]
        self.emit = list(emit)
        self.head_col = head_col
        extra = extra or {}
        pack = msgpack.Packer(use_bin_type=True).pack
        self.tail = (b"".join(pack(k) + pack(v) for k, v in extra.items()), len(extra))
        self._keys_total = sum(len(k) for k in self.keys)
        self._c: tuple[Any, Any, Any] | None = None
        if _lib is not None:
            self._c = (
                b"".join(self.keys),
                _ffi.new("size_t[]", [len(k) for k in self.keys] or [0]),
                _ffi.new("unsigned char[]", [int(e) for e in self.emit] or [0]),
            )
            self._offs = _ffi.new("size_t[]", len(self.emit) + 1)
            self._alloc = _ffi.new_allocator(should_clear_after_alloc=False)

    def frame(self, packed: bytes, rows: int, head: bytes) -> bytes:
        """Events for the ``rows`` rows in ``packed`` (one msgpack array of row arrays)."""
        if self._c is None:
            return frame_py(packed, head, self.keys, self.emit, self.head_col, self.tail)
        keys, key_len, emit = self._c
        cap = len(packed) + rows * (len(head) + 3 + self._keys_total + len(self.tail[0]))
        out = self._alloc("char[]", cap)
        n = _lib.flbsql_frame(
            packed,
            len(packed),
            head,
            len(head),
            self.head_col,
            STAMP_AT,
            MAX_EVENT_SEC,
            keys,
            key_len,
            emit,
            len(self.emit),
            self.tail[0],
            len(self.tail[0]),
            self.tail[1],
            self._offs,
            out,
            cap,
        )
        if n < 0:
            what = "malformed rows" if n == _MALFORMED else "no room"
            raise ValueError(f"cannot frame the page: {what}")
        return bytes(_ffi.buffer(out, n))
