"""The CDC record on the wire: one v2 event per snapshot row or change.

:func:`record` defines the body (the format is documented in :mod:`flbsql.cdc`);
snapshot rows are packed from it directly. Changes are the hot path, so
:class:`ChangeEncoder` packs whatever stays the same within a transaction once, at
``BEGIN``, and each ``(op, table)`` pair once per transaction; a change then costs
three small ``pack`` calls, and a run of inserts none (:meth:`ChangeEncoder.prefix`
hands that shared part to the C encoder). It produces exactly
the bytes of ``header(sec, nsec) + msgpack.packb(record(...))``
(``tests/unit/cdc/test_record.py`` pins that).
"""

from __future__ import annotations

from typing import Any

import msgpack

from flbsql.events.codec import header

__all__ = ["FIELDS", "ChangeEncoder", "record"]

#: The body's keys, in the order they are packed.
FIELDS = (
    "op",
    "table",
    "lsn",
    "xid",
    "commit_time",
    "snapshot",
    "overlap",
    "pos",
    "seq",
    "before",
    "after",
)


def _map_header(entries: int) -> bytes:
    """Msgpack's header of a map with fewer than 16 entries (a "fixmap")."""
    assert entries < 16
    return bytes((0x80 | entries,))


_BODY_START = _map_header(len(FIELDS))
_KEY = {name: msgpack.packb(name) for name in FIELDS}
_NIL, _TRUE, _FALSE = msgpack.packb(None), msgpack.packb(True), msgpack.packb(False)


def record(
    op: str,
    table: str,
    lsn: str,
    xid: int | None,
    commit_time: str | None,
    snapshot: bool,
    overlap: bool,
    pos: int,
    seq: int | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> dict[str, Any]:
    """The record body as a dict, keys in :data:`FIELDS` order."""
    return {
        "op": op,
        "table": table,
        "lsn": lsn,
        "xid": xid,
        "commit_time": commit_time,
        "snapshot": snapshot,
        "overlap": overlap,
        "pos": pos,
        "seq": seq,
        "before": before,
        "after": after,
    }


class ChangeEncoder:
    """Encodes the changes of one transaction at a time (one thread only).

    Call :meth:`begin` for each transaction, then :meth:`change` for each change::

        <header> <map of 11> op <op> table <table>      per (op, table): cached
                             lsn .. xid .. commit_time .. snapshot false
                             overlap .. pos              per transaction: cached
                             <pos> seq <seq> before <before> after <after>   per change
    """

    def __init__(self) -> None:
        """Nothing to encode before :meth:`begin`."""
        self._pack = msgpack.Packer(use_bin_type=True).pack
        self._start = b""  # event header and map header
        self._middle = b""  # lsn .. overlap and the key "pos"
        self._op_table: dict[tuple[str, str], bytes] = {}
        self._prefix: dict[tuple[str, str], bytes] = {}

    def begin(
        self, sec: int, nsec: int, lsn: str, xid: int, commit_time: str, overlap: bool
    ) -> None:
        """A new transaction: its commit time (the event time) and what its changes share."""
        pack = self._pack
        self._start = header(sec, nsec) + _BODY_START
        self._middle = b"".join(
            (
                _KEY["lsn"],
                pack(lsn),
                _KEY["xid"],
                pack(xid),
                _KEY["commit_time"],
                pack(commit_time),
                _KEY["snapshot"],
                _FALSE,
                _KEY["overlap"],
                _TRUE if overlap else _FALSE,
                _KEY["pos"],
            )
        )
        self._op_table.clear()
        self._prefix.clear()

    def prefix(self, op: str, table: str) -> bytes:
        """What each ``op`` change of ``table`` in this transaction starts with.

        The event header and every field up to the key ``pos``: a C encoder of whole
        runs of changes (:meth:`flbsql.cdc.packtuple.TuplePacker.inserts`) adds the rest.
        """
        got = self._prefix.get((op, table))
        if got is None:
            got = self._prefix[op, table] = self._start + self._op(op, table) + self._middle
        return got

    def _op(self, op: str, table: str) -> bytes:
        got = self._op_table.get((op, table))
        if got is None:
            pack = self._pack
            got = self._op_table[op, table] = b"".join(
                (_KEY["op"], pack(op), _KEY["table"], pack(table))
            )
        return got

    def change(
        self,
        op: str,
        table: str,
        pos: int,
        seq: int,
        before: dict[str, Any] | None,
        after: dict[str, Any] | bytes | None,
    ) -> bytes:
        """One event of the current transaction (``after`` may come packed: bytes)."""
        pack = self._pack
        op_table = self._op_table.get((op, table))
        if op_table is None:
            op_table = self._op(op, table)
        return b"".join(
            (
                self._start,
                op_table,
                self._middle,
                pack(pos),
                _KEY["seq"],
                pack(seq),
                _KEY["before"],
                _NIL if before is None else pack(before),
                _KEY["after"],
                _NIL if after is None else after if after.__class__ is bytes else pack(after),
            )
        )
