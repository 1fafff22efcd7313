"""The two CDC connections resolve their URLs and credentials like the pool does."""

from __future__ import annotations

import logging

import pytest

from flbsql.cdc.worker import open_pg
from flbsql.errors import ConfigError
from flbsql.settings import InputConfig, parse


def _cfg(**props: str) -> InputConfig:
    low = {k.lower(): v for k, v in props.items()}
    return parse("input", lambda key: low.get(key.lower()))


def test_replication_url_has_its_own_credentials_and_main_keeps_user_and_password(monkeypatch):
    monkeypatch.setenv("FLBSQL_T_PW", "s3cret")
    cfg = _cfg(
        url="postgresql://app@db.example:5433/shop",
        password="env:FLBSQL_T_PW",
        mode="cdc",
        tables="public.orders",
        replication_url="postgresql://repl:rpw@replica.example/shop",
    )
    pg = open_pg(cfg, logging.getLogger("t"))
    assert (pg.params.host, pg.params.port, pg.params.user) == ("db.example", 5433, "app")
    assert pg.credentials is not None and pg.credentials()[1] == "s3cret"
    assert (pg.dec_params.host, pg.dec_params.user, pg.dec_params.password) == (
        "replica.example",
        "repl",
        "rpw",
    )
    assert pg.dec_credentials is None or pg.dec_credentials()[1] == "rpw"


def test_cdc_needs_postgresql():
    with pytest.raises(ConfigError, match="postgresql"):
        open_pg(_cfg(url="mysql://u@h/db", mode="cdc", tables="t"), logging.getLogger("t"))
