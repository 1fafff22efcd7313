"""A table per record in append mode: ``table`` with ``$TAG``, ``$TAG[n]`` or ``$field``.

:class:`RoutedWriter` resolves each record's table (:mod:`flbsql.output.routing`) and
writes the records of each table through a :class:`~flbsql.output.writer.Writer` of
its own (its mapping, introspected types and bulk path), all in the one transaction
of the flush, with one set of dead letters. A record whose table cannot be named
(a missing field, a name the dialect cannot quote) and the records of a table that
cannot be written (missing with ``auto_create_table`` off) are dead-lettered with
the reason; the other tables' records are written.
"""

from __future__ import annotations

import contextlib
from typing import Any

from flbsql.errors import FlbSqlError, RecordError, TerminalError
from flbsql.events.chunk import BadEntry
from flbsql.events.decode import Event, iter_events
from flbsql.outcome import Outcome
from flbsql.output.batching import Savepoints
from flbsql.output.deadletter import Rejected
from flbsql.output.routing import TableName
from flbsql.output.writer import Writer

__all__ = ["RoutedWriter"]


class RoutedWriter(Writer):
    """Writes each record to the table its ``table`` template names."""

    def _child(self, name: TableName) -> Writer:
        """The writer of one resolved table (made once)."""
        child = self.children.get(name)
        if child is None:
            table = self.router.text(name)
            cfg = self.cfg.replace(table=table, table_prefix=None, table_schema=None, table_map=())
            child = self.children[name] = Writer(cfg, self.pool, self.log)
            child.dead = self.dead
        return child

    def _write_once(self, data: bytes | memoryview, tag: str) -> Outcome:
        """A table per record: the records of each table written in one transaction."""
        bad: list[BadEntry] = []
        events = list(iter_events(data, bad))
        out = [
            Rejected(b.index, None, 0, b.raw, f"not a Fluent Bit event: {b.reason}") for b in bad
        ]
        groups: dict[TableName, list[Event]] = {}
        for ev in events:
            try:
                groups.setdefault(self.router.resolve(tag, ev[2]), []).append(ev)
            except RecordError as exc:  # noqa: PERF203 - that record only
                out.append(Rejected(ev[3], ev[0], ev[1], ev[2], str(exc)))
        written = 0
        with self.pool.connection() as conn:
            self._ensure_dead(conn)
            for name in list(groups):
                err = self._ensure_child(conn, name)
                if err is not None:  # e.g. missing and auto_create_table off: its records only
                    out.extend(Rejected(e[3], e[0], e[1], e[2], err) for e in groups.pop(name))
            cur = conn.cursor()
            try:
                self.dialect.begin(conn, cur)
                sp = Savepoints(cur, self.dialect)
                for name, evs in groups.items():
                    child = self.children[name]
                    where: list[int] = []
                    unmapped: list[tuple[int, Exception]] = []
                    rows = list(child.mapper.iter_rows(tag, evs, None, where, unmapped))
                    if child.key:
                        rows, where = child._dedupe(rows, where)
                    refused = child._write_rows(cur, sp, rows, rows, None)
                    written += len(where) - len(refused)
                    for at, problem in unmapped + [(where[i], e) for i, e in refused]:
                        sec, nsec, body, index = evs[at]
                        key = child.mapper.key_text(tag, body, child.key)
                        out.append(Rejected(index, sec, nsec, body, str(problem), key))
                out.sort(key=lambda r: r.index)
                self.dead.write(cur, sp, tag, out, len(events) + len(bad))
                conn.commit()
            except BaseException:
                with contextlib.suppress(Exception):
                    conn.rollback()
                self.children.clear()
                raise
            finally:
                with contextlib.suppress(Exception):
                    cur.close()
        if self.metrics is not None:
            self.metrics.inc("rows_in", len(events) + len(bad))
            self.metrics.inc("rows_out", written)
            self.metrics.inc("dead_lettered", len(out))
        return Outcome.OK

    def _ensure_child(self, conn: Any, name: TableName) -> str | None:
        """Make a per-record table ready; the error text when it cannot be written."""
        try:
            self._child(name)._ensure(conn)
        except Exception as exc:
            with contextlib.suppress(Exception):
                conn.rollback()
            err = exc if isinstance(exc, FlbSqlError) else self.dialect.classify(exc)
            if not isinstance(err, TerminalError):
                raise err from exc
            return str(err)
        return None
