"""Naive local times that a DST change repeats or skips, read by a documented rule."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from flbsql.input.encoding import RowEncoder
from flbsql.timestamps import local_time_rule, localize, to_event_time

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
UTC = dt.timezone.utc
REPEATED = dt.datetime(2026, 10, 25, 2, 30)  # clocks go back at 03:00 CEST
SKIPPED = dt.datetime(2026, 3, 29, 2, 30)  # clocks go forward at 02:00 CET


@pytest.mark.parametrize(
    ("rule", "repeated_utc", "skipped_utc"),
    [
        ("earlier", dt.datetime(2026, 10, 25, 0, 30), dt.datetime(2026, 3, 29, 1, 30)),
        ("later", dt.datetime(2026, 10, 25, 1, 30), dt.datetime(2026, 3, 29, 0, 30)),
        # PostgreSQL's own: SELECT '2026-10-25 02:30'::timestamp AT TIME ZONE 'Europe/Berlin'
        # gives 01:30 UTC, and '2026-03-29 02:30' gives 01:30 UTC (tests/integration checks it)
        ("postgresql", dt.datetime(2026, 10, 25, 1, 30), dt.datetime(2026, 3, 29, 1, 30)),
    ],
)
def test_each_rule(rule, repeated_utc, skipped_utc):
    assert localize(REPEATED, BERLIN, rule).astimezone(UTC) == repeated_utc.replace(tzinfo=UTC)
    assert localize(SKIPPED, BERLIN, rule).astimezone(UTC) == skipped_utc.replace(tzinfo=UTC)
    ordinary = dt.datetime(2026, 7, 1, 12, 0)
    assert localize(ordinary, BERLIN, rule).utcoffset() == dt.timedelta(hours=2)


def test_database_means_the_dialects_rule():
    assert local_time_rule("database", "postgresql") == "postgresql"
    assert local_time_rule("later", "postgresql") == "later"


def test_the_input_uses_the_rule_for_event_times_and_values():
    enc = RowEncoder(["t"], zone=BERLIN, time_column="t", local_rule="postgresql")
    sec, _ = to_event_time(REPEATED, BERLIN, "postgresql") or (0, 0)
    assert sec == int(dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC).timestamp())
    assert b"2026-10-25T02:30:00+01:00" in enc.encode([(REPEATED,)], 0.0)
