"""Value converters for typed columns: record value -> what the driver binds.

Each converter takes one value (never None: missing keys are NULL without a
call) and returns the bound value or raises :class:`ValueError` with a short
reason; :class:`~flbsql.output.mapping.Mapper` turns that into a RecordError naming the
column and the record. Lenient where the meaning is clear (``"42"`` for an int
column, ``1`` for a bool), strict where a value would change (``4.5`` for an int).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import re
from collections.abc import Callable
from typing import Any

import msgpack
import orjson

from flbsql.errors import RecordError
from flbsql.events.codec import EventTime
from flbsql.timestamps import EpochMicros, localize

__all__ = ["TimeConverter", "converter", "dumps", "json_default", "time_kind"]

_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MAX_SEC = 253_402_300_800  # 10000-01-01: what datetime (and SQL) can hold

_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
_TRUE = {"true", "yes", "on", "1", "t", "y"}
_FALSE = {"false", "no", "off", "0", "f", "n"}


def json_default(value: Any) -> Any:
    """orjson/json ``default``: bytes as base64, EventTime as float seconds, ext as a map."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, msgpack.ExtType):
        return {"ext": value.code, "data": base64.b64encode(value.data).decode()}
    if isinstance(value, tuple) and len(value) == 2:  # an EventTime
        return value[0] + value[1] / 1e9
    if isinstance(value, (decimal.Decimal, dt.datetime, dt.date)):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(value: Any) -> bytes:
    """A record or value as compact JSON bytes; RecordError when it cannot be encoded."""
    try:
        return orjson.dumps(value, default=json_default)
    except TypeError:
        try:  # non-string map keys (ints, bytes) are legal in msgpack
            return orjson.dumps(value, default=json_default, option=orjson.OPT_NON_STR_KEYS)
        except TypeError as exc:
            raise RecordError(f"record is not valid JSON: {exc}") from None


def time_kind(db_type: str | None) -> str:
    """How a column takes a time: aware datetime, naive datetime in the zone, or ISO text."""
    t = (db_type or "").lower()
    if t in ("timestamptz", "datetimeoffset") or ("time zone" in t and "without" not in t):
        return "aware"
    if "timestamp" in t or "datetime" in t or t == "date":
        return "naive"
    return "text"


