"""Fluent Bit's msgpack event format, both ways (docs/fluent-bit-abi.md §10).

A flush chunk is a concatenation of events, each either the v2 form
``[[timestamp, metadata], body]`` or the classic ``[timestamp, body]``; both can be
mixed in one chunk. A timestamp is an EventTime (msgpack ext type 0: big-endian
uint32 seconds + uint32 nanoseconds), a non-negative integer or a float. Group
markers (EventTime seconds 0xFFFFFFFF / 0xFFFFFFFE) frame OpenTelemetry groups and
are not records.

Decoding never drops anything silently: an entry that is not an event comes back
as a :class:`BadEntry` carrying its raw bytes and the reason, for the dead letter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import msgpack

from flbsql.events.codec import EventTime, ext_hook, is_group

__all__ = [
    "BadEntry",
    "Event",
    "decode_chunk",
    "skip_object",
]


@dataclasses.dataclass(slots=True)
class Event:
    """One record of a chunk."""

    time: EventTime
    body: dict[Any, Any]
    metadata: dict[Any, Any]
    index: int  # position in the chunk, for error messages


@dataclasses.dataclass(slots=True)
class BadEntry:
    """Something in a chunk that is not a record; kept for the dead letter."""

    index: int
    raw: bytes
    reason: str


def _timestamp(ts: Any) -> EventTime | None:
    if isinstance(ts, EventTime):
        return ts
    if isinstance(ts, bool):
        return None
    if isinstance(ts, int) and ts >= 0:
        return EventTime(ts, 0)
    if isinstance(ts, float) and ts >= 0:
        sec = int(ts)
        return EventTime(sec, round((ts - sec) * 1e9) % 1_000_000_000)
    return None


def _unpacker(size: int) -> msgpack.Unpacker:
    return msgpack.Unpacker(
        ext_hook=ext_hook,
        raw=False,
        strict_map_key=False,
        unicode_errors="surrogateescape",
        max_buffer_size=max(size, 1 << 20),
    )


def decode_chunk(data: bytes | memoryview) -> Iterator[Event | BadEntry]:
    """Yield the events of a flush chunk in order; group markers are skipped.

    An entry msgpack cannot decode (nested deeper than its 1024-level stack, say)
    becomes a :class:`BadEntry` with exactly its bytes, and decoding goes on after it.
    """
    view = memoryview(data)
    unpacker = _unpacker(len(view))
    unpacker.feed(view)
    base = 0  # offset of the unpacker's first byte in the chunk
    index = 0
    start = 0
    while True:
        try:
            obj = unpacker.unpack()
        except msgpack.OutOfData:
            break
        except Exception as exc:
            end = skip_object(view, start)
            if end is None:
                yield BadEntry(index, bytes(view[start:]), f"undecodable msgpack: {exc!r}")
                return
            yield BadEntry(index, bytes(view[start:end]), f"undecodable msgpack: {exc!r}")
            index += 1
            start = base = end
            unpacker = _unpacker(len(view) - end)
            unpacker.feed(view[end:])
            continue
        end = base + unpacker.tell()
        entry = _to_event(obj, index)
        if entry is None:
            yield BadEntry(index, bytes(view[start:end]), _why_bad(obj))
        elif entry is not _GROUP:
            yield entry
        index += 1
        start = end
    if start < len(view):
        yield BadEntry(index, bytes(view[start:]), "truncated msgpack at the end of the chunk")


# msgpack type byte -> (fixed payload bytes, length-prefix bytes, child count kind)
_FIXED = {
    0xC0: 0,
    0xC2: 0,
    0xC3: 0,
    0xCC: 1,
    0xCD: 2,
    0xCE: 4,
    0xCF: 8,
    0xD0: 1,
    0xD1: 2,
    0xD2: 4,
    0xD3: 8,
    0xCA: 4,
    0xCB: 8,
    0xD4: 2,
    0xD5: 3,
    0xD6: 5,
    0xD7: 9,
    0xD8: 17,
}
_SIZED = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}  # bin/str: length bytes
_EXT = {0xC7: 1, 0xC8: 2, 0xC9: 4}  # ext: length bytes, then type byte
_CONTAINER = {0xDC: (2, 1), 0xDD: (4, 1), 0xDE: (2, 2), 0xDF: (4, 2)}  # (len bytes, per item)


def skip_object(view: memoryview, pos: int) -> int | None:
    """Offset just past the msgpack object at ``pos``, without building it.

    Iterative, so any nesting depth is fine; None when the data ends first.
    """
    pending = 1
    n = len(view)
    while pending:
        if pos >= n:
            return None
        b = view[pos]
        pos += 1
        pending -= 1
        if b <= 0x7F or b >= 0xE0:  # fixint
            continue
        if 0x80 <= b <= 0x8F:
            pending += 2 * (b & 0x0F)
        elif 0x90 <= b <= 0x9F:
            pending += b & 0x0F
        elif 0xA0 <= b <= 0xBF:
            pos += b & 0x1F
        elif b in _FIXED:
            pos += _FIXED[b]
        elif b in _SIZED or b in _EXT:
            width = _SIZED.get(b) or _EXT[b]
            if pos + width > n:
                return None
            pos += width + int.from_bytes(view[pos : pos + width], "big") + (1 if b in _EXT else 0)
        elif b in _CONTAINER:
            width, per = _CONTAINER[b]
            if pos + width > n:
                return None
            pending += per * int.from_bytes(view[pos : pos + width], "big")
            pos += width
        else:  # 0xC1 is never used
            return None
    return pos if pos <= n else None


_GROUP: Any = object()


def _to_event(obj: Any, index: int) -> Event | None:
    if not isinstance(obj, list) or len(obj) != 2:
        return None
    head, body = obj
    meta: Any = {}
    if isinstance(head, list):  # v2: [[ts, meta], body] (an EventTime is a tuple)
        if len(head) != 2:
            return None
        head, meta = head
    ts = _timestamp(head)
    if ts is None or not isinstance(meta, dict):
        return None
    if is_group(ts.sec, ts.nsec):
        return _GROUP  # type: ignore[no-any-return]
    if not isinstance(body, dict):
        return None
    return Event(ts, body, meta, index)


def _why_bad(obj: Any) -> str:
    if not isinstance(obj, list) or len(obj) != 2:
        return f"not a [timestamp, record] pair: {type(obj).__name__}"
    head, body = obj
    if isinstance(head, list):
        if len(head) != 2 or not isinstance(head[1], dict):
            return "header is not [timestamp, metadata map]"
        head = head[0]
    if _timestamp(head) is None:
        return f"invalid timestamp {head!r:.60}"
    return f"record body is not a map: {type(body).__name__}"
