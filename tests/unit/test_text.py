"""Values in log lines look as an operator writes them, never as Python reprs."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

from flbsql.input.position import describe
from flbsql.text import show, show_bytes, show_tuple


def test_values_are_written_as_in_sql_not_as_python_reprs():
    tz = dt.timezone(dt.timedelta(hours=1))
    assert show(dt.datetime(2026, 10, 25, 2, 30, tzinfo=tz)) == "2026-10-25T02:30:00+01:00"
    assert show(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert show(decimal.Decimal("1.50")) == "1.50"
    assert show(None) == "NULL" and show("it's") == "'it''s'" and show(b"\x00\xff") == "\\x00ff"


def test_a_position_in_a_log_line():
    last = (dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), uuid.UUID(int=2), 7)
    text = describe(last)
    assert text == "(2026-01-01T00:00:00+00:00, 00000000-0000-0000-0000-000000000002, 7)"
    assert "datetime" not in text and "UUID" not in text
    assert describe(None) == "the beginning"
    assert show_tuple(("x" * 200,)).endswith("...)")


def test_sizes():
    assert show_bytes(None) == "unlimited"
    assert show_bytes(512) == "512 bytes"
    assert show_bytes(3 << 30) == "3.0 GiB"
