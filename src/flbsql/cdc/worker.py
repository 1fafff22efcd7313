"""The CDC background thread: setup, snapshot by keyset, then peek -> decode -> queue.

Hand-off without a gap (``docs/cdc.md``): the slot is created *before* the snapshot
reads anything, so every change committed after the slot's consistent point is in
the stream, and the snapshot (read later, in key order, one chunk per statement)
sees a state at least that new. Changes that commit before the snapshot ended may
therefore show up twice: once in a snapshot row (``op r``) and once as a change;
those changes are marked ``overlap: true``. Replaying records in order (upsert for
r/c/u, delete for d) converges on the source table.

Stream positions: a transaction is skipped when its commit LSN is below
``done_lsn`` (already queued), so re-peeking before the slot moved never
duplicates within a run; a transaction split over several chunks keeps its
position at the previous commit and is resumed at ``(commit LSN, pos)``.
"""

from __future__ import annotations

import re
import threading
import time
from typing import TYPE_CHECKING, Any

import msgpack

from flbsql.cdc import OP_READ, SlotLostError, format_lsn
from flbsql.cdc.pgoutput import PgOutputDecoder
from flbsql.cdc.postgresql import PgCdc, TableInfo, classify, split_table
from flbsql.cdc.source import CONFIRM_DELAY
from flbsql.cdc.state import CdcState, StateStore
from flbsql.cdc.types import TypeInfo, build_decoder
from flbsql.conn.backoff import Backoff
from flbsql.conn.connect import connect_params
from flbsql.errors import ConfigError, TerminalError, TransientError
from flbsql.events.codec import encode_event, header
from flbsql.input.handoff import Chunk, ChunkQueue, Marker

if TYPE_CHECKING:
    import collections
    import logging

    from flbsql.settings import Config

__all__ = ["Worker"]

_SLOT_NAME = re.compile(r"^[a-z0-9_]{1,63}$")
_PG_EPOCH_UNIX = 946_684_800
NCHANGES = 100_000  # changes per peek (stops at the next transaction end)
HEALTH_INTERVAL = 30.0
_B, _C, _R, _M = 66, 67, 82, 77
_CHANGES = frozenset((73, 85, 68, 84))  # I U D T
_NIL = b"\xc0"


def _resolve(value: str | None) -> str | None:
    """Secret references (env:, file:, vault:) when the secrets package is there."""
    try:
        from flbsql.secrets import resolve
    except ImportError:  # pragma: no cover
        return value
    return resolve(value)


