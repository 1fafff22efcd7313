"""Table names per record, and change records (CDC and Debezium) read into one shape."""

from __future__ import annotations

import json

import pytest

from flbsql.dialects import get_dialect
from flbsql.errors import ConfigError, RecordError
from flbsql.output.changes import parse_change, position_text
from flbsql.output.routing import TableRouter

PG = get_dialect("postgresql")


def test_tag_parts_fields_prefix_schema_and_map():
    r = TableRouter("$TAG[1]", PG, prefix="raw_")
    assert r.resolve("app.web.x", {}) == (None, "raw_web")
    assert TableRouter("$TAG", PG).resolve("app.web", {}) == ("app", "web")
    r = TableRouter("$table", PG, schema="replica", mapping=["public.a=other.b"])
    assert r.resolve("t", {"table": "public.orders"}) == ("replica", "orders")
    assert r.resolve("t", {"table": "public.a"}) == ("other", "b")
    assert TableRouter("$table", PG, schema="none").resolve("t", {"table": "s.x"}) == (None, "x")
    assert TableRouter("logs_$TAG[0]_$kind", PG).resolve("a.b", {"kind": "k"}) == (None, "logs_a_k")
    assert not TableRouter("plain", PG).dynamic
    assert TableRouter.is_template("x_$TAG") and not TableRouter.is_template("x")


@pytest.mark.parametrize(
    ("template", "tag", "body", "why"),
    [
        ("$TAG[2]", "a.b", {}, "has no part 2"),
        ("$table", "t", {}, "no text field 'table'"),
        ("$table", "t", {"table": 5}, "no text field 'table'"),
        ("$TAG", "a.b.c", {}, "invalid table name 'a.b.c'"),
        ("$table", "t", {"table": "x" * 64}, "longer than 63 bytes"),
        ("$table", "t", {"table": "bad\x00"}, "invalid identifier"),
    ],
)
def test_refused_names_name_the_record_table(template, tag, body, why):
    with pytest.raises(RecordError, match="table") as exc:
        TableRouter(template, PG).resolve(tag, body)
    assert why in str(exc.value)


def test_bad_options_fail_at_init():
    with pytest.raises(ConfigError, match="table_map"):
        TableRouter("$table", PG, mapping=["nope"])
    with pytest.raises(ConfigError, match="table"):
        TableRouter("a.b.c", PG)


def test_cdc_record():
    ch = parse_change(
        {
            "op": "u",
            "table": "public.t",
            "lsn": "16/B374D848",
            "pos": 3,
            "snapshot": False,
            "before": {"id": 1},
            "after": {"id": 2},
        },
        "cdc",
    )
    assert ch is not None
    assert (ch.op, ch.table, ch.position, ch.floor) == (
        "u",
        "public.t",
        ((0x16 << 32) | 0xB374D848, 3),
        None,
    )
    snap = parse_change(
        {"op": "r", "table": "t", "lsn": "0/10", "pos": 9, "snapshot": True, "after": {}}, "cdc"
    )
    assert snap is not None and snap.position is None and snap.floor == 0x10
    with pytest.raises(RecordError):
        parse_change({"op": "x", "table": "t"}, "cdc")
    with pytest.raises(RecordError):
        parse_change({"op": "c", "table": "t", "lsn": "zz"}, "cdc")
    assert position_text((1, 2)) < position_text((1, 10)) < position_text((2, 0))


def test_debezium_positions_per_connector():
    def pos(source):
        ch = parse_change(
            {"op": "c", "after": {"id": 1}, "source": {"table": "t", **source}}, "debezium"
        )
        assert ch is not None
        return ch.position

    assert pos({"sequence": json.dumps(["100", "120"]), "lsn": 120}) == (100, 120)
    assert pos({"lsn": 120}) == (120, 0)
    assert pos({"file": "mysql-bin.000003", "pos": 154, "row": 1}) == (3, 154, 1)
    assert pos({"commit_lsn": "00000025:00000d98:0025", "change_lsn": "00000025:00000d98:0002"})[
        0
    ] == int("0000002500000d980025", 16)
    assert pos({"scn": "1000", "commit_scn": "1005"}) == (1005, 1000)
    assert pos({}) is None
    assert pos({"lsn": 5, "snapshot": "true"}) is None


def test_debezium_envelopes():
    event = {
        "op": "d",
        "before": {"id": 1},
        "after": None,
        "source": {"schema": "s", "table": "t", "name": "srv"},
    }
    for body in (event, {"schema": None, "payload": event}, {"payload": json.dumps(event)}):
        ch = parse_change(body, "auto")
        assert ch is not None and (ch.op, ch.table, ch.source) == ("d", "s.t", "srv")
    assert parse_change({"schema": None, "payload": None}, "debezium") is None  # tombstone
    assert parse_change({**event, "op": "m"}, "debezium") is None
    with pytest.raises(RecordError, match="not a Debezium change event"):
        parse_change({"hello": 1}, "debezium")
    with pytest.raises(RecordError, match="'x'"):
        parse_change({**event, "op": "x"}, "debezium")


@pytest.mark.parametrize("option", ["columns", "tag_column", "on_conflict"])
def test_append_options_are_refused_in_apply_mode(option):
    import logging
    from types import SimpleNamespace

    from flbsql.output.apply import Applier
    from flbsql.settings import parse

    value = {"columns": "a=b", "tag_column": "t", "on_conflict": "update"}[option]
    cfg = parse("output", {"url": "sqlite:///x.db", "apply": "cdc", option: value}.get)
    with pytest.raises(ConfigError, match=option):
        Applier(cfg, SimpleNamespace(dialect=get_dialect("sqlite")), logging.getLogger("t"))  # type: ignore[arg-type]
