"""Change records in, one :class:`Change` out: in_sql's CDC format and Debezium's events.

Apply mode (:mod:`flbsql.output.apply`) reads two formats:

- **cdc**, what ``in_sql`` ``mode cdc`` emits (docs/cdc.md): ``op`` (``r``/``c``/``u``/
  ``d``/``t``), ``table`` (``schema.table``), ``before``, ``after``, ``lsn`` (``"16/B374D848"``),
  ``pos`` and ``seq``; snapshot rows (``snapshot: true``) have no stream position;
- **debezium**, a Debezium change event with its ``schema``/``payload`` envelope or
  without (``ExtractNewRecordState`` is not expected: the event must keep ``op``,
  ``before``, ``after`` and ``source``). A ``payload`` that is JSON text is parsed. With
  the ``schema`` part, Debezium's logical types are decoded (``MicroTimestamp``,
  ``Date``, ``Decimal``, ``Json``, bytes, ...) so that they reach the target as
  times, numbers and documents, not as epoch integers and base64.

The position of a change is a tuple of integers that grows with the source's own
order (commit LSN and position for in_sql; ``source.sequence`` or ``lsn`` for
Debezium's PostgreSQL connector, binlog file/position/row for MySQL, commit/change
LSN for SQL Server, SCN for Oracle); None for snapshot rows and unknown sources.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import json
import re
from typing import Any

from flbsql.errors import RecordError

__all__ = ["DEBEZIUM_UNAVAILABLE", "OPS", "Change", "parse_change", "position_text"]

OPS = frozenset("rcudt")
DEBEZIUM_UNAVAILABLE = "__debezium_unavailable_value"  # Debezium's TOAST placeholder
_SNAPSHOT = frozenset({"true", "last", "first", "first_in_data_collection", "incremental"})
_SNAPSHOT |= frozenset({"last_in_data_collection"})
_EPOCH = dt.datetime(1970, 1, 1)
_DIGITS = re.compile(r"\d+")


@dataclasses.dataclass(slots=True)
class Change:
    """One change to apply, whatever format it came in."""

    op: str  # r, c, u, d, t
    table: str  # the source table, schema.table
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    position: tuple[int, ...] | None  # the source's order; None: snapshot row or unknown
    lsn: str = ""  # the position as the source writes it (for the position table)
    pos: int = 0
    source: str | None = None  # Debezium's source.name
    floor: int | None = None  # snapshot row: the source position it was read at
    seq: int | None = None  # in_sql: the table's change number (flbsql.cdc.sequence)


def position_text(position: tuple[int, ...]) -> str:
    """Fixed-width hex parts: compares as text exactly as the tuple compares."""
    return ":".join(f"{p:020x}" for p in position)


def _lsn(text: Any) -> int:
    """PostgreSQL's ``16/B374D848`` as one integer."""
    hi, _, lo = str(text).partition("/")
    try:
        return (int(hi, 16) << 32) | int(lo, 16)
    except ValueError:
        raise RecordError(f"lsn {text!r} is not a PostgreSQL LSN") from None


def _cdc(body: dict[Any, Any]) -> Change:
    op, table = body.get("op"), body.get("table")
    if op not in OPS or not isinstance(table, str):
        raise RecordError("not a CDC change record (op must be r/c/u/d/t, table a name)")
    lsn = body.get("lsn")
    pos = body.get("pos") or 0
    position: tuple[int, ...] | None = None if lsn is None else (_lsn(lsn), int(pos))
    floor = None
    if body.get("snapshot") and position is not None:
        floor, position = position[0], None
    before, after = _row(body.get("before")), _row(body.get("after"))
    seq = body.get("seq")
    seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else None
    return Change(op, table, before, after, position, str(lsn or ""), int(pos), None, floor, seq)


def _row(value: Any) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    raise RecordError(f"before/after must be a map, not {type(value).__name__}")


