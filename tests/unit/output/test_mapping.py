"""Record -> row: the output's mapping, without a database."""

from __future__ import annotations

import datetime as dt

import pytest

from flbsql.dialects import get_dialect
from flbsql.errors import ConfigError
from flbsql.output.mapping import Mapper
from flbsql.settings import parse


def _mapper(**props: str) -> Mapper:
    values = {"url": "sqlite:///:memory:", "table": "logs", **props}
    low = {k.lower(): v for k, v in values.items()}
    cfg = parse("output", lambda key: low.get(key.lower()))
    return Mapper(cfg, get_dialect("sqlite"))


def test_an_offset_time_zone_is_the_same_zone_as_for_the_input():
    # the output used its own zone parser, which refused "+05:30" (the input took it)
    m = _mapper(time_zone="+05:30", columns="at=when:timestamp")
    m.bind({"at": "TIMESTAMP", "time": "TIMESTAMP", "tag": "TEXT", "json": "TEXT"})
    rows, where, bad = m.rows("t", [(0, 0, {"when": "2026-01-01T00:00:00Z"}, 0)])
    assert bad == [] and where == [0]
    assert m.zone.utcoffset(None) == dt.timedelta(hours=5, minutes=30)
    assert dt.datetime(2026, 1, 1, 5, 30) in rows[0]


def test_an_unknown_time_zone_names_the_option():
    with pytest.raises(ConfigError, match="time_zone"):
        _mapper(time_zone="Mars/Olympus")
