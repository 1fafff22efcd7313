"""Record -> row: the output's mapping, without a database."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from flbsql.dialects import get_dialect
from flbsql.errors import ConfigError, RecordError
from flbsql.output.mapping import ColumnSpec, Mapper, parse_columns
from flbsql.settings import parse


def _cfg(**props: str) -> Any:
    values = {"url": "sqlite:///:memory:", "table": "logs", **props}
    low = {k.lower(): v for k, v in values.items()}
    return parse("output", lambda key: low.get(key.lower()))


def _mapper(dialect: str = "sqlite", **props: str) -> Mapper:
    return Mapper(_cfg(**props), get_dialect(dialect))


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


TYPES = {"tag": "varchar(255)", "time": "text", "data": "text"}


def _bound(types: dict[str, str] | None = None, **props: str) -> Mapper:
    m = _mapper(**props)
    m.bind({**TYPES, **(types or {})})
    return m


def _event(body, sec=1_700_000_000, nsec=0, index=0):
    return (sec, nsec, body, index)


def test_default_shape_is_tag_time_and_the_record_as_json():
    m = _bound()
    assert m.columns == ["tag", "time", "data"]
    rows, where, bad = m.rows("app", [_event({"msg": "hi", "n": 1}, nsec=250_000_000)])
    assert bad == [] and where == [0]
    assert rows == [("app", "2023-11-14T22:13:20.250000+00:00", '{"msg":"hi","n":1}')]


def test_columns_take_nested_keys_and_the_rest_overflows_to_json():
    m = _bound(
        columns="level=level:string(16), status=http.status:int, path=http.path",
        types={"level": "varchar(16)", "status": "integer", "path": "text"},
    )
    assert m.columns == ["tag", "time", "level", "status", "path", "data"]
    body = {"level": "warn", "http": {"status": "404", "path": "/x", "ms": 3}, "host": "h"}
    rows, _, bad = m.rows("t", [_event(body)])
    assert bad == []
    assert rows[0][2:] == ("warn", 404, "/x", '{"http":{"ms":3},"host":"h"}')
    assert body["http"] == {"status": "404", "path": "/x", "ms": 3}  # the record is not changed


def test_json_is_null_when_every_key_went_to_a_column_and_missing_keys_are_null():
    m = _bound(columns="a=a:int, b=x.b", types={"a": "integer", "b": "text"})
    rows, _, _ = m.rows("t", [_event({"a": 1, "x": {"b": "y"}}), _event({"other": True})])
    assert rows[0][2:] == (1, "y", None)
    assert rows[1][2:] == (None, None, '{"other":true}')


def test_tag_time_and_json_can_each_be_none():
    m = _bound(
        tag_column="none", time_column="none", json_column="none", columns="msg=msg", types={}
    )
    assert m.columns == ["msg"]
    assert m.coldefs() == [("msg", "TEXT")]
    rows, _, _ = m.rows("t", [_event({"msg": "m", "x": 1})])
    assert rows == [("m",)]
    with pytest.raises(ConfigError, match="no column left"):
        _mapper(tag_column="none", time_column="None", json_column="none")


def test_a_value_that_does_not_convert_is_that_records_error_naming_the_column():
    m = _bound(columns="code=code:int", types={"code": "integer"})
    events = [_event({"code": 1}), _event({"code": "abc"}), _event({"code": 2})]
    rows, where, bad = m.rows("t", events)
    assert where == [0, 2] and [r[2] for r in rows] == [1, 2]
    [(pos, err)] = bad
    assert pos == 1 and isinstance(err, RecordError)
    assert "column 'code'" in str(err) and "not an integer" in str(err)


def test_a_time_past_year_9999_names_the_time_column():
    m = _bound()
    _, _, bad = m.rows("t", [_event({"a": 1}, sec=300_000_000_000)])
    [(_, err)] = bad
    assert "column 'time'" in str(err)


@pytest.mark.parametrize(
    ("columns", "match"),
    [
        ("a", "expected column=key.path"),
        ("a=b:nope", "unknown type 'nope'"),
        ("a=b..c", "empty part"),
        ("a=b, a=c", "mapped twice"),
        ("tag=x", "used twice"),
    ],
)
def test_a_bad_columns_option_names_the_entry(columns, match):
    with pytest.raises(ConfigError, match=match):
        _mapper(columns=columns)


def test_parse_columns_reads_type_and_length():
    assert parse_columns(["a = x.y : string(64)", "b=z"]) == [
        ColumnSpec("a", ("x", "y"), "string", 64),
        ColumnSpec("b", ("z",), "text", None),
    ]


def test_coldefs_use_the_dialect_types_and_bound_key_text():
    m = _mapper(columns="k=k, n=n:string(32)")
    pg = _mapper("postgresql", columns="k=k, n=n:string(32)")
    assert dict(pg.coldefs(key=["k"])) == {
        "tag": "TEXT",  # never narrower than the data
        "time": "TIMESTAMPTZ",
        "k": "TEXT",  # PostgreSQL indexes unbounded text
        "n": "VARCHAR(32)",
        "data": "JSONB",
    }
    assert dict(m.coldefs())["k"] == "TEXT"
    my = _mapper("mysql", columns="k=k, n=n:string(32)")
    assert dict(my.coldefs(key=["k", "n"]))["k"] == "VARCHAR(768)"  # the widest a key takes
    assert dict(my.coldefs(key=["k", "n"]))["n"] == "VARCHAR(32)"  # the user's own length


def test_sqlite_checks_varchar_lengths_the_server_would_not():
    m = _bound(columns="s=s:string(3)", types={"s": "varchar(3)"})
    _, where, bad = m.rows("t", [_event({"s": "abc"}), _event({"s": "abcd"})])
    assert where == [0]
    assert "longer than the column's 3" in str(bad[0][1])
