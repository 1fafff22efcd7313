"""Many tables and shards without a database: options, names, the SQL each dialect gets."""

from __future__ import annotations

import pytest

from flbsql.dialects import get_dialect
from flbsql.errors import ConfigError
from flbsql.input.keyset import KeysetQuery
from flbsql.input.shard import Shard, parse_shard, shard_condition
from flbsql.input.spec import position_name, validate
from flbsql.input.tables import is_wildcard, join_name
from flbsql.options import MODES, options_for
from flbsql.settings import parse


def cfg(**props):
    base = {"url": "postgresql://u@h/app"}
    base.update({k.replace("__", "."): v for k, v in props.items()})
    low = {k.lower(): v for k, v in base.items()}
    return parse("input", lambda key: low.get(key.lower()))


@pytest.mark.parametrize(
    ("props", "key"),
    [
        ({"mode": "cdc", "tables": "public.t", "columns": "a,b"}, "columns"),
        ({"mode": "cdc", "tables": "public.t", "where": "a > 1"}, "where"),
        ({"mode": "cdc", "tables": "public.t", "shard": "0/2"}, "shard"),
        ({"mode": "cdc", "tables": "public.t", "key": "id"}, "key"),
        ({"table": "t", "slot": "s1"}, "slot"),
        ({"table": "t", "publication": "p"}, "publication"),
        ({"table": "t", "snapshot": "never"}, "snapshot"),
    ],
)
def test_an_option_the_mode_does_not_read_is_refused_by_name(props, key):
    with pytest.raises(ConfigError) as err:
        cfg(**props)
    assert err.value.key == key
    assert "only read in mode" in str(err.value)


def test_every_mode_only_option_is_an_input_option():
    assert set(MODES) <= set(options_for("input"))
    assert set(MODES.values()) == {"poll", "cdc"}


@pytest.mark.parametrize(
    ("props", "key"),
    [
        ({"table": "t", "tables": "a,b"}, "tables"),
        ({"tables": "a", "query": "SELECT * FROM t WHERE {position}", "key": "id"}, "query"),
        ({}, "table"),
        ({"query": "SELECT * FROM t WHERE {position}", "key": "id", "table_key": "t"}, "table_key"),
        ({"tables": "a,b", "table_key": " "}, "table_key"),
        ({"table": "t", "shard": "2"}, "shard"),
        ({"table": "t", "shard": "4/4"}, "shard"),
        ({"tables": 'a,"b'}, "tables"),
    ],
)
def test_poll_sources_are_checked_at_init(props, key):
    c = cfg(**props)
    with pytest.raises(ConfigError) as err:
        validate(c, get_dialect("postgresql"))
    assert err.value.key == key


def test_shard_parses_i_of_n_counted_from_zero():
    assert parse_shard("2/4") == Shard(2, 4)
    assert parse_shard(" 0 / 1 ") == Shard(0, 1)
    assert parse_shard(None) is None
    for bad in ("4/4", "-1/4", "1/0", "a/b", "1"):
        with pytest.raises(ConfigError, match="option 'shard'"):
            parse_shard(bad)


def test_shard_conditions_per_dialect():
    s = Shard(1, 4)
    pg = get_dialect("postgresql")
    assert shard_condition(pg, ["id"], s) == (
        'mod(mod(hashtextextended("id"::text, 0), 4) + 4, 4) = 1'
    )
    assert 'concat_ws(chr(31), "a"::text, "b"::text)' in shard_condition(pg, ["a", "b"], s)
    assert shard_condition(get_dialect("mysql"), ["a", "b"], s) == (
        "MOD(CRC32(CONCAT_WS(CHAR(31), `a`, `b`)), 4) = 1"
    )
    assert shard_condition(get_dialect("mssql"), ["id"], s) == (
        "(ABS(CAST(CHECKSUM([id]) AS BIGINT)) % 4) = 1"
    )
    assert shard_condition(get_dialect("oracle"), ["ID"], s).startswith("ORA_HASH(TO_CHAR(")
    with pytest.raises(ConfigError, match="not supported on sqlite"):
        shard_condition(get_dialect("sqlite"), ["id"], s)


def test_the_shard_is_in_every_statement_after_the_position_binds():
    pg = get_dialect("postgresql")
    q = KeysetQuery(pg, ["id"], table="t", shard="mod(x, 2) = 1")
    sql, params = q.page((5,), (9,), 10)
    assert sql.index("> %s") < sql.index("<= %s") < sql.index("(mod(x, 2) = 1)")
    assert params == [5, 9]
    assert "(mod(x, 2) = 1)" in q.newest()[0] and "(mod(x, 2) = 1)" in q.count(None, (9,))[0]
    # a format-style driver gets the modulo operator doubled
    ms = KeysetQuery(get_dialect("mysql"), ["id"], table="t", shard="a % 2 = 1")
    assert "a %% 2 = 1" in ms.page(None, (1,), 5)[0]


def test_position_names_keep_a_single_table_input_resumable():
    one = cfg(table="public.t")
    assert position_name(one, "app", "public.t", None) == "app/public.t"
    many = cfg(tables="public.t,public.u")
    assert position_name(many, "app", "public.t", None) == "app/public.t"
    named = cfg(tables="public.*", position_name="src")
    assert position_name(named, "app", "public.t", Shard(2, 4)) == "src/public.t#shard2"


def test_listed_names_split_back_into_their_parts():
    pg = get_dialect("postgresql")
    for schema, table in [("s", "t"), ("my.s", 'we"ird.t'), (None, "a.b")]:
        assert pg.split_name(join_name(schema, table)) == (schema, table)
    assert is_wildcard("sales.*") and is_wildcard(" * ") and not is_wildcard("sales.t")


def test_the_checker_names_an_option_of_the_other_mode(tmp_path):
    from flbsql.tools import check as checker

    conf = tmp_path / "bad.conf"
    conf.write_text(
        "[INPUT]\n    Name sql\n    url postgresql://u@h/app\n    mode cdc\n"
        "    tables public.t\n    where a > 1\n"
    )
    problems = checker.check_file(conf, connect=False)
    assert problems == [
        f"{conf}:1 [INPUT] sql: option 'where': only read in mode poll, and this input has "
        "mode cdc; remove it"
    ]
