"""A pgoutput TupleData straight to the packed map of a change record, in C.

The stream's hot path: an insert's new row becomes the record's ``after`` map. The
Python way decodes each column's text (:mod:`flbsql.cdc.types`), builds a dict and
packs it. When every column of a relation has a decoder that needs no catalog (text,
integers, floats, booleans, timestamps, bytea: :data:`~flbsql.cdc.types.C_KINDS`),
:class:`TuplePacker` does all three in C (``csrc/pgtuple.c``, built as the extension
module ``flbsql.cdc.cpgoutput``) and gives exactly the bytes of
``msgpack.packb(dict(...))`` (``tests/unit/cdc/test_packtuple.py``). Whatever the C
code does not handle (an unchanged TOAST value, a number it cannot parse) makes
:meth:`TuplePacker.pack` return None, and the caller decodes in Python.

:meth:`TuplePacker.inserts` goes further for the common backlog, a run of inserts
into one table: whole change events, the transaction's fields given once, from the
peek's messages joined into one buffer (:class:`Messages`; a peek holds at most
``stream.PEEK_BYTES``, held twice while it is decoded). 1.1 us a change against 6 in
Python on the 2-core benchmark machine; the same bytes
(``tests/unit/cdc/test_stream_inserts.py``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import msgpack

from flbsql.cdc.types import C_KINDS, Decoder

_ffi: Any
_lib: Any
try:  # built by csrc/build_shim.py (make build, pip install)
    from flbsql.cdc import cpgoutput  # type: ignore[attr-defined,unused-ignore]

    _ffi, _lib = cpgoutput.ffi, cpgoutput.lib
except ImportError:  # pragma: no cover - a source tree without the build
    _ffi = _lib = None

__all__ = ["Messages", "TuplePacker", "accelerated"]

_VALUE_MAX = 16  # bytes a value may add to its text: a header and a ":00"
_RUN_BYTES = 4 << 20  # output of one run of inserts at most (it stops early, not wrong)


def accelerated() -> bool:
    """True when the C tuple packer is built and loaded."""
    return _lib is not None


class Messages:
    """A peek's messages concatenated once, for :meth:`TuplePacker.inserts`."""

    def __init__(self, msgs: Sequence[bytes]) -> None:
        """``msgs``: the pgoutput messages in order."""
        self.count = len(msgs)
        self.blob = b"".join(msgs)
        self.ends = _ffi.new("size_t[]", list(itertools.accumulate(map(len, msgs))) or [0])


class TuplePacker:
    """Packs the TupleData of one relation shape (column names and decoders)."""

    def __init__(self, names: Sequence[str], kinds: Sequence[int]) -> None:
        """``kinds``: per column, its :data:`~flbsql.cdc.types.C_KINDS` number."""
        packed = [msgpack.packb(n, use_bin_type=True) for n in names]
        self.ncols = len(names)
        self._keys = b"".join(packed)
        self._key_len = _ffi.new("size_t[]", [len(k) for k in packed] or [0])
        self._kinds = _ffi.new("unsigned char[]", list(kinds) or [0])
        self._extra = len(self._keys) + 3 + _VALUE_MAX * self.ncols
        self._alloc = _ffi.new_allocator(should_clear_after_alloc=False)
        self._cap = 0
        self._out: Any = None  # reused between calls (one stream thread per decoder)

    @classmethod
    def for_relation(cls, names: Sequence[str], decoders: Sequence[Decoder]) -> TuplePacker | None:
        """A packer when C handles every column of the relation, else None."""
        if _lib is None:
            return None
        kinds = [C_KINDS.get(d) for d in decoders]
        if any(k is None for k in kinds):
            return None
        return cls(names, [k for k in kinds if k is not None])

    def pack(self, buf: bytes, off: int) -> bytes | None:
        """The map of the TupleData at ``buf[off:]``; None: decode it in Python."""
        cap = len(buf) - off + self._extra
        if cap > self._cap:
            self._cap = max(cap, 2 * self._cap, 4096)
            self._out = self._alloc("char[]", self._cap)
        out = self._out
        n = _lib.flbsql_pg_tuple(
            buf, len(buf), off, self._keys, self._key_len, self._kinds, self.ncols, out, cap
        )
        return None if n < 0 else _ffi.buffer(out, n)[:]

    def inserts(
        self,
        msgs: Messages,
        first: int,
        oid: int,
        prefix: bytes,
        pos: int,
        seq: int,
        max_rows: int,
        max_bytes: int,
    ) -> tuple[int, bytes]:
        """Messages ``first``.. while they insert into ``oid``, as whole change events.

        ``prefix``: what every change of the transaction starts with, up to the
        ``pos`` key (:meth:`~flbsql.cdc.record.ChangeEncoder.prefix`); ``pos``/``seq``:
        the first change's position and its table's last change number. The run
        stops before any other message or a value C does not take, and after the
        event that reaches ``max_rows`` events or ``max_bytes`` bytes. Returns
        (messages taken, their events); (0, b"") when the first is not for C.
        """
        cap = min(max_bytes, _RUN_BYTES) + len(prefix) + 64 + self._extra
        if cap > self._cap:
            self._cap = max(cap, 2 * self._cap, 4096)
            self._out = self._alloc("char[]", self._cap)
        written = _ffi.new("size_t *")
        n = _lib.flbsql_pg_inserts(
            msgs.blob,
            msgs.ends,
            first,
            msgs.count,
            oid,
            prefix,
            len(prefix),
            self._keys,
            self._key_len,
            self._kinds,
            self.ncols,
            pos,
            seq,
            max_rows,
            min(max_bytes, _RUN_BYTES),
            self._out,
            self._cap,
            written,
        )
        return n, _ffi.buffer(self._out, written[0])[:] if n else b""
