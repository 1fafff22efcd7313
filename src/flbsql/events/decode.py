"""Fast decoding of a flush chunk into ``(sec, nsec, body, index)`` tuples.

The common chunk (every entry a well-formed event) is decoded by iterating a
``msgpack.Unpacker`` with a C-level ext hook and checking shapes inline, which
costs about half of building :class:`flbsql.events.chunk.Event` objects. Anything
unusual (a malformed entry, truncated data) falls back to
:func:`flbsql.events.chunk.decode_chunk`, which reports each bad entry with its raw
bytes and reason, so nothing is lost silently. Group markers are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgpack

from flbsql.events.chunk import BadEntry, decode_chunk
from flbsql.events.codec import GROUP_END, GROUP_START, EventTime, ext_hook

__all__ = ["Event", "decode_events", "iter_events"]

Event = tuple[int, int, dict[Any, Any], int]
"""One record: seconds, nanoseconds, body, and its index in the chunk."""

_GROUPS = frozenset((GROUP_START, GROUP_END))


class _Odd(Exception):  # noqa: N818 - internal signal, not an error
    """The chunk needs the careful decoder."""


def _head(head: Any) -> tuple[int, int] | None:
    cls = head.__class__
    if cls is EventTime:
        return head  # type: ignore[no-any-return]
    if cls is int and head >= 0:
        return head, 0
    if cls is float and head >= 0:
        sec = int(head)
        return sec, round((head - sec) * 1e9) % 1_000_000_000
    return None


def iter_events(data: bytes | memoryview, bad: list[BadEntry]) -> Iterator[Event]:
    """Events of a chunk in order, lazily; entries that are not events go to ``bad``.

    Lazy so that a streaming bulk path (PostgreSQL COPY) overlaps decoding with the
    server's work on the rows already sent.
    """
    unpacker = msgpack.Unpacker(
        ext_hook=ext_hook,
        raw=False,
        strict_map_key=False,
        unicode_errors="surrogateescape",
        max_buffer_size=max(len(data), 1 << 20),
    )
    unpacker.feed(data)
    index = 0
    start = 0
    try:
        for obj in unpacker:
            head, body = obj
            if head.__class__ is list:
                head, meta = head
                if meta.__class__ is not dict:
                    raise _Odd
            ts = head if head.__class__ is EventTime else _head(head)  # the usual head inline
            if ts is None or body.__class__ is not dict:
                raise _Odd
            sec, nsec = ts
            if nsec or sec not in _GROUPS:  # not a group marker
                yield sec, nsec, body, index
            index += 1
            start = unpacker.tell()
    except (_Odd, ValueError, TypeError, msgpack.UnpackException):
        pass
    if start >= len(data):
        return
    for entry in decode_chunk(memoryview(data)[start:]):  # the careful decoder for the rest
        if isinstance(entry, BadEntry):
            entry.index += index
            bad.append(entry)
        else:
            yield entry.time.sec, entry.time.nsec, entry.body, entry.index + index


def decode_events(data: bytes | memoryview) -> tuple[list[Event], list[BadEntry]]:
    """Events of a chunk in order, and every entry that is not an event."""
    bad: list[BadEntry] = []
    return list(iter_events(data, bad)), bad
