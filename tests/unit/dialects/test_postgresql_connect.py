"""What the PostgreSQL dialect hands libpq."""

from __future__ import annotations

from flbsql.conn.url import parse_url
from flbsql.dialects import get_dialect


def _kw(url: str) -> dict[str, object]:
    d = get_dialect("postgresql")
    return d.connect_kwargs(parse_url(url))  # type: ignore[attr-defined, no-any-return]


def test_url_options_are_merged_with_the_plugins_statement_timeout():
    kw = _kw("postgresql://u@db/app?options=-c%20search_path%3Dlogs")
    # both reach the server; the plugin's statement_timeout is no longer replaced (0 = unlimited)
    assert kw["options"] == "-c statement_timeout=60000 -c search_path=logs"


def test_a_statement_timeout_in_the_url_options_wins_because_it_comes_last():
    kw = _kw("postgresql://u@db/app?options=-c%20statement_timeout%3D5s")
    assert kw["options"] == "-c statement_timeout=60000 -c statement_timeout=5s"


def test_other_url_keywords_pass_through():
    kw = _kw("postgresql://u@db/app?application_name=etl&sslmode=require")
    assert kw["application_name"] == "etl" and kw["options"] == "-c statement_timeout=60000"
