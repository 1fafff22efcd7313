"""The output's fast chunk decoder (events.decode.iter_events): formats, markers, bad data."""

from __future__ import annotations

from typing import Any

import msgpack

from flbsql.events.chunk import BadEntry
from flbsql.events.decode import decode_events, iter_events
from tests.fix_host import event_classic, event_time, event_v2, group_marker


def _decode(chunk: bytes) -> tuple[list[tuple[int, int, dict[Any, Any], int]], list[BadEntry]]:
    bad: list[BadEntry] = []
    return list(iter_events(chunk, bad)), bad


def test_v2_events_with_metadata():
    chunk = event_v2({"a": 1}, sec=10, nsec=5, meta={"m": 1}) + event_v2({"b": 2}, sec=11)
    assert _decode(chunk) == ([(10, 5, {"a": 1}, 0), (11, 0, {"b": 2}, 1)], [])


def test_classic_events_with_every_timestamp_kind():
    chunk = (
        event_classic({"a": 1}, event_time(11, 6))
        + event_classic({"b": 2}, 12)
        + event_classic({"c": 3}, 13.25)
    )
    events, bad = _decode(chunk)
    assert bad == []
    assert events == [(11, 6, {"a": 1}, 0), (12, 0, {"b": 2}, 1), (13, 250_000_000, {"c": 3}, 2)]


def test_a_mixed_chunk_keeps_order_and_indexes():
    chunk = event_classic({"a": 1}, 1) + event_v2({"b": 2}, sec=2) + event_classic({"c": 3}, 3)
    events, bad = _decode(chunk)
    assert [(e[2], e[3]) for e in events] == [({"a": 1}, 0), ({"b": 2}, 1), ({"c": 3}, 2)]
    assert bad == []


def test_group_markers_are_skipped_but_counted_in_the_index():
    chunk = group_marker(True) + event_v2({"x": 1}) + group_marker(False) + event_v2({"y": 2})
    events, bad = _decode(chunk)
    assert [(e[2], e[3]) for e in events] == [({"x": 1}, 1), ({"y": 2}, 3)]
    assert bad == []


def test_a_bad_entry_in_the_middle_is_reported_and_the_rest_decoded():
    odd = msgpack.packb([1, [1, 2]])  # body is not a map
    chunk = event_v2({"a": 1}) + odd + event_v2({"b": 2})
    events, bad = _decode(chunk)
    assert [(e[2], e[3]) for e in events] == [({"a": 1}, 0), ({"b": 2}, 2)]
    [entry] = bad
    assert entry.index == 1 and entry.raw == odd and "not a map" in entry.reason


def test_a_truncated_chunk_keeps_the_whole_events_and_reports_the_tail():
    whole = event_v2({"a": 1})
    cut = event_v2({"b": "x" * 50})[:-10]
    events, bad = _decode(whole + cut)
    assert [e[2] for e in events] == [{"a": 1}]
    [entry] = bad
    assert entry.index == 1 and entry.raw == cut and "truncated" in entry.reason


def test_an_empty_chunk_has_no_events():
    assert _decode(b"") == ([], [])
    assert decode_events(b"") == ([], [])


def test_iter_events_is_lazy():
    bad: list[BadEntry] = []
    it = iter_events(event_v2({"a": 1}) + event_v2({"b": 2}), bad)
    assert next(it)[2] == {"a": 1}
    assert next(it)[2] == {"b": 2}
