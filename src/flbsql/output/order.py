"""Which changes of a flush apply now: replays skipped, early ones parked, parked ones due.

Inside each flush's transaction (:mod:`flbsql.output.apply`), per source table:

- a change before the stored position (:mod:`flbsql.output.positions`) was applied
  already (a replayed chunk) and is skipped;
- a change whose ``seq`` is more than one past the stored one came before an older
  change (Fluent Bit flushed a newer chunk first): it is parked
  (:mod:`flbsql.output.parked`), and so is every later change of that table;
- parked changes of the tables in the flush (and of any table that waited longer than
  ``apply_gap_wait``) are read before the transaction and merged in ``seq`` order: one
  that is next in line is applied and unparked with the flush;
- a table that waited ``apply_gap_wait`` for a missing change goes on without it,
  with one error line naming the table and the missing numbers.

A change without ``seq`` (Debezium events, an in_sql of an older version) has only
the position check. A ``seq`` not above the stored one, on a newer position, is a
numbering that started again (in_sql lost its numbers: :mod:`flbsql.cdc.sequence`)
and is taken as the new start.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any

from flbsql.events.decode import Event, iter_events
from flbsql.output.changes import Change, position_text
from flbsql.output.parked import TAKE, Group, Parked, pack_event
from flbsql.output.plan import Item
from flbsql.output.positions import Moved, Positions, Stored
from flbsql.settings import OutputConfig

__all__ = ["Order"]

Unpark = dict[int, tuple[str, str, int]]  # item's event index -> its parked key


class Order:
    """The position and parking tables of one output (shared by its workers)."""

    def __init__(self, cfg: OutputConfig, positions: Positions, log: logging.Logger) -> None:
        """``positions``: the position table (ordering needs it)."""
        self.cfg, self.positions, self.log = cfg, positions, log
        self.parked = Parked(cfg.apply_parked_table, positions.dialect)
        self.wait = cfg.apply_gap_wait
        self._since: dict[Group, float] = {}  # a gap seen first (time.time())
        self._lock = threading.Lock()

    def ensure(self, conn: Any) -> None:
        """Both tables exist (outside the flush transaction)."""
        self.positions.ensure(conn, self.cfg, self.log)
        self.parked.ensure(conn, self.cfg, self.log)

    def source(self, source: str | None, tag: str) -> str:
        """The name positions are kept under."""
        return self.cfg.apply_source or source or tag

    # -- before the transaction -----------------------------------------------------------

    def unpark(
        self,
        conn: Any,
        items: list[Item],
        events: list[Event],
        tag: str,
        parse: Any,
        drain: set[Group],
    ) -> tuple[Unpark, set[Group]]:
        """Merge the parked changes that may be due into ``items`` (their events appended).

        Returns the parked keys by event index, and the groups that have more parked
        than one read takes (:data:`~flbsql.output.parked.TAKE`). ``drain``: groups to
        read besides those of ``items`` (the rest of a long wait, after a first read).
        """
        keys: Unpark = {}
        full: set[Group] = set()
        if not self.parked.maybe:  # nothing parked: no statement, no round trip
            return keys, full
        cur = conn.cursor()
        try:
            groups = self.parked.groups(cur)
            if not groups:
                return keys, full
            now = time.time()
            wanted = {(self.source(it.change.source, tag), it.change.table) for it in items}
            wanted |= drain
            due = [g for g, epoch in groups.items() if g in wanted or now - epoch >= self.wait]
            early: dict[Group, list[Item]] = collections.defaultdict(list)
            for group in due:
                with self._lock:
                    self._since.setdefault(group, groups[group])
                rows = self.parked.take(cur, group)
                if len(rows) >= TAKE:
                    full.add(group)
                for s, t, n, _, _, raw in rows:
                    for sec, nsec, body, _ in iter_events(raw, []):
                        at = len(events)
                        events.append((sec, nsec, body, -1))
                        for it in parse([(sec, nsec, body, -1)], tag, {}, at):
                            keys[at] = (s, t, n)
                            early[group].append(it)
        finally:
            conn.rollback()  # end the read: the flush's transaction starts clean
            cur.close()
        items[:] = _merge(items, early, lambda c: (self.source(c.source, tag), c.table))
        return keys, full

    # -- inside the transaction -----------------------------------------------------------

    def fresh(
        self, cur: Any, items: list[Item], tag: str, events: list[Event], keys: Unpark
    ) -> tuple[list[Item], dict[str, dict[str, Moved]]]:
        """The changes to apply now, and each source table's new position (parks the rest)."""
        moved: dict[str, dict[str, Moved]] = {}
        stored: dict[str, dict[str, Stored]] = {}
        todo: list[Item] = []
        park: list[tuple[str, str, int, str, bytes]] = []
        done: list[tuple[str, str, int]] = []
        for it in items:
            ch = it.change
            if ch.position is None and ch.floor is None:
                todo.append(it)
                continue
            source = self.source(ch.source, tag)
            seen = stored.get(source)
            if seen is None:
                seen = stored[source] = self.positions.read(cur, source)
            last = seen.get(ch.table)
            key = keys.get(it.at)
            if _replayed(ch, last):
                if key is not None:
                    done.append(key)
                continue
            if self._early(source, ch.table, ch.seq, last):
                if key is None:
                    sec, nsec, body, _ = events[it.at]
                    text = position_text(ch.position or (ch.floor or 0, ch.pos))
                    park.append((source, ch.table, ch.seq or 0, text, pack_event(sec, nsec, body)))
                continue
            if key is not None:
                done.append(key)
            if ch.seq is not None and self._since:
                with self._lock:
                    self._since.pop((source, ch.table), None)  # the gap (if any) is closed
            if ch.position is None and ch.seq is None:
                todo.append(it)  # a snapshot row of an older in_sql: the position stays
                continue
            seq = ch.seq if ch.seq is not None else (last[1] if last else None)
            position = ch.position or (last[0] if last else (0, 0))
            seen[ch.table] = (position, seq)  # equal: the boundary, idempotent again
            moved.setdefault(source, {})[ch.table] = (
                position_text(position),
                ch.lsn,
                ch.pos,
                seq,
            )
            todo.append(it)
        self.parked.remove(cur, done)
        self.parked.add(cur, park)
        if park:
            first = min((s, t, n) for s, t, n, _, _ in park)
            self.log.info(
                "%d change(s) came before older ones and wait in %s (first: table %s, change "
                "%d; an older chunk is still on its way)",
                len(park),
                self.cfg.apply_parked_table,
                first[1],
                first[2],
            )
        return todo, moved

    def _early(self, source: str, table: str, seq: int | None, last: Stored | None) -> bool:
        """True when ``seq`` skips a number and the table has not waited too long.

        A table with nothing applied yet waits for number 1 (its first snapshot row or
        change); one whose stored number is empty (kept by an older version) does not.
        """
        base = 0 if last is None else last[1]
        if seq is None or base is None or seq <= base + 1:
            return False
        group, now = (source, table), time.time()
        with self._lock:
            since = self._since.setdefault(group, now)
            if now - since < self.wait:
                return True
            del self._since[group]
        self.log.error(
            "table %s (source %s): changes %d to %d never arrived in %.0f s "
            "(apply_gap_wait); applying from %d on without them: the target may miss them",
            table,
            source,
            base + 1,
            seq - 1,
            now - since,
            seq,
        )
        return False


def _replayed(ch: Change, last: Stored | None) -> bool:
    """Applied already (a replayed chunk).

    A change before the stored position; a snapshot row at or before the stored number
    (without numbers: read before the changes applied since).
    """
    if last is None:
        return False
    if ch.position is not None:
        return ch.position < last[0]
    if ch.seq is not None and last[1] is not None:
        return ch.seq <= last[1]
    return last[0][0] > (ch.floor or 0)


def _merge(items: list[Item], early: dict[Group, list[Item]], group_of: Any) -> list[Item]:
    """``items`` with each group's parked ones before its first later change (by ``seq``)."""
    if not early:
        return items
    out: list[Item] = []
    for it in items:
        waiting = early.get(group_of(it.change))
        while waiting and (waiting[0].change.seq or 0) < (it.change.seq or 0):
            out.append(waiting.pop(0))
        out.append(it)
    for rest in early.values():
        out.extend(rest)
    return out
