"""The CDC background thread: setup, the snapshot, then the stream; positions confirmed.

Hand-off without a gap (``docs/cdc.md``): the slot is created *before* the snapshot
reads anything, so every change committed after the slot's consistent point is in
the stream, and the snapshot (read later, in key order, one chunk per statement)
sees a state at least that new. Changes that commit before the snapshot ended may
therefore show up twice: once in a snapshot row (``op r``) and once as a change;
those changes are marked ``overlap: true``. Replaying records in order (upsert for
r/c/u, delete for d) converges on the source table.

The worker does all database I/O (:mod:`.snapshot`, :mod:`.stream`) and hands chunks
to the source's bounded queue. Positions come back through :meth:`Worker.took` once
Fluent Bit took a chunk; :data:`CONFIRM_DELAY` later the slot moves.
"""

from __future__ import annotations

import collections
import re
import threading
import time
from typing import TYPE_CHECKING

from flbsql.cdc import SlotLostError, format_lsn
from flbsql.cdc.connection import DIALECT, classify
from flbsql.cdc.health import report_health
from flbsql.cdc.pgoutput import PgOutputDecoder
from flbsql.cdc.postgresql import PgCdc, TableInfo, split_table
from flbsql.cdc.sequence import SeqLog
from flbsql.cdc.snapshot import Put, Snapshot
from flbsql.cdc.stream import Stream
from flbsql.cdc.types import TypeInfo, build_decoder
from flbsql.conn.backoff import Backoff
from flbsql.conn.connect import SecretResolver, resolve_connection
from flbsql.errors import ConfigError, TerminalError, TransientError
from flbsql.failures import FailureLog
from flbsql.input.store import PositionStore

if TYPE_CHECKING:
    import logging

    from flbsql.cdc import CdcState
    from flbsql.input.handoff import CollectClock, Marker
    from flbsql.metrics import Metrics
    from flbsql.settings import InputConfig

__all__ = ["CONFIRM_DELAY", "HEALTH_INTERVAL", "Worker", "open_pg", "validate"]

CONFIRM_DELAY = 0.5  # seconds between Fluent Bit taking a batch and the slot moving
HEALTH_INTERVAL = 30.0
_SLOT_NAME = re.compile(r"^[a-z0-9_]{1,63}$")


def validate(cfg: InputConfig) -> dict[str, tuple[str, str]]:
    """What Init (and the checker) checks without the database; tables: name -> parts."""
    if not cfg.tables:
        raise ConfigError("tables", "mode cdc needs at least one table (schema.table)")
    if not _SLOT_NAME.match(cfg.slot):
        raise ConfigError("slot", "lower-case letters, digits and _ only, at most 63")
    if not cfg.publication or len(cfg.publication.encode()) > 63:
        raise ConfigError("publication", "1 to 63 bytes")
    return {".".join(parts): parts for parts in map(split_table, cfg.tables)}


