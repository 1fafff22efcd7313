"""The documented type mapping and event times (no database server)."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
import zoneinfo

import pytest

from flbsql.errors import ConfigError
from flbsql.events.chunk import decode_chunk
from flbsql.input.encoding import RowEncoder
from flbsql.timestamps import parse_zone, to_event_time

UTC = dt.timezone.utc
PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def _decode(data):
    return list(decode_chunk(data))


def test_every_documented_type():
    names = ["i", "f", "d", "ts", "naive", "day", "t", "b", "u", "j", "arr", "flag", "n", "iv"]
    u = uuid.uuid4()
    row = (
        7,
        1.5,
        decimal.Decimal("0.10000000000000000001"),
        dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        dt.datetime(2024, 1, 15, 8, 30, 0, 5),
        dt.date(2024, 5, 1),
        dt.time(1, 2, 3),
        memoryview(b"\x00\x01"),
        u,
        {"a": [1, {"b": None}]},
        [dt.date(2024, 1, 1), None],
        True,
        None,
        dt.timedelta(minutes=1, seconds=1.5),
    )
    enc = RowEncoder(names, zone=PARIS)
    [ev] = _decode(enc.encode([row], 1_700_000_000.25))
    assert ev.time == (1_700_000_000, 250_000_000)
    assert ev.body == {
        "i": 7,
        "f": 1.5,
        "d": "0.10000000000000000001",
        "ts": "2024-05-01T12:00:00+02:00",
        "naive": "2024-01-15T08:30:00.000005+01:00",
        "day": "2024-05-01",
        "t": "01:02:03",
        "b": b"\x00\x01",
        "u": str(u),
        "j": {"a": [1, {"b": None}]},
        "arr": ["2024-01-01", None],
        "flag": True,
        "n": None,
        "iv": 61.5,
    }


def test_decimal_as_float_json_text_utc_kind_and_hidden_columns():
    enc = RowEncoder(
        ["id", "doc", "created", "price"],
        zone=PARIS,
        decimal_float=True,
        hidden=["id"],
        kinds={"DOC": "json", "created": "utc"},
    )
    [ev] = _decode(
        enc.encode([(1, '{"k": [1, 2]}', dt.datetime(2024, 1, 1), decimal.Decimal("2.5"))], 0.0)
    )
    assert ev.body == {"doc": {"k": [1, 2]}, "created": "2024-01-01T00:00:00+00:00", "price": 2.5}
    [ev] = _decode(enc.encode([(2, "not json", None, None)], 0.0))
    assert ev.body["doc"] == "not json"


def test_time_column_gives_the_event_time_and_falls_back_to_ingest_time():
    enc = RowEncoder(["id", "at"], zone=UTC, time_column="AT")
    rows = [(1, dt.datetime(2024, 1, 1, tzinfo=UTC)), (2, None), (3, 1_600_000_000.5)]
    evs = _decode(enc.encode(rows, 1_700_000_000.0))
    assert [e.time for e in evs] == [
        (1_704_067_200, 0),
        (1_700_000_000, 0),
        (1_600_000_000, 500_000_000),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.datetime(1970, 1, 1, 0, 0, 1, 5), (1, 5000)),
        (dt.datetime(2024, 7, 1, 2, 0), (1_719_792_000, 0)),  # Paris summer time: UTC+2
        (dt.date(2024, 1, 1), (1_704_063_600, 0)),  # midnight in Paris = 23:00 UTC
        (1_700_000_000, (1_700_000_000, 0)),
        (decimal.Decimal("1.25"), (1, 250_000_000)),
        ("2024-01-01T00:00:00Z", (1_704_067_200, 0)),
        ("2024-01-01 01:00:00", (1_704_067_200, 0)),
        ("garbage", None),
        (None, None),
        (-5, None),
        (True, None),
        (dt.datetime(1960, 1, 1, tzinfo=UTC), None),
        (float("nan"), None),
    ],
)
def test_event_time_conversions(value, expected):
    if isinstance(value, dt.datetime) and value.year == 1970:
        value = value.replace(tzinfo=UTC)
    assert to_event_time(value, PARIS) == expected


def test_zones():
    assert parse_zone("UTC") is UTC
    assert parse_zone("+05:30").utcoffset(None) == dt.timedelta(hours=5, minutes=30)
    assert parse_zone("Europe/Paris") == PARIS
    with pytest.raises(ConfigError, match="time_zone"):
        parse_zone("Mars/Olympus")