class Worker(threading.Thread):
    """Owns the database connections; everything it hands over goes through the queue."""

    def __init__(
        self,
        cfg: Config,
        log: logging.Logger,
        queue: ChunkQueue,
        taken: collections.deque[tuple[float, Marker]],
    ) -> None:
        """Validate the CDC options and open the position file."""
        super().__init__(name="flbsql-cdc", daemon=True)
        if not cfg.tables:
            raise ConfigError("tables", "mode cdc needs at least one table (schema.table)")
        if not _SLOT_NAME.match(cfg.slot):
            raise ConfigError("slot", "lower-case letters, digits and _ only, at most 63")
        if not cfg.publication or len(cfg.publication.encode()) > 63:
            raise ConfigError("publication", "1 to 63 bytes")
        self.cfg, self.log, self.queue, self.taken = cfg, log, queue, taken
        self.tables = tuple(".".join(split_table(t)) for t in cfg.tables)
        main = connect_params(
            cfg.replace(
                url=_resolve(cfg.url), user=_resolve(cfg.user), password=_resolve(cfg.password)
            )
        )
        dec = main
        if cfg.replication_url:
            dec = connect_params(
                cfg.replace(url=_resolve(cfg.replication_url), user=None, password=None)
            )
        if main.dialect != "postgresql" or dec.dialect != "postgresql":
            raise ConfigError("url", "mode cdc needs a postgresql:// URL")
        self.pg = PgCdc(main, dec, log, cfg.statement_timeout)
        self.store = StateStore(
            cfg.db or "in_sql.db", cfg.position_name or f"cdc:{cfg.slot}", cfg["db.sync"]
        )
        self.state: CdcState | None = self.store.load()
        self.fatal: BaseException | None = None
        self.ready = False
        self.done_lsn = 0
        self.partial: tuple[int, int] | None = None
        self.confirmed = 0
        self.poll = cfg.poll_interval if cfg.is_set("poll_interval") else 0.2
        self.chunk_rows = min(cfg.fetch_size, cfg.rows_per_collect)
        self.chunk_bytes = max(cfg.bytes_per_collect // 4, 1 << 16)
        self.counters = {"changes": 0, "snapshot_rows": 0, "peeks": 0, "heartbeats": 0}
        self.lag: float | None = None
        self._types: dict[int, TypeInfo] = {}
        self._infos: dict[str, TableInfo] = {}
        self._snap_dec: dict[str, list[Any]] = {}
        self._halt = threading.Event()
        self._wake = threading.Event()
        self._next_health = self._next_beat = 0.0
        self._pack = msgpack.Packer(use_bin_type=True).pack
        self.decoder = PgOutputDecoder(
            self._resolve_types,
            decimal=cfg.decimal,
            toast_marker=cfg.toast_marker,
            tables=frozenset(self.tables),
        )

    # -- lifecycle ------------------------------------------------------------------------

    def try_setup(self) -> None:
        """Setup at Init: terminal problems fail Init, an unreachable server is retried."""
        try:
            self.setup()
        except TransientError as exc:
            self.log.warning("CDC setup postponed (%s); retrying in the background", exc)
            self.pg.close()
        except BaseException:
            self.pg.close()
            self.store.close()
            raise

    def stop(self) -> None:
        """Stop the thread and close the connections and the position file."""
        self._halt.set()
        self._wake.set()
        if self.is_alive():
            self.join(10)
        self.pg.close()
        self.store.close()

    def wake(self) -> None:
        """Something was taken: confirm soon."""
        self._wake.set()

    def run(self) -> None:
        """Loop until stopped or a terminal error (kept in ``fatal``, logged loudly)."""
        backoff = Backoff(self.cfg["pool.backoff_initial"], self.cfg["pool.backoff_max"])
        while not self._halt.is_set():
            try:
                if not self.ready:
                    self.setup()
                self.confirm()
                self.periodic()
                if self.state is not None and self.state["phase"] == "snapshot":
                    self.snapshot_step()
                elif not self.stream_step():
                    self._wake.wait(self.poll)
                    self._wake.clear()
                backoff.success()
            except BaseException as exc:  # noqa: PERF203 - once per failure
                err = classify(exc)
                if isinstance(err, TransientError):
                    delay = backoff.failure()
                    self.log.warning("CDC: %s; reconnecting in %.1fs", err, delay)
                    self.pg.close()
                    self.ready = False
                    self._halt.wait(delay)
                    continue
                self.fatal = err if isinstance(err, TerminalError) else exc
                if isinstance(err, SlotLostError):
                    self.log.error(
                        "CDC DATA LOSS: replication slot '%s' is lost (%s). Changes were "
                        "lost; the slot is NOT recreated. Drop it, delete position '%s' from "
                        "%s and restart to take a new snapshot (docs/cdc.md).",
                        self.cfg.slot,
                        err,
                        self.store.name,
                        self.store.path,
                    )
                else:
                    self.log.error("CDC stopped: %s", err, exc_info=exc)
                return

    # -- setup ----------------------------------------------------------------------------

    def setup(self) -> None:
        """Connect, check prerequisites, publication and slot; decide the phase."""
        pg, cfg = self.pg, self.cfg
        pg.open()
        pg.check_server()
        self._infos = {t: pg.table_info(t) for t in self.tables}
        pg.ensure_publication(cfg.publication, list(self._infos.values()))
        health = pg.slot_health(cfg.slot)
        state = self.state
        if health is None:
            if state is not None:
                raise SlotLostError(
                    f"slot '{cfg.slot}' does not exist, but position '{self.store.name}' "
                    "says it was in use (dropped?)"
                )
            lsn = pg.create_slot(cfg.slot)
            self.log.info("replication slot %s created at %s", cfg.slot, format_lsn(lsn))
            self.confirmed = lsn
        else:
            if health.plugin != "pgoutput":
                raise TerminalError(
                    f"slot '{cfg.slot}' uses plugin '{health.plugin}', "
                    "not pgoutput; choose another slot name"
                )
            if health.wal_status == "lost":
                raise SlotLostError(f"slot '{cfg.slot}' has wal_status 'lost'")
            self.confirmed = max(self.confirmed, health.confirmed_lsn)
        if state is None:
            phase = "snapshot" if cfg.snapshot == "initial" else "stream"
            state = {
                "phase": phase,
                "slot": cfg.slot,
                "done": [],
                "table": None,
                "key": None,
                "rows": 0,
                "snapshot_end_lsn": None,
                "slot_created_lsn": self.confirmed,
            }
            self.store.save(state)
            self.state = state
        pg.open_reader(cfg.slot)
        for q, info in self._infos.items():
            catalog = self._resolve_types(list(info.type_oids))
            self._snap_dec[q] = [build_decoder(t, catalog, cfg.decimal) for t in info.type_oids]
        self.ready = True

    def _resolve_types(self, oids: list[int]) -> dict[int, TypeInfo]:
        missing = [o for o in oids if o not in self._types]
        if missing:
            self._types.update(self.pg.type_catalog(missing))
        return self._types

    # -- positions ------------------------------------------------------------------------

    def confirm(self) -> None:
        """Apply markers Fluent Bit took at least CONFIRM_DELAY ago."""
        limit = time.monotonic() - CONFIRM_DELAY
        lsn = 0
        state = None
        while self.taken and self.taken[0][0] <= limit:
            marker = self.taken.popleft()[1]
            if marker.lsn is not None:
                lsn = max(lsn, marker.lsn)
            if marker.state is not None:
                state = marker.state
        if state is not None:
            self.store.save(state)
        if lsn > self.confirmed:
            self.pg.advance(self.cfg.slot, lsn)
            self.confirmed = lsn

    def periodic(self) -> None:
        """Slot health every HEALTH_INTERVAL, heartbeat every heartbeat_interval."""
        now = time.monotonic()
        if now >= self._next_health:
            self._next_health = now + HEALTH_INTERVAL
            self.check_health()
        beat = self.cfg.heartbeat_interval
        if beat and now >= self._next_beat and self.state and self.state["phase"] == "stream":
            self._next_beat = now + beat
            try:
                self.pg.heartbeat(f"{time.time():.6f}")
            except Exception as exc:
                err = classify(exc)
                if not isinstance(err, TerminalError):
                    raise
                self.log.warning("heartbeat disabled: %s", err)
                self._next_beat = float("inf")

    def check_health(self) -> None:
        """Log slot retention; warn before trouble; a lost slot is fatal."""
        h = self.pg.slot_health(self.cfg.slot)
        if h is None:
            raise SlotLostError(f"slot '{self.cfg.slot}' disappeared")
        if h.wal_status == "lost":
            raise SlotLostError(f"slot '{self.cfg.slot}' has wal_status 'lost'")
        warn = self.cfg.slot_warn_bytes
        msg = (
            "slot %s: wal_status=%s retained=%d bytes pending=%d bytes safe_wal_size=%s "
            "lag=%s; changes=%d snapshot_rows=%d"
        )
        args = (
            self.cfg.slot,
            h.wal_status,
            h.retained_bytes,
            h.pending_bytes,
            h.safe_wal_size,
            f"{self.lag:.2f}s" if self.lag is not None else "n/a",
            self.counters["changes"],
            self.counters["snapshot_rows"],
        )
        if (
            h.wal_status in ("unreserved", "extended")
            or h.retained_bytes > warn
            or (h.safe_wal_size is not None and h.safe_wal_size < warn)
        ):
            self.log.warning(msg + " (WAL kept for the slot is growing; see docs/cdc.md)", *args)
        else:
            self.log.info(msg, *args)

    # -- snapshot -------------------------------------------------------------------------

    def snapshot_step(self) -> None:
        """One keyset chunk of the first table not done; then switch to the stream."""
        st = self.state
        assert st is not None
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
            self._put(Chunk(b"", 0, Marker(state=new)))
            self.state = new
            return
        q = remaining[0]
        info = self._infos[q]
        key = st["key"] if st["table"] == q else None
        rows, lsn = self.pg.snapshot_chunk(info, key, self.chunk_rows)
        decoders = self._snap_dec[q]
        ncols = len(info.columns)
        lsn_text = format_lsn(lsn)
        now = time.time()
        sec, nsec = int(now), int((now % 1) * 1e9)
        pack = self._pack
        parts = []
        pos = st["rows"]
        for r in rows:
            after = {
                c: (None if v is None else d(v))
                for c, d, v in zip(info.columns, decoders, r[:ncols], strict=True)
            }
            parts.append(
                encode_event(
                    sec,
                    nsec,
                    pack(
                        {
                            "op": OP_READ,
                            "table": q,
                            "lsn": lsn_text,
                            "xid": None,
                            "commit_time": None,
                            "snapshot": True,
                            "overlap": False,
                            "pos": pos,
                            "before": None,
                            "after": after,
                        }
                    ),
                )
            )
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
        self._put(Chunk(b"".join(parts), len(rows), Marker(state=new)))
        self.state = new

    def _put(self, chunk: Chunk) -> None:
        if not self.queue.put(chunk, self._halt):
            raise TransientError("stopping")

    # -- stream ---------------------------------------------------------------------------

    def stream_step(self) -> bool:  # noqa: PLR0912, PLR0915 - the hot loop, kept flat
        """One peek up to the current WAL end; True when changes were queued."""
        pg, dec, cfg = self.pg, self.decoder, self.cfg
        assert self.state is not None
        snap_end = self.state.get("snapshot_end_lsn") or 0
        upto = pg.current_lsn()
        pack = self._pack
        parts: list[bytes] = []
        rows = size = total = n = 0
        skip_txn = False
        skip_pos = 0
        self.counters["peeks"] += 1
        optab: dict[tuple[str, int], bytes] = {}
        pre = mid = b""
        for data in pg.read_changes(cfg.publication, upto, NCHANGES, cfg.fetch_size):
            n += 1
            tag = data[0]
            if tag in _CHANGES:
                if skip_txn:
                    continue
                for op, rel, pos, before, after in dec.changes(data):
                    if pos < skip_pos:
                        continue
                    opt = optab.get((op, rel.oid))
                    if opt is None:
                        opt = optab[op, rel.oid] = (
                            b"\xa2op" + pack(op) + b"\xa5table" + pack(rel.qualname)
                        )
                    event = b"".join(
                        (
                            pre,
                            opt,
                            mid,
                            pack(pos),
                            b"\xa6before",
                            _NIL if before is None else pack(before),
                            b"\xa5after",
                            _NIL if after is None else pack(after),
                        )
                    )
                    parts.append(event)
                    rows += 1
                    size += len(event)
                if rows >= self.chunk_rows or size >= self.chunk_bytes:  # mid-transaction
                    self._put(Chunk(b"".join(parts), rows, None))
                    total += rows
                    parts, rows, size = [], 0, 0
                    self.partial = (dec.final_lsn, dec.pos)
            elif tag == _B:
                final = dec.begin(data)
                skip_txn = final < self.done_lsn
                skip_pos = self.partial[1] if self.partial and self.partial[0] == final else 0
                dec.overlap = final <= snap_end
                micros = dec.commit_micros
                pre = (
                    header(micros // 1_000_000 + _PG_EPOCH_UNIX, (micros % 1_000_000) * 1000)
                    + b"\x8a"  # the body: a map of 10 entries
                )
                mid = b"".join(
                    (
                        b"\xa3lsn",
                        pack(dec.lsn_text),
                        b"\xa3xid",
                        pack(dec.xid),
                        b"\xabcommit_time",
                        pack(dec.commit_time),
                        b"\xa8snapshot\xc2",
                        b"\xa7overlap",
                        b"\xc3" if dec.overlap else b"\xc2",
                        b"\xa3pos",
                    )
                )
                optab.clear()
            elif tag == _C:
                end = dec.commit(data)
                if skip_txn:
                    continue
                self.done_lsn = end
                self.partial = None
                if rows >= self.chunk_rows or size >= self.chunk_bytes:
                    self._put(Chunk(b"".join(parts), rows, Marker(lsn=end)))
                    total += rows
                    parts, rows, size = [], 0, 0
            elif tag == _R:
                dec.relation(data)
            elif tag == _M:
                self._message(data)
        if n < NCHANGES:  # everything up to `upto` was read
            self.done_lsn = max(self.done_lsn, upto)
        total += rows
        self.counters["changes"] += total
        self._put(Chunk(b"".join(parts), rows, Marker(lsn=self.done_lsn)))
        return total > 0 or n >= NCHANGES

    def _message(self, data: bytes) -> None:
        _, lsn, prefix, content = self.decoder.message(data)
        if prefix == "flbsql_heartbeat" and lsn > self.done_lsn:
            try:
                self.lag = max(0.0, time.time() - float(content))
            except ValueError:
                return
            self.counters["heartbeats"] += 1
            self.log.debug("heartbeat: lag %.3fs", self.lag)