class Worker(threading.Thread):
    """Owns the database connections; everything it hands over goes through ``put``."""

    def __init__(
        self, cfg: InputConfig, log: logging.Logger, put: Put, clock: CollectClock
    ) -> None:
        """Validate the options, open the position file; ``clock`` times the idle polls."""
        super().__init__(name="flbsql-cdc", daemon=True)
        self.cfg, self.log, self._put, self.clock = cfg, log, put, clock
        # "schema.table" as records name it -> (schema, table) as the catalog has it
        self.names = validate(cfg)
        self.tables = tuple(self.names)
        self.pg = open_pg(cfg, log)
        self.store = PositionStore(cfg.db or "in_sql.db", cfg.db_sync)
        self.position_name = cfg.position_name or f"cdc:{cfg.slot}"
        self.state: CdcState | None = self.store.load_state(self.position_name)
        self.seqlog = SeqLog(self.store, self.position_name)
        self.fatal: BaseException | None = None
        self.metrics: Metrics | None = None  # set by the plugin (through the source)
        self._began = time.time()
        self.ready = False
        self.confirmed = 0
        self.poll = cfg.poll_interval if cfg.is_set("poll_interval") else 0.2
        self.counters = {"changes": 0, "snapshot_rows": 0, "peeks": 0, "heartbeats": 0}
        self._taken: collections.deque[tuple[float, Marker]] = collections.deque()
        self._types: dict[int, TypeInfo] = {}
        self._halt = threading.Event()
        self._wake = threading.Event()
        self._next_health = self._next_beat = 0.0
        chunk_rows = min(cfg.fetch_size, cfg.rows_per_collect or cfg.fetch_size)
        self.snapshot = Snapshot(
            self.pg, self.tables, chunk_rows, self.hand_over, self.counters, log
        )
        decoder = PgOutputDecoder(
            self._resolve_types,
            decimal=cfg.decimal,
            toast_marker=cfg.toast_marker,
            tables=frozenset(self.tables),
        )
        self.stream = Stream(
            self.pg,
            decoder,
            cfg.publication,
            cfg.fetch_size,
            chunk_rows,
            max(cfg.bytes_per_collect // 4, 1 << 16),
            self.hand_over,
            self.counters,
            log,
        )

    def behind(self) -> bool:
        """The stream is catching up with a backlog (a collect may wait for a whole batch)."""
        return self.stream.behind

    @property
    def lag(self) -> float | None:
        """Seconds from the last heartbeat's emission to its reading (None before one)."""
        return self.stream.lag

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
        self.stream.ahead.close()
        self.pg.close()
        self.pg.release()
        self.store.close()

    def took(self, marker: Marker) -> None:
        """Fluent Bit took the chunk with this position (any thread): confirm it later."""
        self._taken.append((time.monotonic(), marker))

    def wake(self) -> None:
        """Something was taken: confirm soon."""
        self._wake.set()

    def hand_over(self, data: bytes, rows: int, marker: Marker | None = None) -> None:
        """Queue a chunk (waits for room); raises when stopping."""
        if not self._put(data, rows, marker, self._halt):
            raise TransientError("stopping")

    def run(self) -> None:
        """Loop until stopped or a terminal error (kept in ``fatal``, logged loudly)."""
        cfg, address = self.cfg, DIALECT.address(self.pg.params)
        backoff = Backoff(cfg.pool_backoff_initial, cfg.pool_backoff_max, address)
        failures = FailureLog(self.log, "CDC")
        while not self._halt.is_set():
            try:
                self.stream.settle()  # the connection is the worker's again
                if self.ready and self.pg.credentials_changed():
                    self.log.info("credentials changed; reconnecting")
                    self.pg.counters["rotations"] += 1
                    self.stream.drop()
                    self.pg.close()
                    self.ready = False
                if not self.ready:
                    self.setup()
                self.confirm()
                self.periodic()
                if self.state is not None and self.state["phase"] == "snapshot":
                    self.state = self.snapshot.step(self.state)
                elif not self.stream.step((self.state and self.state.get("snapshot_end_lsn")) or 0):
                    self._report_lag()
                    self._wake.wait(self.clock.idle_wait(self.poll, self.stream.lead))
                    self._wake.clear()
                self._report_lag()
                backoff.success()
                failures.succeeded()
            except BaseException as exc:  # noqa: PERF203 - once per failure
                self.stream.behind = False  # nothing comes meanwhile: collects do not wait
                err = classify(exc)
                if isinstance(err, TransientError):
                    delay = backoff.failure()
                    failures.failed(err, f"reconnecting in {delay:.1f}s")
                    self.stream.drop()
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
                        self.position_name,
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
        infos = {t: pg.table_info(*self.names[t]) for t in self.tables}
        pg.ensure_publication(cfg.publication, list(infos.values()))
        health = pg.slot_health(cfg.slot)
        if health is None:
            if self.state is not None:
                raise SlotLostError(
                    f"slot '{cfg.slot}' does not exist, but position '{self.position_name}' "
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
        if self.state is None:
            self.state = {
                "phase": "snapshot" if cfg.snapshot == "initial" else "stream",
                "slot": cfg.slot,
                "done": [],
                "table": None,
                "key": None,
                "rows": 0,
                "snapshot_end_lsn": None,
                "slot_created_lsn": self.confirmed,
            }
            self.store.save_state(self.position_name, self.state)
        pg.open_reader(cfg.slot)
        if self.stream.seqs is None:  # the first setup: count on from the slot's position
            self.stream.seqs = self.seqlog.at(self.confirmed, self.log)
        self._snapshot_decoders(infos)
        self.ready = True

    def _snapshot_decoders(self, infos: dict[str, TableInfo]) -> None:
        self.snapshot.infos = infos
        for q, info in infos.items():
            catalog = self._resolve_types(list(info.type_oids))
            self.snapshot.decoders[q] = [
                build_decoder(t, catalog, self.cfg.decimal) for t in info.type_oids
            ]

    def _resolve_types(self, oids: list[int]) -> dict[int, TypeInfo]:
        missing = [o for o in oids if o not in self._types]
        if missing:
            self._types.update(self.pg.type_catalog(missing))
        return self._types

    # -- positions and health -------------------------------------------------------------

    def _report_lag(self) -> None:
        """The gauges of the stream: how old the newest change read is, the heartbeat lag."""
        m = self.metrics
        if m is None:
            return
        m.set_cursor_time(self.stream.as_of or self._began)
        if self.lag is not None:
            m.set("cdc_lag_seconds", self.lag)

    def confirm(self) -> None:
        """Apply positions Fluent Bit took at least CONFIRM_DELAY ago."""
        limit = time.monotonic() - CONFIRM_DELAY
        lsn, state, seqs = 0, None, None
        while self._taken and self._taken[0][0] <= limit:
            m = self._taken.popleft()[1]
            if m.lsn is not None and m.lsn >= lsn:
                lsn, seqs = m.lsn, m.seqs or seqs
            if m.state is not None:
                state = m.state
        if state is not None:
            self.store.save_state(self.position_name, state)
        if lsn > self.confirmed:
            self.seqlog.save(lsn, seqs)  # before the slot moves: a restart counts on from it
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
        """Log slot retention, warn before trouble, set the gauges; a lost slot is fatal."""
        h = self.pg.slot_health(self.cfg.slot)
        if h is None:
            raise SlotLostError(f"slot '{self.cfg.slot}' disappeared")
        if h.wal_status == "lost":
            raise SlotLostError(f"slot '{self.cfg.slot}' has wal_status 'lost'")
        report_health(self.cfg, h, self.lag, self.counters, self.metrics, self.log)


def open_pg(cfg: InputConfig, log: logging.Logger) -> PgCdc:
    """The two CDC connections, resolved the way the pool resolves its connection.

    ``url`` with ``user``/``password`` (secret references) or ``vault.db_role``;
    ``replication_url``, when set, with the credentials in that URL only.
    """
    resolver = SecretResolver(cfg, log)
    main, creds = resolve_connection(cfg, log, "url", resolver)
    dec, dec_creds = main, creds
    if cfg.replication_url:
        own = cfg.replace(user=None, password=None, vault_db_role=None)
        dec, dec_creds = resolve_connection(own, log, "replication_url", resolver)
    if main.dialect != "postgresql" or dec.dialect != "postgresql":
        raise ConfigError("url", "mode cdc needs a postgresql:// URL")
    return PgCdc(main, dec, log, cfg.statement_timeout, creds, dec_creds)
