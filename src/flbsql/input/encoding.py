"""Database values to Fluent Bit events: one documented mapping for every dialect.

=====================================  ==============================================
database value (as the driver returns)  msgpack
=====================================  ==============================================
NULL                                   nil
boolean                                true / false (MySQL BOOL is TINYINT: integer)
integer types                          integer
float / double / real                  float
DECIMAL / NUMERIC                      string, lossless (``decimal float``: float)
timestamp with time zone               ISO-8601 string with its offset (PostgreSQL
                                       renders it: ``to_json``, no trailing zeros)
timestamp without time zone            ISO-8601 with the ``time_zone`` offset
                                       (MySQL TIMESTAMP is read in UTC: ``+00:00``)
date / time                            ISO-8601 string (``2024-05-01``, ``12:00:00``)
interval                               float seconds
bytea / BLOB / BINARY                  bin
JSON / JSONB (and SQLite JSON columns)  the document as a native map / array
arrays (PostgreSQL)                    array, elements mapped the same way
uuid                                   string (canonical form)
anything else (inet, range, ...)       its text form
=====================================  ==============================================

Encoding runs in the fetch thread. A page of rows is packed by one
``msgpack.Packer`` call as an array of row arrays, then re-framed into events by
:class:`~flbsql.events.frame.Framer` (in C: no dict per row); only values msgpack
cannot pack natively reach the ``default`` hook, so plain integer and text columns
cost no Python per value.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import json
import uuid
from collections.abc import Sequence
from typing import Any

import msgpack

from flbsql.events.codec import MAX_EVENT_SEC, header, header_of_pg_micros
from flbsql.events.frame import UNQUOTE, Framer, unquote_literal
from flbsql.timestamps import localize, to_event_time

__all__ = ["HEADER_COLUMN", "RowEncoder"]

_UTC = dt.timezone.utc
HEADER_COLUMN = "flbsql_event_time"  # the time column as a binary timestamp, from the server


class RowEncoder:
    """Packs rows of one result shape into concatenated v2 events."""

    def __init__(
        self,
        names: Sequence[str],
        *,
        zone: dt.tzinfo,
        decimal_float: bool = False,
        hidden: Sequence[str] = (),
        kinds: dict[str, str] | None = None,
        time_column: str | None = None,
        local_rule: str = "earlier",
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Prepare for the column ``names`` of a result (cursor.description order).

        Args:
            names: result column names.
            zone: zone of naive timestamps.
            decimal_float: DECIMAL as float instead of string.
            hidden: columns read for the position only, not emitted.
            kinds: column -> ``json`` / ``utc`` (dialect hints, case-insensitive), or
                ``quoted``: the server rendered the value as a JSON string literal
                (:meth:`~flbsql.dialects.base.Dialect.input_select_expr`), emitted
                without its quotes.
            time_column: column giving the event time (None: ingest time).
            local_rule: naive times a DST change repeats or skips (timestamps.localize).
            extra: fields added to every record after the columns (``table_key``).
        """
        self.names = list(names)
        lower = {n.lower(): i for i, n in enumerate(names)}
        kinds = {k.lower(): v for k, v in (kinds or {}).items()}
        hide = {h.lower() for h in hidden}
        self.emit = [i for i, n in enumerate(names) if n.lower() not in hide]
        self.keys = [names[i] for i in self.emit]
        self.json_idx = [i for i in self.emit if kinds.get(names[i].lower()) == "json"]
        self.quoted_idx = [i for i in self.emit if kinds.get(names[i].lower()) == "quoted"]
        self.utc_idx = [i for i in self.emit if kinds.get(names[i].lower()) == "utc"]
        self.zone = zone
        self.local_rule = local_rule
        self.time_idx = None if time_column is None else lower[time_column.lower()]
        self.head_idx = lower.get(HEADER_COLUMN) if time_column is not None else None
        self.time_zone = (
            _UTC
            if (self.time_idx is not None and kinds.get(names[self.time_idx].lower()) == "utc")
            else zone
        )
        self.decimal_float = decimal_float
        self.extra = dict(extra or {})
        # emitted columns lead the row (a header read last is cut off by zip)
        self._simple = not (
            self.json_idx or self.utc_idx or self.quoted_idx or self.extra
        ) and self.emit == list(range(len(self.emit)))
        shown = set(self.emit)
        # rows whose values go out as the driver returned them: framed from one pack,
        # each behind the page's header or, with a time column, its own from the server
        self._framer = (
            None
            if self.json_idx or self.utc_idx
            else Framer(
                self.keys,
                [
                    (UNQUOTE if i in self.quoted_idx else 1) if i in shown else 0
                    for i in range(len(names))
                ],
                -1 if self.head_idx is None else self.head_idx,
                self.extra,
            )
        )
        self._packer = msgpack.Packer(
            default=self._default,
            datetime=False,
            use_bin_type=True,
            unicode_errors="surrogateescape",
        )

    def _default(self, obj: Any) -> Any:
        if isinstance(obj, dt.datetime):
            if obj.tzinfo is None:
                obj = localize(obj, self.zone, self.local_rule)
            return obj.isoformat()
        if isinstance(obj, (dt.date, dt.time)):
            return obj.isoformat()
        if isinstance(obj, decimal.Decimal):
            return float(obj) if self.decimal_float else str(obj)
        if isinstance(obj, uuid.UUID):
            return str(obj)
        if isinstance(obj, dt.timedelta):
            return obj.total_seconds()
        if isinstance(obj, (bytearray, memoryview)):
            return bytes(obj)
        if isinstance(obj, (tuple, set, frozenset)):
            return list(obj)
        return str(obj)

    def _row(self, row: Sequence[Any]) -> Any:
        if self._simple:
            return dict(zip(self.keys, row))  # noqa: B905 - a header read last is cut off
        values = list(row)
        for i in self.json_idx:
            v = values[i]
            if isinstance(v, (str, bytes)):
                with contextlib.suppress(ValueError):  # not a document: keep the text
                    values[i] = json.loads(v)
        for i in self.quoted_idx:  # a JSON string literal rendered by the server
            if isinstance(values[i], str):
                values[i] = unquote_literal(values[i])
        for i in self.utc_idx:
            v = values[i]
            if isinstance(v, dt.datetime) and v.tzinfo is None:
                values[i] = v.replace(tzinfo=_UTC)
        body = {self.keys[j]: values[i] for j, i in enumerate(self.emit)}
        if self.extra:
            body.update(self.extra)
        return body

    def encode(self, rows: Sequence[Sequence[Any]], now: float) -> bytes:
        """Concatenated ``[[EventTime, {}], body]`` events for ``rows``."""
        if not rows:
            return b""
        sec = int(now)
        if self.time_idx is None:
            head = header(sec, int((now - sec) * 1e9))
            if self._framer is not None:  # the common page: one pack, framed in C
                return self._framer.frame(self._packer.pack(rows), len(rows), head)
            pack, row_of = self._packer.pack, self._row
            return b"".join([head + pack(row_of(r)) for r in rows])
        if self.head_idx is not None:  # times read in binary: headers built in C
            head = header(sec, int((now - sec) * 1e9))
            if self._framer is not None:
                return self._framer.frame(self._packer.pack(rows), len(rows), head)
            return self._encode_headed(rows, head)
        # the time column: per-row headers written by hand, one pack per body
        t, zone = self.time_idx, self.time_zone
        pack, row_of = self._packer.pack, self._row
        default_head = header(sec, int((now - sec) * 1e9))
        parts: list[bytes] = []
        for r in rows:
            v = r[t]
            if v.__class__ is dt.datetime and v.tzinfo is not None:  # the usual column
                ts = v.timestamp()
                et = (int(ts), v.microsecond * 1000) if 0 <= ts <= MAX_EVENT_SEC else None
            else:
                et = to_event_time(v, zone, self.local_rule)
            hdr = default_head if et is None else header(*et)
            parts.append(hdr + pack(row_of(r)))
        return b"".join(parts)

    def _encode_headed(self, rows: Sequence[Sequence[Any]], default_head: bytes) -> bytes:
        """Events timed by the binary timestamp read with the row (else ``default_head``)."""
        h, pack = self.head_idx, self._packer.pack
        assert h is not None
        parts: list[bytes] = []
        add = parts.append
        for r in rows:
            add(header_of_pg_micros(r[h]) or default_head)
            add(pack(self._row(r)))
        return b"".join(parts)
