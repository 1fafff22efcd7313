"""From a validated config to a ready (lazy) connection pool."""

from __future__ import annotations

import logging

from flbsql.config import Config
from flbsql.dialects import get_dialect
from flbsql.errors import ConfigError
from flbsql.pool import Pool, PoolSettings
from flbsql.url import ConnectParams, parse_url

__all__ = ["connect_params", "open_pool"]


def connect_params(cfg: Config, url_option: str = "url") -> ConnectParams:
    """URL plus the connection options; secret references are resolved later."""
    url = cfg[url_option]
    if not url:
        raise ConfigError(url_option, "required (e.g. postgresql://user@host/db or a file path)")
    params = parse_url(url)
    return params.with_(
        user=cfg.user or params.user,
        connect_timeout=cfg.connect_timeout,
        statement_timeout=cfg.statement_timeout,
        ssl_mode=cfg.ssl_mode,
        ssl_ca=cfg.ssl_ca,
        ssl_cert=cfg.ssl_cert,
        ssl_key=cfg.ssl_key,
        password=cfg.password or params.password,
    )


def open_pool(cfg: Config, log: logging.Logger, url_option: str = "url") -> Pool:
    """A lazy pool: Init succeeds with the database down."""
    params = connect_params(cfg, url_option)
    return Pool(get_dialect(params.dialect), params, PoolSettings.from_config(cfg), log)
