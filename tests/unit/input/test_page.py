"""Page size and pacing of the poll reader."""

from __future__ import annotations

import datetime as dt

from flbsql.dialects.sqlite import SQLiteDialect
from flbsql.input.page import Pager
from flbsql.settings import parse


def pager(**props: str) -> Pager:
    cfg = parse("input", {"url": "sqlite:///x.db", "table": "t", **props}.get)
    return Pager(cfg, SQLiteDialect(), dt.timezone.utc, None)


def test_a_page_is_at_most_one_collect():
    p = pager(fetch_size="500", rows_per_collect="100", bytes_per_collect="1000000")
    assert p.page_rows() == 100
    p = pager(fetch_size="500", rows_per_collect="1000", bytes_per_collect="2000")
    assert p.page_rows() == 10  # 2000 bytes / 200 bytes a row (the first guess)


def test_pacing_waits_once_ahead_of_the_rate():
    p = pager(max_rows_per_second="100", fetch_size="500")
    assert p.page_rows() == 100
    assert p.pace(50) < 0.51
    assert 0.5 < p.pace(50) <= 1.0
    assert pager().pace(10_000) == 0.0  # unlimited
