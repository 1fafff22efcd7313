"""The change stream: peek -> decode -> encode -> hand over, one peek per step.

While a step decodes a full peek (a backlog: more changes are waiting), the next peek
already runs on the server (:class:`ReadAhead`): decoding on the server and in Python
overlap instead of taking turns. The worker uses the connection for nothing else
meanwhile: it settles the read ahead before confirming or probing (:meth:`Stream.settle`)
and drops it before it closes the connection (:meth:`Stream.drop`). A run of inserts
into one table is encoded in C (:meth:`Stream._inserts`); everything else, and any
message C does not take, goes through the decoder and :class:`ChangeEncoder`.

Stream positions: a transaction is skipped when its commit LSN is below
``done_lsn`` (already handed over), so reading again before the slot moved never
duplicates within a run; a transaction split over several chunks keeps its
position at the previous commit and is resumed at ``(commit LSN, pos)``. A chunk
in the middle of a transaction carries no position: a crash delivers the whole
transaction again (at-least-once).
"""

from __future__ import annotations

import itertools
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from flbsql.cdc import OP_INSERT
from flbsql.cdc.packtuple import Messages, accelerated
from flbsql.cdc.record import ChangeEncoder
from flbsql.input.handoff import Marker

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterable

    from flbsql.cdc.pgoutput import PgOutputDecoder
    from flbsql.cdc.postgresql import PgCdc
    from flbsql.cdc.snapshot import HandOver

__all__ = ["NCHANGES", "ReadAhead", "Stream"]

NCHANGES = 100_000  # changes per peek (stops at the next transaction end)
PEEK_BYTES = 32 << 20  # a peek held whole (to read the next one ahead) holds at most this
PG_EPOCH_UNIX = 946_684_800  # 2000-01-01, PostgreSQL's epoch, in Unix seconds
HEARTBEAT_PREFIX = "flbsql_heartbeat"

# pgoutput message tags
BEGIN, COMMIT, RELATION, MESSAGE, INSERT = b"B"[0], b"C"[0], b"R"[0], b"M"[0], b"I"[0]
CHANGES = frozenset(b"IUDT")  # insert, update, delete, truncate


Peek = tuple[float, int, list[bytes]]  # time.time() asked, the WAL end read up to, messages


