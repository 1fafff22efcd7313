"""pgoutput protocol version 1 messages -> record bodies (docs/fluent-bit-abi.md §15).

Each row of ``pg_logical_slot_peek_binary_changes`` is one message; integers are
big-endian. ``B``/``C`` frame a transaction, ``R`` describes a relation (sent again
after DDL), ``Y`` a type, ``I``/``U``/``D``/``T`` are changes, ``M`` a logical
message. A TupleData is an Int16 column count, then per column ``n`` (NULL), ``u``
(unchanged TOASTed value, not sent), ``t`` (Int32 length + text) or ``b`` (binary).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import msgpack

from flbsql.cdc import OP_DELETE, OP_INSERT, OP_TRUNCATE, OP_UPDATE, format_lsn
from flbsql.cdc.packtuple import TuplePacker
from flbsql.cdc.types import Decoder, TypeInfo, build_decoder
from flbsql.cdc.types import text as _text

__all__ = ["UNCHANGED", "PgOutputDecoder", "Relation", "pg_time"]

UNCHANGED: Any = object()  # a 'u' column: TOASTed value not sent

_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_I16 = struct.Struct(">h")
_BEGIN = struct.Struct(">QqI")  # final_lsn, commit_ts, xid
_COMMIT = struct.Struct(">BQQq")  # flags, commit_lsn, end_lsn, commit_ts
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


def pg_time(micros: int) -> str:
    """Microseconds since 2000-01-01 UTC (pgoutput's timestamps) -> ISO 8601."""
    return (_PG_EPOCH + timedelta(microseconds=micros)).isoformat()


def _cstring(buf: bytes, off: int) -> tuple[str, int]:
    end = buf.index(b"\x00", off)
    return buf[off:end].decode(), end + 1


def parse_tuple(
    buf: bytes, off: int, decoders: list[Decoder | None] | None = None
) -> tuple[list[Any], bool, int]:
    """A TupleData at ``off`` -> (values, any unchanged TOAST, offset after it).

    Values are decoded with ``decoders`` (None: keep the text); NULL is None and an
    unchanged TOAST value is :data:`UNCHANGED`.
    """
    (ncols,) = _I16.unpack_from(buf, off)
    off += 2
    values: list[Any] = []
    append = values.append
    unpack = _U32.unpack_from
    unchanged = False
    for i in range(ncols):
        kind = buf[off]
        if kind == 116:  # 't'
            (length,) = unpack(buf, off + 1)
            start = off + 5
            off = start + length
            text = buf[start:off].decode()
            dec = decoders[i] if decoders is not None else None
            append(text if dec is None else dec(text))
        elif kind == 110:  # 'n'
            append(None)
            off += 1
        elif kind == 117:  # 'u'
            append(UNCHANGED)
            unchanged = True
            off += 1
        else:  # 'b' is not requested (binary=false)
            raise ValueError(f"unexpected tuple column kind {chr(kind)!r}")
    return values, unchanged, off


class Relation:
    """A published table as the last ``R`` message described it."""

    __slots__ = (
        "decoders",
        "fast",
        "key_idx",
        "names",
        "oid",
        "packer",
        "qualname",
        "replident",
        "type_oids",
    )

    def __init__(
        self,
        oid: int,
        qualname: str,
        replident: str,
        names: list[str],
        type_oids: list[int],
        key_idx: list[int],
        decoders: list[Decoder],
    ) -> None:
        """Column names, type OIDs, key column positions and value decoders."""
        self.oid = oid
        self.qualname = qualname
        self.replident = replident
        self.names = names
        self.type_oids = type_oids
        self.key_idx = key_idx
        self.decoders = decoders
        self.fast: list[Decoder | None] = [None if d is _text else d for d in decoders]
        self.packer = TuplePacker.for_relation(names, decoders)


TypeResolver = Callable[[list[int]], Mapping[int, TypeInfo]]
#: (op, relation, pos, before, after); ``after`` may come packed already (bytes, the C path)
Change = tuple[str, Relation, int, "dict[str, Any] | None", "dict[str, Any] | bytes | None"]


class PgOutputDecoder:
    """Turns messages into record bodies; keeps relations and the open transaction."""

    def __init__(
        self,
        resolve: TypeResolver,
        *,
        decimal: str = "string",
        toast_marker: str = "__unchanged_toast__",
        tables: frozenset[str] | None = None,
    ) -> None:
        """``resolve`` loads pg_type rows for OIDs; ``tables`` limits what is emitted."""
        self.resolve = resolve
        self.decimal = decimal
        self.toast_marker = toast_marker
        self.tables = tables
        self.relations: dict[int, Relation] = {}
        self.xid = 0
        self.final_lsn = 0
        self.lsn_text = ""
        self.commit_time = ""
        self.commit_micros = 0
        self.pos = 0
        self.overlap = False

    # -- framing ----------------------------------------------------------------------

    def begin(self, buf: bytes) -> int:
        """``B``: open a transaction; returns its commit LSN (``final_lsn``)."""
        self.final_lsn, self.commit_micros, self.xid = _BEGIN.unpack_from(buf, 1)
        self.lsn_text = format_lsn(self.final_lsn)
        self.commit_time = pg_time(self.commit_micros)
        self.pos = 0
        return self.final_lsn

    @staticmethod
    def commit(buf: bytes) -> int:
        """``C``: the transaction's end LSN (what the slot advances to)."""
        return int(_COMMIT.unpack_from(buf, 1)[2])

    @staticmethod
    def message(buf: bytes) -> tuple[bool, int, str, bytes]:
        """``M``: (transactional, lsn, prefix, content)."""
        flags = buf[1]
        (lsn,) = struct.unpack_from(">Q", buf, 2)
        prefix, off = _cstring(buf, 10)
        (length,) = _U32.unpack_from(buf, off)
        return bool(flags & 1), lsn, prefix, bytes(buf[off + 4 : off + 4 + length])

    def relation(self, buf: bytes) -> Relation:
        """``R``: (re)define a relation; new type OIDs are resolved."""
        (oid,) = _U32.unpack_from(buf, 1)
        schema, off = _cstring(buf, 5)
        name, off = _cstring(buf, off)
        replident = chr(buf[off])
        (ncols,) = _I16.unpack_from(buf, off + 1)
        off += 3
        names: list[str] = []
        oids: list[int] = []
        key_idx: list[int] = []
        for i in range(ncols):
            flags = buf[off]
            col, off = _cstring(buf, off + 1)
            (typ,) = _U32.unpack_from(buf, off)
            off += 8
            names.append(col)
            oids.append(typ)
            if flags & 1:
                key_idx.append(i)
        catalog = self.resolve(oids)
        decoders = [build_decoder(t, catalog, self.decimal) for t in oids]
        rel = Relation(
            oid, f"{schema or 'pg_catalog'}.{name}", replident, names, oids, key_idx, decoders
        )
        self.relations[oid] = rel
        return rel

    # -- changes ----------------------------------------------------------------------

    def _body(
        self,
        op: str,
        rel: Relation,
        before: dict[str, Any] | None,
        after: dict[str, Any] | bytes | None,
    ) -> Change:
        pos = self.pos
        self.pos = pos + 1
        return (op, rel, pos, before, after)

    def to_body(self, change: Change) -> dict[str, Any]:
        """A change as the record body (key order as :func:`flbsql.cdc.body`)."""
        op, rel, pos, before, after = change
        if isinstance(after, bytes):
            after = msgpack.unpackb(after, raw=False, strict_map_key=False)
        return {
            "op": op,
            "table": rel.qualname,
            "lsn": self.lsn_text,
            "xid": self.xid,
            "commit_time": self.commit_time,
            "snapshot": False,
            "overlap": self.overlap,
            "pos": pos,
            "before": before,
            "after": after,
        }

    def _row(
        self, rel: Relation, values: list[Any], unchanged: bool, old: list[Any] | None
    ) -> dict[str, Any]:
        if unchanged:  # TOASTed values not sent: from the old row, else the marker
            for i, v in enumerate(values):
                if v is UNCHANGED:
                    prev = old[i] if old is not None else UNCHANGED
                    values[i] = self.toast_marker if prev is UNCHANGED else prev
        return dict(zip(rel.names, values, strict=True))

    def _old(self, rel: Relation, kind: int, values: list[Any]) -> dict[str, Any]:
        if kind == 75:  # 'K': only the replica identity columns are meaningful
            return {rel.names[i]: values[i] for i in rel.key_idx}
        return self._row(rel, list(values), UNCHANGED in values, None)

    def change(self, buf: bytes) -> list[dict[str, Any]]:
        """``I``/``U``/``D``/``T`` -> record bodies (empty for tables not captured)."""
        return [self.to_body(c) for c in self.changes(buf)]

    def changes(self, buf: bytes) -> list[Change]:
        """``I``/``U``/``D``/``T`` -> (op, relation, pos, before, after) tuples."""
        tag = buf[0]
        if tag == 84:  # 'T'
            return self._truncate(buf)
        (oid,) = _U32.unpack_from(buf, 1)
        rel = self.relations[oid]
        if self.tables is not None and rel.qualname not in self.tables:
            self.pos += 1
            return []
        kind = buf[5]
        fast = rel.fast
        packer = rel.packer
        if tag == 73:  # 'I'
            packed = None if packer is None else packer.pack(buf, 6)
            if packed is not None:
                return [self._body(OP_INSERT, rel, None, packed)]
            new, unchanged, _ = parse_tuple(buf, 6, fast)
            return [self._body(OP_INSERT, rel, None, self._row(rel, new, unchanged, None))]
        if tag == 85:  # 'U'
            old_vals = None
            before = None
            off = 5
            if kind in (75, 79):  # 'K' / 'O'
                old_vals, _, off = parse_tuple(buf, 6, fast)
                before = self._old(rel, kind, old_vals)
            packed = None if packer is None else packer.pack(buf, off + 1)
            if packed is not None:  # no unchanged TOAST value in the new row
                return [self._body(OP_UPDATE, rel, before, packed)]
            new, unchanged, _ = parse_tuple(buf, off + 1, fast)
            full_old = old_vals if kind == 79 else None
            return [self._body(OP_UPDATE, rel, before, self._row(rel, new, unchanged, full_old))]
        if tag == 68:  # 'D'
            old_vals, _, _ = parse_tuple(buf, 6, fast)
            return [self._body(OP_DELETE, rel, self._old(rel, kind, old_vals), None)]
        raise ValueError(f"unexpected pgoutput message {chr(tag)!r}")

    def _truncate(self, buf: bytes) -> list[Change]:
        (nrels,) = _U32.unpack_from(buf, 1)
        out = []
        for i in range(nrels):
            (oid,) = _U32.unpack_from(buf, 6 + 4 * i)
            rel = self.relations.get(oid)
            if rel is None or (self.tables is not None and rel.qualname not in self.tables):
                continue
            out.append(self._body(OP_TRUNCATE, rel, None, None))
        return out
