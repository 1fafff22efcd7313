"""The option table as parser and validator: every bad key is named."""

from __future__ import annotations

import pytest

from flbsql.errors import ConfigError
from flbsql.options import CONSUMED_BY_FLUENT_BIT, OPTIONS
from flbsql.settings import parse, parse_duration, parse_size


def getter(values):
    low = {k.lower(): v for k, v in values.items()}
    return lambda key: low.get(key.lower())


def test_defaults_and_types():
    cfg = parse(
        "output",
        getter(
            {
                "url": "/tmp/x.db",
                "table": "logs",
                "pool.max_lifetime": "5m",
                "auto_create_table": "off",
                "unique_key": "a, b",
            }
        ),
    )
    assert cfg.table == "logs"
    assert cfg.pool_max_lifetime == 300.0
    assert cfg.pool_max_lifetime == 300.0
    assert cfg.auto_create_table is False
    assert cfg.unique_key == ("a", "b")
    assert cfg.statement_timeout == 60.0
    assert cfg.is_set("table") and not cfg.is_set("json_column")


@pytest.mark.parametrize(
    ("props", "key", "text"),
    [
        ({"pool.max_lifetime": "soon"}, "pool.max_lifetime", "duration"),
        ({"ssl_mode": "maybe"}, "ssl_mode", "allowed: disable"),
        ({"auto_create_table": "perhaps"}, "auto_create_table", "on/off"),
        ({"batch_rows": "-1"}, "batch_rows", ">= 0"),
        ({"table_name": "x"}, "table_name", "use 'table'"),
        ({"dsn": "x"}, "dsn", "use 'url'"),
        ({"pool_max_lifetime": "1s"}, "pool_max_lifetime", "use 'pool.max_lifetime'"),
        ({"query": "select 1"}, "query", "option of the input plugin"),
    ],
)
def test_bad_keys_fail_naming_the_key(props, key, text):
    with pytest.raises(ConfigError) as err:
        parse("output", getter({"url": "x.db", "table": "t", **props}))
    assert err.value.key == key
    assert text in str(err.value)


def test_secret_values_never_show():
    with pytest.raises(ConfigError) as err:
        parse("output", getter({"url": "x.db", "password": "hunter2", "ssl_mode": "bad"}))
    assert "hunter2" not in str(err.value)
    cfg = parse("output", getter({"url": "postgresql://u:pw@h/db", "password": "hunter2"}))
    assert "hunter2" not in repr(cfg) and "pw@" not in repr(cfg)


def test_option_table_is_consistent():
    names = [o.name for o in OPTIONS]
    assert len(names) == len(set(names))
    for opt in OPTIONS:
        assert opt.name not in CONSUMED_BY_FLUENT_BIT, opt.name
        assert not opt.name.startswith(("tls.", "net.", "storage.")), opt.name
        assert opt.description.strip()
        assert opt.type in {"str", "int", "float", "bool", "duration", "size", "list", "choice"}
        if opt.type == "choice":
            assert opt.default in opt.choices


@pytest.mark.parametrize(
    ("text", "seconds"), [("500ms", 0.5), ("5", 5.0), ("2m", 120.0), ("1h", 3600.0), ("1.5s", 1.5)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("text", "size"), [("4096", 4096), ("64k", 65536), ("8M", 8 << 20)])
def test_sizes(text, size):
    assert parse_size(text) == size
