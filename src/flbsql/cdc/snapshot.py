"""The initial snapshot: each table read in key order, one chunk per statement.

The slot exists before the snapshot reads anything (see :mod:`flbsql.cdc.worker`),
so the snapshot sees a state at least as new as the slot's consistent point. Its
progress (tables done, the last key read, rows so far) is the CDC state handed over
with every chunk; it is saved once Fluent Bit took the chunk, so a restart goes on
after the last key handed over. Snapshot rows carry no ``seq`` (a snapshot resumed
after a restart reads rows again, possibly other ones: numbers would not be
stable); an apply output orders them by the LSN they were read at
(:mod:`flbsql.output.order`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol

import msgpack

from flbsql.cdc import OP_READ, format_lsn
from flbsql.cdc.record import record
from flbsql.events.codec import header
from flbsql.input.handoff import Marker

if TYPE_CHECKING:
    import logging
    import threading
    from collections.abc import Callable

    from flbsql.cdc import CdcState
    from flbsql.cdc.postgresql import PgCdc, TableInfo

__all__ = ["HandOver", "Put", "Snapshot"]


class Put(Protocol):
    """The source's side of the hand-off: queue one chunk, False when ``stop`` was set."""

    def __call__(
        self, data: bytes, rows: int, marker: Marker | None, stop: threading.Event
    ) -> bool:
        """``marker``: the position to confirm once Fluent Bit took ``data``."""


class HandOver(Protocol):
    """Queues encoded events and the position after them (raises when stopping)."""

    def __call__(self, data: bytes, rows: int, marker: Marker | None = None) -> None:
        """``marker``: what may be confirmed once Fluent Bit took them (None: nothing)."""


class Snapshot:
    """Reads the captured tables chunk by chunk and hands the rows over."""

    def __init__(
        self,
        pg: PgCdc,
        tables: tuple[str, ...],
        chunk_rows: int,
        hand_over: HandOver,
        counters: dict[str, int],
        log: logging.Logger,
    ) -> None:
        """``tables``: qualified names, read in this order."""
        self.pg = pg
        self.tables = tables
        self.chunk_rows = chunk_rows
        self.hand_over = hand_over
        self.counters = counters
        self.log = log
        self.infos: dict[str, TableInfo] = {}
        self.decoders: dict[str, list[Callable[[str], Any]]] = {}
        self._pack = msgpack.Packer(use_bin_type=True).pack

    def step(self, st: CdcState) -> CdcState:
        """One keyset chunk of the first table not done (or the switch to the stream)."""
        remaining = [t for t in self.tables if t not in st["done"]]
        if not remaining:
            end = self.pg.insert_lsn()
            new = {**st, "phase": "stream", "table": None, "key": None, "snapshot_end_lsn": end}
            self.log.info(
                "snapshot done (%d rows); streaming from the slot, changes before "
                "%s marked overlap",
                st["rows"],
                format_lsn(end),
            )
            self.hand_over(b"", 0, Marker(state=new))
            return new
        q = remaining[0]
        info = self.infos[q]
        key = st["key"] if st["table"] == q else None
        rows, lsn = self.pg.snapshot_chunk(info, key, self.chunk_rows)
        decoders = self.decoders[q]
        ncols = len(info.columns)
        lsn_text = format_lsn(lsn)
        now = time.time()
        head = header(int(now), int((now % 1) * 1e9))
        pack = self._pack
        parts = []
        pos = st["rows"]
        for r in rows:
            after = {
                c: (None if v is None else d(v))
                for c, d, v in zip(info.columns, decoders, r[:ncols], strict=True)
            }
            body = record(OP_READ, q, lsn_text, None, None, True, False, pos, None, None, after)
            parts.append(head + pack(body))
            pos += 1
        done = len(rows) < self.chunk_rows
        new = {
            **st,
            "rows": pos,
            "table": None if done else q,
            "key": None if done else list(rows[-1][ncols:]),
            "done": [*st["done"], q] if done else st["done"],
        }
        self.counters["snapshot_rows"] += len(rows)
        self.hand_over(b"".join(parts), len(rows), Marker(state=new))
        return new
