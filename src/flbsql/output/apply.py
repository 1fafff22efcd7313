"""Apply mode: change records are applied to their tables, not appended as rows.

One flush is one transaction, as in :mod:`flbsql.output.writer`. Its changes
(:mod:`flbsql.output.changes`) are applied in the order they came, each to the
table ``table`` resolves it to (:mod:`flbsql.output.routing`; default ``$table``,
the change's source table):

- ``r``/``c``: insert-or-update by key; consecutive ones of one table go through the
  dialect's bulk upsert (COPY into a staging table + ``ON CONFLICT`` on PostgreSQL,
  ``ON DUPLICATE KEY UPDATE`` on MySQL, ``MERGE`` on Oracle and SQL Server);
- ``u``: the same upsert of the new row; when the key changed, the old key is
  deleted first. Columns holding the unchanged-TOAST marker are left out: then the
  row is updated by key (``UPDATE ... SET`` the other columns), keeping the value
  the target has;
- ``d``: delete by key, taken from ``before``;
- ``t``: empty the table (``TRUNCATE`` on PostgreSQL, else ``DELETE``).

The key is the target's primary key, or ``unique_key``. A change before the
stored position of its source table is skipped (:mod:`flbsql.output.positions`),
so a replayed chunk changes nothing; a change that came before an older one of its
table waits in the parking table until that one is applied (:mod:`flbsql.output.order`).
A change that cannot be applied (no key in ``before``, a value the column refuses,
a table name that cannot be quoted, a table that is missing and cannot be created)
is dead-lettered with its error, in the same transaction, and the rest of the chunk
is applied.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from flbsql.conn.pool import Pool
from flbsql.dialects import changes as stmt
from flbsql.dialects import sql
from flbsql.errors import ConfigError, DisconnectError, FlbSqlError, RecordError, TerminalError
from flbsql.events.chunk import BadEntry
from flbsql.events.decode import Event, iter_events
from flbsql.metrics import Metrics
from flbsql.outcome import Outcome
from flbsql.output.batching import Savepoints, chunked, isolate, rows_per_batch
from flbsql.output.changes import DEBEZIUM_UNAVAILABLE, parse_change
from flbsql.output.deadletter import DeadLetters, Rejected
from flbsql.output.order import Order, Unpark
from flbsql.output.parked import Group
from flbsql.output.plan import Item, Op, columns_per_table, last_per_key, plan
from flbsql.output.positions import Moved, Positions
from flbsql.output.routing import TableName, TableRouter
from flbsql.output.targets import Target, load_target
from flbsql.settings import OutputConfig
from flbsql.text import show
from flbsql.timestamps import parse_zone

__all__ = ["SMALL_RUN", "Applier"]

#: Upserts of at most this many rows are one bound statement, not the bulk path
#: (PostgreSQL's COPY into a staging table costs four statements).
SMALL_RUN = 16


class _RefusedError(Exception):
    """A statement of the optimistic pass failed on a change's data."""


