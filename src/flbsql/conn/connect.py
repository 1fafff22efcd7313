"""From a validated config to a ready (lazy) connection pool.

Secret references (:mod:`flbsql.secrets`) are handled here:

- ``url`` and ``ssl_key`` are resolved at Init (``env:``/``file:``/``vault:``); the
  URL decides the dialect, so it cannot wait. A resolved ``ssl_key`` that holds PEM
  text (not a path) is written to a private temporary file for the driver.
- ``user`` and ``password``: ``env:`` and ``file:`` references are checked at Init
  (a typo fails Init, naming the option), ``vault:`` ones are not fetched until the
  first connect, so Init succeeds with Vault down, like with the database down.
  Afterwards they are read again at most every :data:`REFRESH_SECONDS` seconds, so
  a rotated secret file or KV value reaches new connections; when a read fails, the
  last good value is kept.
- ``vault.db_role`` makes user and password dynamic credentials of the database
  secrets engine (:class:`~flbsql.secrets.vault.DynamicCredentials`).

The instance logger gets a :class:`~flbsql.secrets.RedactingFilter`, so no value
resolved here (or any literal secret option) reaches Fluent Bit's log.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Any

from flbsql.conn.pool import Credentials, Pool, PoolSettings
from flbsql.conn.url import ConnectParams, parse_url
from flbsql.dialects import get_dialect
from flbsql.errors import ConfigError, SecretError
from flbsql.secrets import (
    RedactingFilter,
    SecretProvider,
    is_reference,
    parse_ref,
    register,
    resolve,
)

if TYPE_CHECKING:
    from flbsql.settings import Config

__all__ = [
    "REFRESH_SECONDS",
    "SecretResolver",
    "connect_params",
    "credentials_for",
    "open_pool",
    "resolve_connection",
    "with_credentials",
]

REFRESH_SECONDS = 60.0
_URL_OPTIONS = ("url", "replication_url")
# user names are shown in logs ("postgres" would otherwise mask "postgresql://")
_NOT_HIDDEN = ("user",)


class SecretResolver:
    """Resolves the secret options of one instance; builds the Vault client on demand."""

    def __init__(self, cfg: Config, log: logging.Logger) -> None:
        """Register literal secrets for redaction; nothing is fetched here."""
        self.cfg = cfg
        self.log = log
        self._vault: Any = None
        self._lock = threading.Lock()
        for field in cfg.SECRET:  # the option table's secret options
            name, value = cfg.NAMES[field], getattr(cfg, field)
            if not isinstance(value, str) or is_reference(value) or name in _NOT_HIDDEN:
                continue
            if name in _URL_OPTIONS:  # only a URL's password, not where it points
                with contextlib.suppress(ConfigError):
                    register(parse_url(value).password)
            else:
                register(value)

    def vault_client(self) -> Any:
        """The shared :class:`~flbsql.secrets.vault.VaultClient` (imports hvac)."""
        with self._lock:
            if self._vault is None:
                if not self.cfg.vault_address:
                    raise ConfigError(
                        "vault.address", "required by vault: references and vault.db_role"
                    )
                from flbsql.secrets.vault import VaultClient, VaultSettings

                self._vault = VaultClient(VaultSettings.from_config(self.cfg), self.log)
            return self._vault

    def providers(self) -> dict[str, SecretProvider]:
        """The Vault provider, when Vault is configured."""
        if not self.cfg.vault_address:
            return {}
        from flbsql.secrets.vault import VaultProvider

        return {"vault": VaultProvider(self.vault_client())}

    def resolve(self, name: str, value: str | None = None) -> str | None:
        """Resolve option ``name`` now; errors name the option, never the value."""
        raw = self.cfg.option(name) if value is None else value
        if raw is None or not is_reference(raw):
            return raw
        try:
            value = resolve(
                raw, self.providers(), hide=name not in _URL_OPTIONS and name not in _NOT_HIDDEN
            )
            if value and name in _URL_OPTIONS:
                with contextlib.suppress(ConfigError):
                    register(parse_url(value).password)
            return value
        except SecretError as exc:
            raise SecretError(f"option '{name}': {exc}") from None

    def check(self, name: str) -> None:
        """Validate a reference at Init; resolve env:/file: ones (cheap, local)."""
        raw = self.cfg.option(name)
        if raw is None or not is_reference(raw):
            return
        try:
            ref = parse_ref(raw)
        except SecretError as exc:
            raise SecretError(f"option '{name}': {exc}") from None
        if ref.scheme == "vault" and not self.cfg.vault_address:
            raise ConfigError(name, "a vault: reference needs vault.address")
        if ref.scheme in ("env", "file"):
            self.resolve(name)


class _StaticCredentials:
    """user/password references re-read at most every ``refresh`` seconds."""

    def __init__(self, resolver: SecretResolver, refresh: float = REFRESH_SECONDS) -> None:
        self.resolver = resolver
        self.refresh = refresh
        self._value: tuple[str | None, str | None] | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "StaticCredentials(user=***, password=***)"

    def release(self) -> None:
        """Nothing is leased."""

    def __call__(self) -> tuple[str | None, str | None]:
        with self._lock:
            now = time.monotonic()
            if self._value is None or now - self._at >= self.refresh:
                try:
                    self._value = (self.resolver.resolve("user"), self.resolver.resolve("password"))
                except SecretError as exc:
                    if self._value is None:
                        raise
                    self.resolver.log.warning("keeping the last credentials: %s", exc)
                self._at = now
            return self._value


def _materialize_key(value: str | None) -> str | None:
    """A PEM private key given as text becomes a 0600 temp file; a path stays a path."""
    if value is None or "-----BEGIN" not in value:
        return value
    fd, path = tempfile.mkstemp(prefix="flbsql-key-", suffix=".pem")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value.strip() + "\n")
    atexit.register(_unlink_quietly, path)
    return path


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def connect_params(
    cfg: Config, url_option: str = "url", resolver: SecretResolver | None = None
) -> ConnectParams:
    """URL plus the connection options, with ``url`` and ``ssl_key`` resolved."""
    resolver = resolver or SecretResolver(cfg, logging.getLogger("flbsql"))
    url = resolver.resolve(url_option)
    if not url:
        raise ConfigError(url_option, "required (e.g. postgresql://user@host/db or a file path)")
    params = parse_url(url)
    register(params.password)
    user, password = cfg.user, cfg.password
    return params.with_(
        user=None if is_reference(user) else (user or params.user),
        password=None if is_reference(password) else (password or params.password),
        connect_timeout=cfg.connect_timeout,
        statement_timeout=cfg.statement_timeout,
        ssl_mode=cfg.ssl_mode,
        ssl_ca=cfg.ssl_ca,
        ssl_cert=cfg.ssl_cert,
        ssl_key=_materialize_key(resolver.resolve("ssl_key")),
    )


def credentials_for(
    cfg: Config, log: logging.Logger, resolver: SecretResolver
) -> Credentials | None:
    """Where user and password come from on each connect; None: from ``params``.

    ``vault.db_role``: dynamic credentials (renewed, rotated when due); ``user`` or
    ``password`` references: re-read at most every :data:`REFRESH_SECONDS`.
    """
    if cfg.vault_db_role:
        from flbsql.secrets.dynamic import DynamicCredentials

        return DynamicCredentials(resolver.vault_client(), log)
    if is_reference(cfg.user) or is_reference(cfg.password):
        resolver.check("user")
        resolver.check("password")
        return _StaticCredentials(resolver)
    return None


def resolve_connection(
    cfg: Config,
    log: logging.Logger,
    url_option: str = "url",
    resolver: SecretResolver | None = None,
) -> tuple[ConnectParams, Credentials | None]:
    """What ``url_option`` connects with: params, and the credentials to ask on each connect.

    The one way the pool and CDC resolve secrets; the logger gets the redacting filter.
    """
    if not any(isinstance(f, RedactingFilter) for f in log.filters):
        log.addFilter(RedactingFilter())
    resolver = resolver or SecretResolver(cfg, log)
    params = connect_params(cfg, url_option, resolver)
    return params, credentials_for(cfg, log, resolver)


def with_credentials(
    params: ConnectParams, creds: tuple[str | None, str | None] | None
) -> ConnectParams:
    """``params`` with the user and password a credential source gave (if any)."""
    if creds is None:
        return params
    user, password = creds
    return params.with_(user=user or params.user, password=password or params.password)


def open_pool(cfg: Config, log: logging.Logger, url_option: str = "url") -> Pool:
    """A lazy pool: Init succeeds with the database (and Vault) down."""
    params, credentials = resolve_connection(cfg, log, url_option)
    return Pool(
        get_dialect(params.dialect), params, PoolSettings.from_config(cfg), log, credentials
    )