def _int(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and ":" in value:  # SQL Server LSN 00000025:00000d98:0025
        return int(value.replace(":", ""), 16)
    m = _DIGITS.findall(str(value))
    return int(m[-1]) if m else 0


def _debezium_position(src: dict[str, Any]) -> tuple[tuple[int, ...] | None, str]:
    """(order, text) from Debezium's ``source`` block (None when it has none we know)."""
    seq = src.get("sequence")
    if isinstance(seq, str):
        try:
            parts = json.loads(seq)
        except ValueError:
            parts = None
        if isinstance(parts, list) and parts:
            return tuple(_int(p) if p is not None else 0 for p in parts), seq
    if src.get("lsn") is not None:  # PostgreSQL
        return (_int(src["lsn"]), 0), str(src["lsn"])
    if src.get("file") and src.get("pos") is not None:  # MySQL binlog
        order = (_int(src["file"]), _int(src["pos"]), _int(src.get("row") or 0))
        return order, f"{src['file']}:{src['pos']}:{src.get('row') or 0}"
    if src.get("commit_lsn") or src.get("change_lsn"):  # SQL Server
        commit = src.get("commit_lsn") or src.get("change_lsn")
        order = (
            _int(commit),
            _int(src.get("change_lsn") or 0),
            _int(src.get("event_serial_no") or 0),
        )
        return order, str(commit)
    if src.get("scn") is not None:  # Oracle
        return (_int(src.get("commit_scn") or src["scn"]), _int(src["scn"])), str(src["scn"])
    return None, ""


def _debezium(body: dict[Any, Any]) -> Change | None:
    schema = None
    event: Any = body
    if "payload" in body:
        event, schema = body["payload"], body.get("schema")
        if isinstance(event, (str, bytes)):
            try:
                event = json.loads(event)
            except ValueError:
                raise RecordError("payload is not a JSON Debezium event") from None
            if isinstance(event, dict) and "payload" in event:
                event, schema = event["payload"], event.get("schema")
    if event is None:  # a tombstone: the delete before it did the work
        return None
    if not isinstance(event, dict) or not isinstance(event.get("source"), dict):
        raise RecordError("not a Debezium change event (no payload.source)")
    op = event.get("op")
    if op == "m":  # a logical decoding message, not a change
        return None
    if op not in OPS:
        raise RecordError(f"Debezium op {op!r} is not one of c, u, d, r, t")
    src = event["source"]
    table = src.get("table")
    owner = src.get("schema") or src.get("db")
    if not table:
        raise RecordError("Debezium source names no table")
    fields = _fields(schema)
    before = _decode(_row(event.get("before")), fields.get("before"))
    after = _decode(_row(event.get("after")), fields.get("after"))
    position, text = _debezium_position(src)
    floor = None
    if str(src.get("snapshot", "false")).lower() in _SNAPSHOT and position is not None:
        floor, position = position[0], None
    name = f"{owner}.{table}" if owner else str(table)
    pos = position[-1] if position else 0
    return Change(op, name, before, after, position, text, pos, src.get("name"), floor)


def parse_change(body: Any, kind: str) -> Change | None:
    """The change in a record body (``kind``: cdc, debezium or auto); None: nothing to do.

    Raises:
        RecordError: the record is not a change in that format.
    """
    if not isinstance(body, dict):
        raise RecordError("a change record must be a map")
    if kind == "cdc" or (kind == "auto" and "lsn" in body and "table" in body):
        return _cdc(body)
    return _debezium(body)


# -- Debezium's logical types -------------------------------------------------------------


def _fields(schema: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """``before``/``after`` -> column -> its Connect schema (empty without a schema)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    if not isinstance(schema, dict):
        return out
    for part in schema.get("fields") or ():
        if isinstance(part, dict) and part.get("field") in ("before", "after"):
            cols = {f["field"]: f for f in part.get("fields") or () if isinstance(f, dict)}
            out[part["field"]] = cols
    return out


def _decode(row: dict[str, Any] | None, cols: dict[str, dict[str, Any]] | None) -> Any:
    if row is None or not cols:
        return row
    return {k: _value(v, cols.get(k)) for k, v in row.items()}


def _value(v: Any, col: dict[str, Any] | None) -> Any:
    if v is None or col is None or v == DEBEZIUM_UNAVAILABLE:
        return v
    name, ctype = col.get("name") or "", col.get("type")
    if name in ("io.debezium.time.Date", "org.apache.kafka.connect.data.Date"):
        return (_EPOCH + dt.timedelta(days=int(v))).date().isoformat()
    scale = {
        "io.debezium.time.Timestamp": 1_000,
        "org.apache.kafka.connect.data.Timestamp": 1_000,
        "io.debezium.time.MicroTimestamp": 1_000_000,
        "io.debezium.time.NanoTimestamp": 1_000_000_000,
    }.get(name)
    if scale:
        micros = int(v) * 1_000_000 // scale
        return (_EPOCH + dt.timedelta(microseconds=micros)).isoformat()
    if name == "org.apache.kafka.connect.data.Decimal" and isinstance(v, str):
        digits = int.from_bytes(base64.b64decode(v), "big", signed=True)
        exp = -int((col.get("parameters") or {}).get("scale", 0))
        return str(decimal.Decimal(digits).scaleb(exp))
    if name == "io.debezium.data.VariableScaleDecimal" and isinstance(v, dict):
        digits = int.from_bytes(base64.b64decode(v["value"]), "big", signed=True)
        return str(decimal.Decimal(digits).scaleb(-int(v.get("scale", 0))))
    if name == "io.debezium.data.Json" and isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    if ctype == "bytes" and isinstance(v, str) and not name:
        return base64.b64decode(v)
    return v
