"""Where rejected records go: a dead-letter table, or the error log with the record.

The dead-letter table has four columns: ``tag``, ``time`` (the record's time),
``error`` (the reason, naming the column or the database error) and ``record``
(the record as JSON text, ASCII-escaped so that any record fits a text column;
an entry that was not even an event is kept as base64 msgpack). It is written in
the same transaction as the good rows, so a flush commits both or neither.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from flbsql.errors import ConfigError
from flbsql.output.batching import Savepoints
from flbsql.output.convert import TimeConverter, json_default, time_kind
from flbsql.output.tables import ensure_table

if TYPE_CHECKING:
    import datetime as dt

    from flbsql.dialects.base import Dialect
    from flbsql.settings import OutputConfig

__all__ = ["DeadLetters", "Rejected"]

COLUMNS = ("tag", "time", "error", "record")


@dataclasses.dataclass
class Rejected:
    """One record the database (or the mapping) refused."""

    index: int  # position in the chunk
    sec: int | None
    nsec: int
    body: Any  # the decoded record, or raw bytes for an entry that is not an event
    error: str
    key: str = ""  # its unique_key values, for the log line

    def record_text(self) -> str:
        """The record as ASCII JSON (or base64 msgpack for a non-event)."""
        if isinstance(self.body, (bytes, bytearray)):
            return json.dumps({"msgpack_base64": base64.b64encode(self.body).decode()})
        try:
            return json.dumps(self.body, ensure_ascii=True, default=json_default)
        except (TypeError, ValueError):  # keys that JSON cannot hold: keep something readable
            return json.dumps({"repr": repr(self.body)}, ensure_ascii=True)


class DeadLetters:
    """Writes rejected records for one writer."""

    def __init__(
        self,
        table: str | None,
        dialect: Dialect,
        zone: dt.tzinfo,
        log: logging.Logger,
        target: str,
    ) -> None:
        """``table`` None: rejected records go to the error log."""
        self.table = table
        self.dialect = dialect
        self.log = log
        self.target = target
        self.zone = zone
        self.table_sql: str | None = None
        if table:
            try:
                self.table_sql = dialect.table_sql(table)
            except ValueError as exc:
                raise ConfigError("dead_letter_table", str(exc)) from None
        self._tconv: TimeConverter | None = None

    def coldefs(self) -> list[tuple[str, str]]:
        """CREATE TABLE columns."""
        t = self.dialect.caps.types
        return [
            ("tag", t["string"]),
            ("time", t["timestamp"]),
            ("error", t["text"]),
            ("record", t["text"]),
        ]

    def bind(self, time_type: str) -> None:
        """The introspected type of the ``time`` column."""
        self._tconv = TimeConverter(time_kind(time_type), self.zone)

    @property
    def bound(self) -> bool:
        """True once the table's ``time`` type is known (:meth:`bind`)."""
        return self._tconv is not None

    def ensure(self, conn: Any, cfg: OutputConfig) -> None:
        """Create the table if it is missing (``auto_create_table``), then :meth:`bind` it."""
        if not self.table or self.bound:
            return
        schema, table = self.dialect.split_name(self.table)
        types = ensure_table(
            conn,
            self.dialect,
            schema,
            table,
            str(self.table_sql),
            self.coldefs(),
            (),
            cfg,
            self.log,
            option="dead_letter_table",
        )
        self.bind(types["time"])

    def _time(self, r: Rejected) -> Any:
        """The record's time for the ``time`` column, NULL when it cannot be stored.

        The time may be the very reason the record was rejected (past year 9999):
        converting it again must not fail the flush and drop the chunk's good rows.
        """
        if r.sec is None or self._tconv is None:
            return None
        try:
            return self._tconv(r.sec, r.nsec)
        except (ValueError, OverflowError):
            return None

    def _where(self, r: Rejected, tag: str, total: int) -> str:
        """``record 2500 of 10000 (tag app.log, id='a-1') rejected by table logs``."""
        key = f", {r.key}" if r.key else ""
        return f"record {r.index + 1} of {total} (tag {tag}{key}) rejected by table {self.target}"

    def _stored(self, cur: Any, rows: list[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
        """The rows already in the dead-letter table (same tag, time, error and record).

        A chunk that Fluent Bit flushes again (its commit was not acknowledged, say)
        must not add its dead letters twice. One lookup per rejected record: they are rare.
        """
        d, table_sql = self.dialect, self.table_sql
        q = d.quote
        found = set()
        for row in rows:
            tag, when, error, record = row
            time_test = (
                f"{q('time')} IS NULL" if when is None else f"{q('time')} = {d.placeholder(1)}"
            )
            params = (tag,) if when is None else (tag, when)
            cur.execute(
                f"SELECT {q('error')}, {q('record')} FROM {table_sql} "
                f"WHERE {q('tag')} = {d.placeholder(0)} AND {time_test}",
                params,
            )
            if any((str(e), str(r)) == (error, record) for e, r in cur.fetchall()):
                found.add(row)
        return found

    def write(
        self, cur: Any, sp: Savepoints, tag: str, rejected: Sequence[Rejected], total: int
    ) -> int:
        """Store (or log) every rejected record; returns how many reached the table.

        ``total``: the records of the chunk, for the log lines (record N of total).
        """
        if not rejected:
            return 0
        if self.table_sql is not None and self._tconv is not None:
            rows = [
                (
                    tag,
                    self._time(r),
                    r.error[:4000].replace("\x00", "\\0"),
                    r.record_text(),
                )
                for r in rejected
            ]
            stored = self._stored(cur, rows)
            if stored:  # a replayed chunk: those records are dead letters already
                rejected = [r for r, row in zip(rejected, rows, strict=True) if row not in stored]
                rows = [row for row in rows if row not in stored]
                if not rows:
                    return 0
            table_sql = self.table_sql
            err = sp.attempt(
                lambda part: self.dialect.insert_rows(cur, table_sql, COLUMNS, part), rows
            )
            if err is None:
                for r in rejected:
                    self.log.warning(
                        "%s, dead-lettered to %s: %s",
                        self._where(r, tag, total),
                        self.table,
                        r.error,
                    )
                return len(rows)
            self.log.error(
                "dead-letter table %s refused the records (%s); logging them", self.table, err
            )
        for r in rejected:
            self.log.error(
                "%s: %s; record: %s", self._where(r, tag, total), r.error, r.record_text()
            )
        return 0