class ReadAhead:
    """The next peek, consumed from the reader slot on a thread of its own meanwhile.

    Only after a full peek (the slot holds more): the changes it consumes follow the
    ones being decoded. It is used only when the reader slot is still the one it read
    from; a reconnect copies a new reader slot from the durable one, which starts
    again at the confirmed position, so a dropped read ahead loses nothing. It holds
    one peek whole, so at most PEEK_BYTES (:meth:`Stream._peek`).
    """

    def __init__(self, pg: PgCdc) -> None:
        """Nothing runs before :meth:`start`."""
        self.pg = pg
        self._exec = ThreadPoolExecutor(1, thread_name_prefix="flbsql-cdc-readahead")
        self._ahead: tuple[str | None, Future[Peek | None]] | None = None

    def start(self, read: Callable[[], Peek | None]) -> None:
        """Run ``read`` now, in the background."""
        self.drop()
        self._ahead = (self.pg.reader, self._exec.submit(read))

    def take(self) -> Peek | None:
        """The peek read ahead (its error raised here), or None when there is none."""
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return None
        reader, future = ahead
        if reader != self.pg.reader:  # read from a reader slot since replaced
            future.exception()
            return None
        return future.result()

    def settle(self) -> None:
        """Wait until the read ahead is done (the connection is free again)."""
        if self._ahead is not None:
            self._ahead[1].exception()

    def drop(self) -> None:
        """Forget the read ahead, once it is done."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead[1].exception()

    def close(self) -> None:
        """Drop it and stop the thread."""
        self.drop()
        self._exec.shutdown(wait=True)


class Stream:
    """Reads the slot up to the current WAL end and hands changes over in chunks."""

    def __init__(
        self,
        pg: PgCdc,
        decoder: PgOutputDecoder,
        publication: str,
        fetch_size: int,
        chunk_rows: int,
        chunk_bytes: int,
        hand_over: HandOver,
        counters: dict[str, int],
        log: logging.Logger,
    ) -> None:
        """Nothing is read before :meth:`step`."""
        self.pg = pg
        self.decoder = decoder
        self.publication = publication
        self.fetch_size = fetch_size
        self.chunk_rows = chunk_rows
        self.chunk_bytes = chunk_bytes
        self.hand_over = hand_over
        self.counters = counters
        self.log = log
        self.done_lsn = 0  # every transaction that commits below it was handed over
        self.partial: tuple[int, int] | None = None  # (commit LSN, pos) of a split one
        self.lag: float | None = None  # seconds, from the last heartbeat seen
        self.lead = 0.05  # how long before a collect to poll when idle: about two peeks
        # time.time() when the WAL end was asked of a peek that then read up to it:
        # every change committed before it was handed over (cursor_age_seconds)
        self.as_of: float | None = None
        self.encoder = ChangeEncoder()
        # table -> its changes so far (flbsql.cdc.sequence); set by the worker before a step
        self.seqs: dict[str, int] | None = None
        self.ahead = ReadAhead(pg)
        self._streamed = False  # the next peek is streamed: the last did not fit PEEK_BYTES
        # the peek being decoded was full (more changes are waiting), or none was read yet
        self.behind = True

    def _peek(self) -> Peek | None:
        """One peek up to the WAL end now, held whole; None past PEEK_BYTES.

        The peek: when it was asked, the WAL end, the messages. A peek given up half read
        has consumed changes from the reader slot: the reader is copied again from the
        durable slot, which starts at the confirmed position (what was handed over since
        is skipped by ``done_lsn``), and the next peek is streamed as it is read: memory
        stays bounded however large a transaction is.
        """
        asked, upto = time.time(), self.pg.current_lsn()
        msgs: list[bytes] = []
        size = 0
        changes = self.pg.read_changes(self.publication, upto, NCHANGES, self.fetch_size)
        try:
            for data in changes:
                msgs.append(data)
                size += len(data) + 64  # and the bytes object around it
                if size > PEEK_BYTES:
                    break
            else:
                return asked, upto, msgs
        finally:
            changes.close()
        self._streamed = True
        self.pg.reopen_reader()
        return None

    def settle(self) -> None:
        """The connection is free for the worker (a read ahead is done)."""
        self.ahead.settle()

    def drop(self) -> None:
        """Forget a read ahead (before the connection closes)."""
        self.ahead.drop()

    def step(self, snapshot_end: int) -> bool:  # noqa: PLR0912, PLR0915 - the hot loop, flat
        """One peek up to the current WAL end; True when changes were handed over.

        ``snapshot_end``: changes committed at or before it are marked ``overlap``.
        """
        dec, enc = self.decoder, self.encoder
        seqs = self.seqs
        if seqs is None:
            seqs = self.seqs = {}
        t0 = time.monotonic()
        msgs: Iterable[bytes]
        got = self.ahead.take()
        if got is None and not self._streamed:
            got = self._peek()
        if got is None:  # too large to hold whole: streamed as it is read, nothing ahead
            self._streamed = False
            self.behind = True  # a transaction larger than a peek can hold
            asked, upto = time.time(), self.pg.current_lsn()
            msgs = self.pg.read_changes(self.publication, upto, NCHANGES, self.fetch_size)
        else:
            asked, upto, msgs = got
            self.behind = len(msgs) >= NCHANGES
            if self.behind:  # more is waiting: the next peek runs while this decodes
                self.ahead.start(self._peek)
        parts: list[bytes] = []
        rows = size = total = n = 0
        skip_txn = False
        skip_pos = 0
        self.counters["peeks"] += 1
        fast = Messages(msgs) if accelerated() and isinstance(msgs, list) else None
        it = iter(msgs)
        for data in it:
            n += 1
            tag = data[0]
            if tag in CHANGES:
                if skip_txn:
                    continue
                k = 0
                if fast is not None and tag == INSERT and dec.pos >= skip_pos:
                    k, events = self._inserts(fast, n - 1, data, seqs, rows, size)
                if k:  # a run of inserts, in C
                    parts.append(events)
                    rows += k
                    size += len(events)
                    if k > 1:  # the run's other messages: consumed
                        next(itertools.islice(it, k - 1, k - 1), None)
                        n += k - 1
                else:
                    for op, rel, pos, before, after in dec.changes(data):
                        if pos < skip_pos:
                            continue
                        table = rel.qualname
                        seq = seqs[table] = seqs.get(table, 0) + 1
                        event = enc.change(op, table, pos, seq, before, after)
                        parts.append(event)
                        rows += 1
                        size += len(event)
                if rows >= self.chunk_rows or size >= self.chunk_bytes:  # mid-transaction
                    self.hand_over(b"".join(parts), rows)
                    total += rows
                    parts, rows, size = [], 0, 0
                    self.partial = (dec.final_lsn, dec.pos)
            elif tag == BEGIN:
                final = dec.begin(data)
                skip_txn = final < self.done_lsn
                skip_pos = self.partial[1] if self.partial and self.partial[0] == final else 0
                dec.overlap = final <= snapshot_end
                sec, micros = divmod(dec.commit_micros, 1_000_000)
                enc.begin(
                    sec + PG_EPOCH_UNIX,
                    micros * 1000,
                    dec.lsn_text,
                    dec.xid,
                    dec.commit_time,
                    dec.overlap,
                )
            elif tag == COMMIT:
                end = dec.commit(data)
                if skip_txn:
                    continue
                self.done_lsn = end
                self.partial = None
                if rows >= self.chunk_rows or size >= self.chunk_bytes:
                    self.hand_over(b"".join(parts), rows, Marker(lsn=end, seqs=dict(seqs)))
                    total += rows
                    parts, rows, size = [], 0, 0
            elif tag == RELATION:
                dec.relation(data)
            elif tag == MESSAGE:
                self._message(data)
        if n < NCHANGES:  # everything up to `upto` was read
            self.done_lsn = max(self.done_lsn, upto)
            self.behind = False
        total += rows
        self.counters["changes"] += total
        if total == 0:  # an idle peek: the time the next one will take, about
            self.lead = min(0.2, 0.02 + 2 * (time.monotonic() - t0))
        self.hand_over(b"".join(parts), rows, Marker(lsn=self.done_lsn, seqs=dict(seqs)))
        if n < NCHANGES:
            self.as_of = asked
        return total > 0 or n >= NCHANGES

    def _inserts(
        self, fast: Messages, first: int, data: bytes, seqs: dict[str, int], rows: int, size: int
    ) -> tuple[int, bytes]:
        """Inserts from message ``first`` on, into one relation, encoded in C.

        (messages taken, their events), the decoder's ``pos`` and the table's change
        number advanced past them; (0, b"") when ``data`` is not for C (another
        relation kind, a filtered table, a value C does not take): decode it in Python.
        ``rows``/``size``: the chunk so far; the run ends where the chunk must.
        """
        dec = self.decoder
        rel = dec.relations.get(int.from_bytes(data[1:5], "big"))
        if rel is None or rel.packer is None:
            return 0, b""
        table = rel.qualname
        if dec.tables is not None and table not in dec.tables:
            return 0, b""
        seq = seqs.get(table, 0)
        prefix = self.encoder.prefix(OP_INSERT, table)
        k, events = rel.packer.inserts(
            fast,
            first,
            rel.oid,
            prefix,
            dec.pos,
            seq,
            self.chunk_rows - rows,
            self.chunk_bytes - size,
        )
        if k:
            dec.pos += k
            seqs[table] = seq + k
        return k, events

    def _message(self, data: bytes) -> None:
        """A logical message: our heartbeat measures the lag."""
        _, lsn, prefix, content = self.decoder.message(data)
        if prefix == HEARTBEAT_PREFIX and lsn > self.done_lsn:
            try:
                self.lag = max(0.0, time.time() - float(content))
            except ValueError:
                return
            self.counters["heartbeats"] += 1
            self.log.debug("heartbeat: lag %.3fs", self.lag)
