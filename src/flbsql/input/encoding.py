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
``msgpack.Packer`` call; only values msgpack cannot pack natively reach the
``default`` hook, so plain integer and text columns cost no Python per value.
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

from flbsql.events.codec import MAX_EVENT_SEC, U32X2, header
from flbsql.timestamps import localize, to_event_time

__all__ = ["RowEncoder"]

_UTC = dt.timezone.utc


def _strip_array_header(data: bytes) -> bytes:
    """The items of a packed array, without its header (fixarray, array16/32)."""
    first = data[0]
    if 0x90 <= first <= 0x9F:
        return data[1:]
    return data[3:] if first == 0xDC else data[5:]


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
            kinds: column -> ``json`` / ``utc`` (dialect hints, case-insensitive).
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
        self.utc_idx = [i for i in self.emit if kinds.get(names[i].lower()) == "utc"]
        self.zone = zone
        self.local_rule = local_rule
        self.time_idx = None if time_column is None else lower[time_column.lower()]
        self.time_zone = (
            _UTC
            if (self.time_idx is not None and kinds.get(names[self.time_idx].lower()) == "utc")
            else zone
        )
        self.decimal_float = decimal_float
        self.extra = dict(extra or {})
        self._simple = not (
            self.json_idx or self.utc_idx or self.extra or len(self.emit) != len(names)
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
            return dict(zip(self.keys, row, strict=True))
        values = list(row)
        for i in self.json_idx:
            v = values[i]
            if isinstance(v, (str, bytes)):
                with contextlib.suppress(ValueError):  # not a document: keep the text
                    values[i] = json.loads(v)
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
        ingest = msgpack.ExtType(0, U32X2.pack(sec, int((now - sec) * 1e9)))
        meta: dict[str, Any] = {}
        if self.time_idx is None:
            head = [ingest, meta]
            if self._simple:  # the common row: no per-row call, no per-value Python
                keys = self.keys
                items = [[head, dict(zip(keys, r))] for r in rows]  # noqa: B905 - same length
            else:
                items = [[head, self._row(r)] for r in rows]
        else:  # per-row headers written by hand: no ExtType objects, one pack per body
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
        return _strip_array_header(self._packer.pack(items))
