"""Output: decode a chunk, map records to rows, write them in one transaction.

One flush is one transaction on this worker's connection: the rows go through
the dialect's bulk path in batches, each under a savepoint; a batch that fails
on data is narrowed down to its bad rows (:func:`flbsql.output.batching.isolate`), and
those go to the dead letters in the same transaction. ``FLB_OK`` is returned
only after the commit. A transient or connection error rolls back and returns
``FLB_RETRY`` (the pool drops a broken connection); nothing is retried forever
because a record that fails on its own data is never part of a retried chunk.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from flbsql.conn.pool import Pool
from flbsql.dialects.base import Dialect
from flbsql.errors import (
    BulkRefusedError,
    ConfigError,
    DisconnectError,
    FlbSqlError,
    RecordError,
    TerminalError,
)
from flbsql.events.chunk import BadEntry
from flbsql.events.decode import iter_events
from flbsql.metrics import Metrics
from flbsql.outcome import Outcome
from flbsql.output.batching import Savepoints, chunked, isolate, rows_per_batch
from flbsql.output.deadletter import DeadLetters, Rejected
from flbsql.output.mapping import Mapper
from flbsql.output.routing import TableName, TableRouter
from flbsql.output.tables import ensure_table
from flbsql.settings import OutputConfig

__all__ = ["Writer"]


class Writer:
    """Writes flush chunks into one table; safe for ``workers N`` (one connection each)."""

    def __init__(self, cfg: OutputConfig, pool: Pool, log: logging.Logger) -> None:
        """Validate the table options; nothing touches the database here."""
        if not cfg.table:
            raise ConfigError("table", "required")
        self.cfg = cfg
        self.pool = pool
        self.log = log
        self.dialect: Dialect = pool.dialect
        self.router = TableRouter(
            cfg.table, self.dialect, cfg.table_prefix, cfg.table_schema, cfg.table_map
        )
        self.children: dict[TableName, Writer] = {}  # table per record: one writer per table
        name = (None, "") if self.router.dynamic else self.router.resolve("", {})
        self.schema, self.table = name
        self.table_sql = "" if self.router.dynamic else self.router.table_sql(name)
        self.mapper = Mapper(cfg, self.dialect)
        self.columns = self.mapper.columns
        self.key: tuple[str, ...] = tuple(cfg.unique_key)
        unknown = [k for k in self.key if k not in self.columns]
        if unknown:
            raise ConfigError(
                "unique_key", f"{unknown} are not written columns (written: {self.columns})"
            )
        self.update = cfg.on_conflict == "update"
        self.per_batch = rows_per_batch(self.dialect.caps, len(self.columns), cfg.batch_rows)
        self.dead = DeadLetters(
            cfg.dead_letter_table, self.dialect, self.mapper.zone, log, str(cfg.table)
        )
        self._types: list[str] | None = None  # introspected column types, once ready
        self._streaming = (
            self.dialect.caps.streaming
            and not self.key
            and not self.per_batch
            and cfg.bulk != "insert"
        )
        self._ready_lock = threading.Lock()
        self.metrics: Metrics | None = None  # set by the plugin

    # -- flush ---------------------------------------------------------------------------

    def write(self, data: bytes | memoryview, tag: str) -> Outcome:
        """One chunk, one transaction.

        A pooled connection that died while it waited (the server restarted since the
        last flush) is replaced and the chunk written again at once: the same replay
        Fluent Bit's retry would make (at-least-once; ``unique_key`` makes it
        idempotent), without waiting seconds for it.
        """
        once = self._write_once
        try:
            return once(data, tag)
        except DisconnectError as exc:
            if not exc.stale:
                raise
            self.log.debug("the connection had died while it waited (%s); writing again", exc)
        return once(data, tag)

    def _write_once(self, data: bytes | memoryview, tag: str) -> Outcome:
        bad_entries: list[BadEntry] = []
        with self.pool.connection() as conn:
            self._ensure(conn)  # the mapper's converters follow the table's column types
            where: list[int] = []  # event position of each row
            unmapped: list[tuple[int, Exception]] = []
            # events are not kept (memory, allocator time): rejects decode the chunk again
            stream = self.mapper.iter_rows(
                tag, iter_events(data, bad_entries), None, where, unmapped
            )
            rows: list[tuple[Any, ...]] = []
            source: Iterable[Any]
            encoded = (  # the C encoders feed only the fastest bulk path
                self.dialect.encode_chunk(data, tag, self._types, self.mapper.utc)
                if self._streaming
                and self.mapper.default_shape
                and self.dialect.bulk_path(conn)[1] is None
                else None
            )
            if encoded is not None:  # the whole chunk at once: one row per record, in order
                source, count = encoded
                where = list(range(count))
            elif self._streaming:  # decode and map while the server works on earlier rows
                source = stream  # not kept: isolation maps the events again
            else:
                rows = list(stream)
                if self.key:
                    rows, where = self._dedupe(rows, where)
                source = rows
            cur = conn.cursor()
            try:
                self.dialect.begin(conn, cur)
                sp = Savepoints(cur, self.dialect)
                refused = self._write_rows(
                    cur, sp, source, rows, lambda: self._remap(tag, data, where)
                )
                rejected = self._rejected(tag, data, where, unmapped, refused, bad_entries)
                total = len(where) + len(unmapped) + len(bad_entries)
                self.dead.write(cur, sp, tag, rejected, total)
                conn.commit()
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    conn.rollback()
                self._forget_on(exc)
                raise
            finally:
                with contextlib.suppress(Exception):
                    cur.close()
        if self.metrics is not None:
            self.metrics.inc("rows_in", len(where) + len(unmapped) + len(bad_entries))
            self.metrics.inc("rows_out", len(where) - len(refused))
            self.metrics.inc("dead_lettered", len(rejected))
        return Outcome.OK

    def _rejected(
        self,
        tag: str,
        data: bytes | memoryview,
        where: list[int],
        unmapped: list[tuple[int, Exception]],
        refused: list[tuple[int, Exception]],
        bad_entries: list[BadEntry],
    ) -> list[Rejected]:
        out = [
            Rejected(b.index, None, 0, b.raw, f"not a Fluent Bit event: {b.reason}")
            for b in bad_entries
        ]
        if not unmapped and not refused:
            return out
        seen = list(iter_events(data, []))
        key = self.mapper.key_text
        for pos, err in unmapped:
            sec, nsec, body, index = seen[pos]
            out.append(Rejected(index, sec, nsec, body, str(err), key(tag, body, self.key)))
        for row_pos, err in refused:
            sec, nsec, body, index = seen[where[row_pos]]
            out.append(Rejected(index, sec, nsec, body, str(err), key(tag, body, self.key)))
        out.sort(key=lambda r: r.index)
        return out

    def _remap(self, tag: str, data: bytes | memoryview, where: list[int]) -> list[tuple[Any, ...]]:
        """The rows of a stream again (decoding and mapping are deterministic)."""
        again: list[int] = []
        rows = list(self.mapper.iter_rows(tag, iter_events(data, []), None, again, []))
        assert again == where
        return rows

    def _write_rows(
        self,
        cur: Any,
        sp: Savepoints,
        source: Iterable[Any],
        rows: list[tuple[Any, ...]],
        remap: Any,
    ) -> list[tuple[int, Exception]]:
        """Bulk-write; (position in ``rows``, error) of each row the database refused.

        ``source`` is ``rows`` itself, or a stream (then ``remap()`` gives its rows).
        """
        d = self.dialect
        write = self._bulk(cur)
        partial = d.caps.batch_errors and self.cfg.bulk != "insert"
        if source is not rows:
            err = sp.attempt(write, source)  # type: ignore[arg-type]
            for _ in source:  # a failed stream stops early: decode and map the rest
                pass
            return [] if err is None else self._find_bad(cur, sp, write, remap(), err)
        bad: list[tuple[int, Exception]] = []
        offset = 0
        for part in chunked(rows, self.per_batch):
            if partial:  # the dialect keeps the good rows and returns the bad ones
                failed = d.bulk_insert_partial(
                    cur, self.table_sql, self.columns, part, self._types, self.key, self.update
                )
                bad.extend((offset + i, e) for i, e in failed)
            else:
                err = sp.attempt(write, part)
                if err is not None:
                    found = self._find_bad(cur, sp, write, part, err)
                    bad.extend((offset + i, e) for i, e in found)
            offset += len(part)
        return bad

    def _find_bad(
        self, cur: Any, sp: Savepoints, write: Any, rows: Sequence[Any], err: Exception
    ) -> list[tuple[int, Exception]]:
        """Write the good ``rows`` of a failed batch; (position, error) of the bad ones."""
        locate = self.dialect.failed_row if self.dialect.caps.locates_failed_row else None
        if isinstance(err, BulkRefusedError):  # statements name the bad rows
            self.log.warning("%s; writing these %d rows with statements", err, len(rows))
            return isolate(sp, self._statements(cur), rows, locate)
        if not isinstance(err, RecordError):
            raise err  # not about one record: missing table, permissions, ...
        return isolate(sp, write, rows, locate, first_error=err)

    def _bulk(self, cur: Any) -> Any:
        d, table_sql, columns, types = self.dialect, self.table_sql, self.columns, self._types
        if self.key:
            return lambda part: d.upsert(
                cur, table_sql, columns, part, self.key, self.update, types
            )
        if self.cfg.bulk == "insert":  # plain bound executemany, e.g. no COPY privilege
            return lambda part: d.insert_rows(cur, table_sql, columns, part)
        return lambda part: d.bulk_insert(cur, table_sql, columns, part, types)

    def _statements(self, cur: Any) -> Any:
        d, table_sql, columns, key = self.dialect, self.table_sql, self.columns, self.key
        return lambda part: d.statement_write(cur, table_sql, columns, part, key, self.update)

    def _dedupe(
        self, rows: list[tuple[Any, ...]], where: list[int]
    ) -> tuple[list[tuple[Any, ...]], list[int]]:
        """One row per key in a flush (the last one for update, the first for ignore)."""
        idx = [self.columns.index(k) for k in self.key]
        seen: dict[tuple[Any, ...], int] = {}
        order = range(len(rows) - 1, -1, -1) if self.update else range(len(rows))
        for i in order:
            seen.setdefault(tuple(rows[i][j] for j in idx), i)
        if len(seen) == len(rows):
            return rows, where
        keep = sorted(seen.values())
        return [rows[i] for i in keep], [where[i] for i in keep]

    def _forget_on(self, exc: BaseException) -> None:
        """A terminal error that is not about a record may mean the table changed."""
        err = exc if isinstance(exc, FlbSqlError) else self.dialect.classify(exc)
        if isinstance(err, TerminalError) and not isinstance(err, RecordError):
            self._types = None

    # -- table ---------------------------------------------------------------------------

    def _ensure(self, conn: Any) -> None:
        """Introspect (and create or extend) the table once; binds the mapper to its types."""
        if self._types is not None:
            return
        with self._ready_lock:
            if self._types is not None:
                return
            types = ensure_table(
                conn,
                self.dialect,
                self.schema,
                self.table,
                self.table_sql,
                self.mapper.coldefs(self.key),
                self.key,
                self.cfg,
                self.log,
            )
            self._ensure_dead(conn)
            self.mapper.bind(types)
            self._types = [types[c] for c in self.columns]
            path, slower = self.dialect.bulk_path(conn)
            if self.cfg.bulk == "insert":
                path, slower = "executemany (bulk insert)", None
            self.log.info(
                "table %s ready: columns %s; bulk path: %s",
                self.cfg.table,
                ", ".join(f"{c} {t}" for c, t in zip(self.columns, self._types, strict=True)),
                path,
            )
            if slower:
                self.log.warning("table %s: %s", self.cfg.table, slower)

    def _ensure_dead(self, conn: Any) -> None:
        self.dead.ensure(conn, self.cfg)