class TimeConverter:
    """(sec, nsec) -> the column's time value, caching the last whole second."""

    def __init__(self, kind: str, zone: dt.tzinfo, local_rule: str = "earlier") -> None:
        self.kind = kind
        self.zone = zone
        self.local_rule = local_rule  # for naive times in records (timestamps.localize)
        # one attribute holding both, so concurrent workers never see a torn pair
        self._cache: tuple[int, dt.datetime] = (-1, _EPOCH)
        # text: the ISO text of the second, cut where the fraction goes (before the offset)
        self._text: tuple[int, str, str] = (-1, "", "")

    def __call__(self, sec: int, nsec: int) -> Any:
        """The column's value for the time ``sec`` + ``nsec``."""
        if self.kind == "epoch":
            if not 0 <= sec < _MAX_SEC:
                raise ValueError(f"time {sec}s since 1970 is past year 9999")
            return EpochMicros(sec * 1_000_000 + nsec // 1000)
        if self.kind in ("text", "naive_text"):  # isoformat() / str() without a datetime
            cached, head, tail = self._text
            if sec != cached:
                base = self._second(sec)
                iso = base.isoformat() if self.kind == "text" else str(base.replace(tzinfo=None))
                head, tail = iso[:19], iso[19:]
                self._text = (sec, head, tail)
            us = nsec // 1000
            return f"{head}.{us:06d}{tail}" if us else head + tail
        base = self._second(sec)
        return base.replace(microsecond=nsec // 1000) if nsec else base

    def _second(self, sec: int) -> dt.datetime:
        cached_sec, base = self._cache
        if sec != cached_sec:
            base = _EPOCH + dt.timedelta(seconds=sec)
            if self.kind != "aware":
                base = base.astimezone(self.zone)
            if self.kind == "naive":
                base = base.replace(tzinfo=None)
            self._cache = (sec, base)
        return base


def _int(v: Any) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        out = v
    elif isinstance(v, float) and v.is_integer():
        out = int(v)
    elif isinstance(v, str) and v.strip().lstrip("+-").isdigit():
        out = int(v.strip())
    else:
        raise ValueError(f"not an integer: {v!r:.80}")
    if not _I64_MIN <= out <= _I64_MAX:
        raise ValueError(f"integer out of the 64-bit range: {out}")
    return out


def _float(v: Any) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            pass
    raise ValueError(f"not a number: {v!r:.80}")


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
        return v.strip().lower() in _TRUE
    raise ValueError(f"not a boolean: {v!r:.80}")


def _decimal(v: Any) -> decimal.Decimal:
    if isinstance(v, (int, str, float)) and not isinstance(v, bool):
        try:
            out = decimal.Decimal(str(v).strip())
        except decimal.InvalidOperation:
            pass
        else:
            if out.is_finite():
                return out
    raise ValueError(f"not a decimal number: {v!r:.80}")


def _bytes(v: Any) -> bytes:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, str):
        return v.encode("utf-8", "surrogateescape")
    raise ValueError(f"not bytes or text: {type(v).__name__}")


def _text_factory(nul_ok: bool, max_len: int | None = None) -> Callable[[Any], str]:
    def text(v: Any) -> str:
        if isinstance(v, str):
            out = v
        elif isinstance(v, (bytes, bytearray)):
            try:
                out = bytes(v).decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError("bytes are not UTF-8 text") from None
        elif isinstance(v, (dict, list, tuple)):
            out = dumps(v).decode()
        else:
            out = str(v)
        if max_len is not None and len(out) > max_len:
            raise ValueError(f"text of {len(out)} characters is longer than the column's {max_len}")
        if not nul_ok and "\x00" in out:
            raise ValueError("text contains a NUL character, which this database cannot store")
        try:
            out.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text is not valid UTF-8") from None
        return out

    return text


def _time_factory(tconv: TimeConverter) -> Callable[[Any], Any]:
    def to_time(v: Any) -> Any:
        if isinstance(v, EventTime):
            return tconv(v[0], v[1])
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if v < 0:
                raise ValueError(f"negative epoch time: {v}")
            sec = int(v)
            return tconv(sec, round((v - sec) * 1e9))
        if isinstance(v, str):
            try:
                parsed = dt.datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"not an ISO 8601 time: {v!r:.80}") from None
            if parsed.tzinfo is None:
                parsed = localize(parsed, tconv.zone, tconv.local_rule)
            stamp = parsed.timestamp()
            sec = int(stamp // 1)
            return tconv(sec, parsed.microsecond * 1000)
        raise ValueError(f"not a time: {v!r:.80}")

    return to_time


def _json_factory(as_bytes: bool, nul_ok: bool) -> Callable[[Any], Any]:
    def to_json(v: Any) -> Any:
        doc = dumps(v)
        if not nul_ok and b"\\u0000" in doc and _NUL_ESCAPE.search(doc):
            raise ValueError("JSON contains \\u0000, which this database cannot store")
        return doc if as_bytes else doc.decode()

    return to_json


def converter(
    ctype: str, *, nul_ok: bool, json_bytes: bool, tconv: TimeConverter, max_len: int | None = None
) -> Callable[[Any], Any]:
    """The converter for a column of generic type ``ctype``."""
    if ctype in ("text", "string"):
        return _text_factory(nul_ok, max_len)
    if ctype == "json":
        return _json_factory(json_bytes, nul_ok)
    if ctype == "timestamp":
        return _time_factory(tconv)
    simple: dict[str, Callable[[Any], Any]] = {
        "int": _int,
        "float": _float,
        "bool": _bool,
        "decimal": _decimal,
        "bytes": _bytes,
    }
    return simple[ctype]


def b64(data: bytes) -> str:
    """Base64 text (dead letters of undecodable entries)."""
    return base64.b64encode(data).decode()
