"""Value conversion for typed columns: each type, and the reason a value is refused."""

from __future__ import annotations

import datetime as dt
import decimal

import msgpack
import pytest

from flbsql.errors import RecordError
from flbsql.events.codec import EventTime
from flbsql.output.convert import TimeConverter, converter, dumps, json_default, time_kind
from flbsql.timestamps import EpochMicros

UTC = dt.timezone.utc
PLUS2 = dt.timezone(dt.timedelta(hours=2))


def conv(ctype, *, nul_ok=True, json_bytes=False, kind="aware", zone=UTC, max_len=None):
    tconv = TimeConverter(kind, zone)
    return converter(ctype, nul_ok=nul_ok, json_bytes=json_bytes, tconv=tconv, max_len=max_len)


@pytest.mark.parametrize(
    ("ctype", "value", "expected"),
    [
        ("int", 42, 42),
        ("int", "-7", -7),
        ("int", 3.0, 3),
        ("int", True, 1),
        ("float", 2, 2.0),
        ("float", "1.5", 1.5),
        ("bool", 1, True),
        ("bool", "off", False),
        ("bool", " Yes ", True),
        ("decimal", "1.10", decimal.Decimal("1.10")),
        ("decimal", 3, decimal.Decimal(3)),
        ("bytes", b"\x00\x01", b"\x00\x01"),
        ("bytes", "é", "é".encode()),
        ("text", "plain", "plain"),
        ("text", 12, "12"),
        ("text", b"utf8", "utf8"),
        ("text", {"a": [1]}, '{"a":[1]}'),
        ("string", "s", "s"),
        ("json", {"b": b"\x01"}, '{"b":"AQ=="}'),
    ],
)
def test_each_type_converts(ctype, value, expected):
    out = conv(ctype)(value)
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize(
    ("ctype", "value", "reason"),
    [
        ("int", 4.5, "not an integer"),
        ("int", "abc", "not an integer"),
        ("int", 1 << 63, "out of the 64-bit range"),
        ("float", "x", "not a number"),
        ("float", True, "not a number"),
        ("bool", 2, "not a boolean"),
        ("bool", "maybe", "not a boolean"),
        ("decimal", "nan", "not a decimal"),
        ("decimal", "1,5", "not a decimal"),
        ("bytes", 5, "not bytes or text"),
        ("text", b"\xff", "not UTF-8"),
        ("text", "\ud800", "not valid UTF-8"),
        ("timestamp", "yesterday", "not an ISO 8601 time"),
        ("timestamp", -1, "negative epoch"),
        ("timestamp", [1], "not a time"),
    ],
)
def test_a_value_that_would_change_is_refused_with_a_reason(ctype, value, reason):
    with pytest.raises(ValueError, match=reason):
        conv(ctype)(value)


def test_nul_is_refused_only_where_the_database_cannot_store_it():
    assert conv("text")("a\x00b") == "a\x00b"
    with pytest.raises(ValueError, match="NUL"):
        conv("text", nul_ok=False)("a\x00b")
    with pytest.raises(ValueError, match="u0000"):
        conv("json", nul_ok=False)({"k": "a\x00"})
    assert conv("json", nul_ok=False)({"k": "a\\u0000"}) == '{"k":"a\\\\u0000"}'  # escaped text


def test_text_length_is_checked_when_asked():
    assert conv("string", max_len=3)("abc") == "abc"
    with pytest.raises(ValueError, match="longer than the column's 3"):
        conv("string", max_len=3)("abcd")


def test_json_as_bytes_for_bulk_paths_that_take_bytes():
    assert conv("json", json_bytes=True)({"a": 1}) == b'{"a":1}'


@pytest.mark.parametrize(
    ("db_type", "kind"),
    [
        ("timestamptz", "aware"),
        ("timestamp with time zone", "aware"),
        ("datetimeoffset", "aware"),
        ("timestamp without time zone", "naive"),
        ("DATETIME(6)", "naive"),
        ("date", "naive"),
        ("text", "text"),
        (None, "text"),
    ],
)
def test_time_kind_follows_the_column_type(db_type, kind):
    assert time_kind(db_type) == kind


def test_time_converter_kinds():
    sec, nsec = 1_700_000_000, 123_456_789
    aware = TimeConverter("aware", PLUS2)(sec, nsec)
    assert aware == dt.datetime(2023, 11, 14, 22, 13, 20, 123_456, tzinfo=UTC)
    naive = TimeConverter("naive", PLUS2)(sec, nsec)
    assert naive == dt.datetime(2023, 11, 15, 0, 13, 20, 123_456)  # wall time in the zone
    assert TimeConverter("text", UTC)(sec, 0) == "2023-11-14T22:13:20+00:00"
    assert TimeConverter("epoch", UTC)(sec, nsec) == EpochMicros(1_700_000_000_123_456)
    with pytest.raises(ValueError, match="past year 9999"):
        TimeConverter("epoch", UTC)(300_000_000_000, 0)


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "Asia/Kolkata", "America/St_Johns"])
def test_text_times_are_the_isoformat_of_the_datetime(zone):
    """The text kind builds no datetime per row; its strings are exactly isoformat()'s."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    tconv, naive = TimeConverter("text", tz), TimeConverter("naive_text", tz)
    # around a DST change (2024-03-31 01:00 UTC in Berlin), repeated seconds, sub-us nsec
    starts = [1_711_846_795, 0, 253_402_200_000, 1_700_000_000]
    for start in starts:
        for sec in (start, start, start + 1, start + 3600 * 2):
            for nsec in (0, 999, 1000, 123_456_789, 999_999_999):
                if sec >= 253_402_300_800:
                    continue
                when = dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=sec)
                local = when.astimezone(tz).replace(microsecond=nsec // 1000)
                assert tconv(sec, nsec) == local.isoformat()
                assert naive(sec, nsec) == str(local.replace(tzinfo=None))  # MySQL's text


def test_timestamp_values_in_records():
    to_time = conv("timestamp", kind="aware")
    expected = dt.datetime(2024, 5, 1, 12, 0, 0, 500_000, tzinfo=UTC)
    assert to_time("2024-05-01T12:00:00.5Z") == expected
    assert to_time("2024-05-01T14:00:00.5+02:00") == expected
    assert to_time(expected.timestamp()) == expected
    assert to_time(EventTime(int(expected.timestamp()), 500_000_000)) == expected
    naive_in_zone = conv("timestamp", kind="aware", zone=PLUS2)("2024-05-01T14:00:00.5")
    assert naive_in_zone == expected  # a time without offset is in time_zone


def test_dumps_keeps_msgpack_values_and_refuses_what_json_cannot_hold():
    assert dumps({1: "int key"}) == b'{"1":"int key"}'
    assert json_default(msgpack.ExtType(5, b"\x01")) == {"ext": 5, "data": "AQ=="}
    assert json_default(EventTime(1, 500_000_000)) == 1.5
    with pytest.raises(RecordError, match="not valid JSON"):
        dumps({"a": object()})
