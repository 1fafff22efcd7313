"""Decoding flush chunks: both event formats, every timestamp kind, nothing dropped."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flbsql.events.chunk import BadEntry, Event, decode_chunk, skip_object
from flbsql.events.codec import EventTime, encode_event
from tests.fix_host import event_classic, event_time, event_v2, group_marker


def events_of(chunk: bytes) -> list[Event]:
    """The decoded entries, every one an Event (a BadEntry fails the test, shown)."""
    out = list(decode_chunk(chunk))
    bad = [e for e in out if not isinstance(e, Event)]
    assert not bad, bad
    return [e for e in out if isinstance(e, Event)]


def test_both_formats_and_all_timestamp_kinds():
    chunk = (
        event_v2({"a": 1}, sec=10, nsec=5, meta={"m": 1})
        + event_classic({"b": 2}, event_time(11, 6))
        + event_classic({"c": 3}, 12)
        + event_classic({"d": 4}, 13.25)
    )
    events = events_of(chunk)
    assert [e.body for e in events] == [{"a": 1}, {"b": 2}, {"c": 3}, {"d": 4}]
    assert [tuple(e.time) for e in events] == [(10, 5), (11, 6), (12, 0), (13, 250_000_000)]
    assert events[0].metadata == {"m": 1}


def test_group_markers_are_skipped_not_reported():
    chunk = group_marker(True) + event_v2({"x": 1}) + group_marker(False)
    assert [e.body for e in events_of(chunk)] == [{"x": 1}]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (msgpack.packb(5), "not a [timestamp, record] pair"),
        (msgpack.packb([-1, {"a": 1}]), "invalid timestamp"),
        (msgpack.packb([1, [1, 2]]), "record body is not a map"),
        (msgpack.packb([[1, 2], {"a": 1}]), "header is not"),
        (
            b"\x92\x92\xd7\x00" + b"\0" * 8 + b"\x80\x81\xa1a" + b"\x91" * 2000 + b"\x01",
            "undecodable msgpack",
        ),
    ],
)
def test_bad_entries_keep_their_bytes_and_decoding_goes_on(raw, reason):
    chunk = event_v2({"before": 1}) + raw + event_v2({"after": 2})
    out = list(decode_chunk(chunk))
    assert isinstance(out[1], BadEntry)
    assert reason in out[1].reason
    assert out[1].raw == raw
    assert [e.body for e in out if isinstance(e, Event)] == [{"before": 1}, {"after": 2}]


def test_truncated_tail_is_reported():
    chunk = event_v2({"a": 1}) + event_v2({"b": 2})[:-2]
    out = list(decode_chunk(chunk))
    assert isinstance(out[-1], BadEntry)
    assert "truncated" in out[-1].reason


def test_encode_event_is_a_v2_event_with_event_time():
    raw = encode_event(1_700_000_000, 123, msgpack.packb({"k": "v"}))
    (ev,) = events_of(raw)
    assert ev.time == EventTime(1_700_000_000, 123)
    assert ev.body == {"k": "v"}


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=40)
    | st.binary(max_size=300),
    lambda kids: (
        st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=8), kids, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(values)
def test_skip_object_finds_the_end_of_any_object(obj):
    raw = msgpack.packb(obj)
    assert skip_object(memoryview(raw + b"\xc0"), 0) == len(raw)
    assert skip_object(memoryview(raw[:-1]), 0) is None or len(raw) == 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_raise_and_account_for_every_byte(data):
    covered = 0
    for entry in decode_chunk(data):
        if isinstance(entry, BadEntry):
            covered += len(entry.raw)
    assert covered <= len(data)