class Applier:
    """Applies flush chunks of change records; one connection per worker."""

    def __init__(self, cfg: OutputConfig, pool: Pool, log: logging.Logger) -> None:
        """Validate the apply options; nothing touches the database here."""
        for name in ("columns", "tag_column", "time_column", "json_column", "on_conflict"):
            if cfg.is_set(name):  # a change's columns are its own, and it always updates
                raise ConfigError(name, f"not used with apply {cfg.apply}")
        self.cfg, self.pool, self.log = cfg, pool, log
        self.dialect = pool.dialect
        self.kind = cfg.apply
        self.router = TableRouter(
            cfg.table or "$table", self.dialect, cfg.table_prefix, cfg.table_schema, cfg.table_map
        )
        self.merge_fields = self.router.fields() != ["table"]
        self.markers = {cfg.toast_marker, DEBEZIUM_UNAVAILABLE}
        self.zone = parse_zone(cfg.time_zone)
        name = cfg.apply_position_table
        self.order = (
            None
            if not name or name.lower() == "none"
            else Order(cfg, Positions(name, self.dialect), log)
        )
        self.dead = DeadLetters(
            cfg.dead_letter_table, self.dialect, self.zone, log, self.router.template
        )
        self.targets: dict[TableName, Target] = {}
        self._ready = False
        self._lock = threading.Lock()
        # one flush at a time, whatever `workers` says: two at once could each find the
        # other's changes missing (flbsql.output.order), and order is the point here
        self._one_at_a_time = threading.Lock()
        self.metrics: Metrics | None = None  # set by the plugin

    def write(self, data: bytes | memoryview, tag: str) -> Outcome:
        """One chunk, one transaction; then parked changes it made due, beyond one read."""
        with self._one_at_a_time:
            more = self._write(data, tag, set())
            while more:  # each round applies a table's next parked ones, or stops
                more = self._write(b"", tag, more)
        return Outcome.OK

    def _write(self, data: bytes | memoryview, tag: str, drain: set[Group]) -> set[Group]:
        """One transaction (a connection found dead while idle: once more)."""
        try:
            return self._write_once(data, tag, drain)
        except DisconnectError as exc:
            if not exc.stale:
                raise
            self.log.debug("the connection had died while it waited (%s); applying again", exc)
        return self._write_once(data, tag, drain)

    def _write_once(self, data: bytes | memoryview, tag: str, drain: set[Group]) -> set[Group]:
        bad_entries: list[BadEntry] = []
        events = list(iter_events(data, bad_entries))
        records = len(events) + len(bad_entries)
        errors: dict[int, str] = {}
        items = self._parse(events, tag, errors)
        with self.pool.connection() as conn:
            if not self._ready:
                with self._lock:
                    if not self._ready:
                        self._ensure_own_tables(conn)
            keys: Unpark = {}
            full: set[Group] = set()
            if self.order is not None:  # changes parked earlier that may be due now
                keys, full = self.order.unpark(conn, items, events, tag, self._parse, drain)
            self._prepare(conn, items, errors)
            cur = conn.cursor()
            run = (conn, cur, items, tag, errors, events, keys)
            try:
                try:  # optimistic: no savepoints, which halves the statements of small runs
                    todo, sp, moved = self._apply(*run, careful=False)
                except _RefusedError:  # a change failed on its data: again, isolating it
                    conn.rollback()
                    todo, sp, moved = self._apply(*run, careful=True)
                rejected = [
                    Rejected(b.index, None, 0, b.raw, f"not a Fluent Bit event: {b.reason}")
                    for b in bad_entries
                ]
                for at, error in sorted(errors.items()):
                    sec, nsec, body, index = events[at]
                    rejected.append(Rejected(index, sec, nsec, body, error))
                rejected.sort(key=lambda r: r.index)
                self.dead.write(cur, sp, tag, rejected, records)
                conn.commit()
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    conn.rollback()
                err = exc if isinstance(exc, FlbSqlError) else self.dialect.classify(exc)
                if isinstance(err, TerminalError) and not isinstance(err, RecordError):
                    self.targets.clear()  # a table may have changed: introspect again
                raise
            finally:
                with contextlib.suppress(Exception):
                    cur.close()
        if self.metrics is not None:
            self.metrics.inc("rows_in", records)
            self.metrics.inc("rows_out", max(0, len(todo) - len(errors)))
            self.metrics.inc("dead_lettered", len(rejected))
        return {(s, t) for s, t in full if t in moved.get(s, {})}  # moved, and more parked

    def _apply(
        self,
        conn: Any,
        cur: Any,
        items: list[Item],
        tag: str,
        errors: dict[int, str],
        events: list[Event],
        keys: Unpark,
        careful: bool,
    ) -> tuple[list[Item], Savepoints, dict[str, dict[str, Moved]]]:
        """Run the flush's statements in a fresh transaction (``errors`` grows when careful)."""
        self.dialect.begin(conn, cur)
        sp = Savepoints(cur, self.dialect)
        todo, moved = items, dict[str, dict[str, Moved]]()
        if self.order is not None:
            todo, moved = self.order.fresh(cur, items, tag, events, keys)
        found = errors if careful else dict(errors)
        for op in plan(todo, self.targets, self.markers, self.router, found):
            self._run(cur, sp if careful else None, op, found)
        if self.order is not None:
            for source, tables in moved.items():
                self.order.positions.write(cur, source, tables)
        errors.update(found)
        return todo, sp, moved

    # -- reading the chunk ----------------------------------------------------------------

    def _parse(
        self, events: list[Event], tag: str, errors: dict[int, str], start: int = 0
    ) -> list[Item]:
        items = []
        for at, (_, _, body, _) in enumerate(events, start):
            try:
                change = parse_change(body, self.kind)
                if change is None:  # a tombstone, a logical message: nothing to apply
                    continue
                fields = (
                    {**body, "table": change.table}
                    if self.merge_fields
                    else {"table": change.table}
                )
                items.append(Item(at, change, self.router.resolve(tag, fields)))
            except RecordError as exc:
                errors[at] = str(exc)
        return items

    def _prepare(self, conn: Any, items: list[Item], errors: dict[int, str]) -> None:
        """The target tables ready (created, columns added), before the transaction."""
        need = columns_per_table(items, self.markers)
        broken: dict[TableName, str] = {}
        for name, cols in need.items():
            known = self.targets.get(name)
            if known is not None and cols.keys() <= known.types.keys():
                continue  # else look again: a column may have been added since
            try:
                self.targets[name] = load_target(
                    conn, self.dialect, self.router, name, cols, self.cfg, self.log, self.zone
                )
            except Exception as exc:
                with contextlib.suppress(Exception):
                    conn.rollback()
                err = exc if isinstance(exc, FlbSqlError) else self.dialect.classify(exc)
                if not isinstance(err, TerminalError):
                    raise err from exc
                broken[name] = str(err)
        if broken:
            for it in items:
                if it.name in broken:
                    errors[it.at] = broken[it.name]
            items[:] = [it for it in items if it.name not in broken]

    def _ensure_own_tables(self, conn: Any) -> None:
        if self.order is not None:
            self.order.ensure(conn)
        self.dead.ensure(conn, self.cfg)
        self._ready = True

    # -- planning and running -------------------------------------------------------------

    def _run(self, cur: Any, sp: Savepoints | None, op: Op, errors: dict[int, str]) -> None:
        """One op; with ``sp`` each statement under a savepoint and bad rows isolated."""
        d, t = self.dialect, op.target

        def attempt(write: Any, rows: Any) -> Exception | None:
            if sp is not None:
                return sp.attempt(write, rows)
            try:
                write(rows)
            except Exception as exc:
                if isinstance(
                    exc if isinstance(exc, FlbSqlError) else d.classify(exc), RecordError
                ):
                    raise _RefusedError from exc
                raise
            return None

        if op.kind in ("empty", "update"):
            single = (
                (lambda _: cur.execute(stmt.empty_table(d, t.table_sql)))
                if op.kind == "empty"
                else (lambda rows: self._update(cur, op, rows[0]))
            )
            err = attempt(single, op.rows)
            if err is not None:
                if not isinstance(err, RecordError):
                    raise err
                errors[op.items[0]] = str(err)
            return
        rows, items = op.rows, op.items
        locate = None
        if op.kind == "delete":
            sql_text = stmt.delete_by_key(d, t.table_sql, t.key)

            def write(part: Any) -> None:
                cur.executemany(sql_text, part)
        else:
            rows, items = last_per_key(op)
            types = t.bulk_types(op.columns)
            locate = d.failed_row if d.caps.locates_failed_row else None
            plain = sql.upsert(d, t.table_sql, op.columns, t.key, True)

            def write(part: Any) -> None:
                if len(part) <= SMALL_RUN and d.caps.upsert_style != "merge":
                    cur.executemany(plain, part)  # a few rows: one statement, no staging
                else:
                    d.upsert(cur, t.table_sql, op.columns, part, t.key, True, types)

        size = rows_per_batch(d.caps, len(op.columns), self.cfg.batch_rows)
        offset = 0
        for part in chunked(rows, size):
            err = attempt(write, part)
            if err is not None:
                if not isinstance(err, RecordError) or sp is None:
                    raise err
                for i, e in isolate(sp, write, part, locate, first_error=err):
                    errors[items[offset + i]] = str(e)
            offset += len(part)

    def _set(self, cur: Any, sql_text: str, values: tuple[Any, ...], key: Any, t: Target) -> bool:
        """Run the UPDATE for the row at ``key``; True when that row exists."""
        cur.execute(sql_text, values + key)
        if cur.rowcount:
            return True
        cur.execute(stmt.exists_by_key(self.dialect, t.table_sql, t.key), key)
        return bool(cur.fetchall())  # MySQL counts changed rows, not matched ones

    def _update(self, cur: Any, op: Op, values: tuple[Any, ...]) -> None:
        """Update by key, leaving the kept (TOAST) columns out; the row must exist."""
        d, t = self.dialect, op.target
        where, new_key, kept = op.extra
        sql_text = stmt.update_by_key(d, t.table_sql, op.columns, t.key)
        if where != new_key and self._set(cur, sql_text, values, new_key, t):
            # the row is at its new key already (a snapshot read after the change, or a
            # replay): the old key is a stale copy
            cur.execute(stmt.delete_by_key(d, t.table_sql, t.key), where)
            return
        if self._set(cur, sql_text, values, where, t):
            return
        shown = ", ".join(f"{k}={show(v)}" for k, v in zip(t.key, new_key, strict=True))
        raise RecordError(
            f"row {shown} is not in table {self.router.text(t.name)}, and the change keeps the "
            f"target's value of {', '.join(kept)} (unchanged TOAST), which it cannot insert"
        )
