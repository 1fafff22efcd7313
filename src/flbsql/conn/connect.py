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
- ``oidc:`` references (``oidc.*`` set) are access tokens of one OpenID Connect client
  (:mod:`flbsql.secrets.oidc`); as ``user`` or ``password`` they are asked for on every
  connect (the token cache answers), and a login the database refuses drops the token.

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
    invalidate,
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
        """Register literal secrets for redaction; nothing is fetched here.

        Raises:
            ConfigError: the OIDC client secret would come from the Vault that logs in
                with the client's token (a circle).
        """
        self.cfg = cfg
        self.log = log
        self._vault: Any = None
        self._oidc: Any = None
        self._lock = threading.RLock()
        self.check_oidc()
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

                settings = VaultSettings.from_config(self.cfg)
                oidc = self._oidc_providers() if self._vault_uses_oidc() else {}
                self._vault = VaultClient(settings, self.log, oidc)
            return self._vault

    def oidc_client(self) -> Any:
        """The :class:`~flbsql.secrets.oidc.OidcClient` of the ``oidc.*`` options."""
        with self._lock:
            if self._oidc is None:
                if not self.cfg.oidc_issuer or not self.cfg.oidc_client_id:
                    raise ConfigError(
                        "oidc.issuer", "oidc: references need oidc.issuer and oidc.client_id"
                    )
                from flbsql.secrets.oidc import OidcClient, OidcSettings

                vault = {} if self._vault_uses_oidc() else self._vault_providers()
                try:
                    self._oidc = OidcClient(OidcSettings.from_config(self.cfg), self.log, vault)
                except SecretError as exc:
                    raise ConfigError("oidc.client_secret", str(exc)) from None
            return self._oidc

    def _vault_uses_oidc(self) -> bool:
        """Vault logs in with an ``oidc:`` token (given, or the default with oidc.issuer)."""
        jwt = self.cfg.vault_jwt or ("oidc:" if self.cfg.oidc_issuer else None)
        return self.cfg.vault_auth == "jwt" and isinstance(jwt, str) and jwt.startswith("oidc:")

    def _oidc_providers(self) -> dict[str, SecretProvider]:
        if not self.cfg.oidc_issuer:
            return {}
        from flbsql.secrets.oidc import OidcProvider

        return {"oidc": OidcProvider(self.oidc_client())}

    def _vault_providers(self) -> dict[str, SecretProvider]:
        if not self.cfg.vault_address:
            return {}
        from flbsql.secrets.vault import VaultProvider

        return {"vault": VaultProvider(self.vault_client())}

    def providers(self) -> dict[str, SecretProvider]:
        """The Vault and OIDC providers, for what is configured."""
        return {**self._vault_providers(), **self._oidc_providers()}

    def check_oidc(self) -> None:
        """At Init: an OIDC client secret read from a Vault that logs in with it is a circle."""
        if not self._vault_uses_oidc() or not self.cfg.vault_address:
            return
        for name in ("oidc.client_secret", "oidc.private_key"):
            raw = self.cfg.option(name)
            if isinstance(raw, str) and raw.startswith("vault:"):
                raise ConfigError(
                    name, "cannot be read from Vault while Vault logs in with an oidc: token"
                )

    def invalidate(self, name: str, refused: str | None) -> bool:
        """Option ``name`` gave ``refused`` and its consumer refused it: drop it from caches."""
        raw = self.cfg.option(name)
        if refused is None or not isinstance(raw, str) or not raw.startswith("oidc:"):
            return False
        return invalidate(raw, refused, self._oidc_providers())

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
        if ref.scheme == "oidc" and not (self.cfg.oidc_issuer and self.cfg.oidc_client_id):
            raise ConfigError(name, "an oidc: reference needs oidc.issuer and oidc.client_id")
        if ref.scheme in ("env", "file"):
            self.resolve(name)


def _is_oidc(value: object) -> bool:
    return isinstance(value, str) and value.startswith("oidc:")


class _StaticCredentials:
    """user/password references re-read at most every ``refresh`` seconds.

    An ``oidc:`` token is asked for on every call (the OIDC cache answers), and its
    failure is raised: the cache already kept the token while it was valid.
    """

    def __init__(self, resolver: SecretResolver, refresh: float = REFRESH_SECONDS) -> None:
        self.resolver = resolver
        self.refresh = refresh
        names = ("user", "password")
        self._tokens = [i for i, n in enumerate(names) if _is_oidc(resolver.cfg.option(n))]
        self._value: tuple[str | None, str | None] | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "StaticCredentials(user=***, password=***)"

    def release(self) -> None:
        """Nothing is leased."""

    def rejected(self, creds: tuple[str | None, str | None]) -> None:
        """The database refused ``creds``: an ``oidc:`` token is dropped and asked anew."""
        user, password = creds
        dropped_user = self.resolver.invalidate("user", user)
        if self.resolver.invalidate("password", password) or dropped_user:
            with self._lock:
                self._value = None

    def __call__(self) -> tuple[str | None, str | None]:
        with self._lock:
            now = time.monotonic()
            if self._value is None or now - self._at >= self.refresh:
                try:
                    self._value = (self.resolver.resolve("user"), self.resolver.resolve("password"))
                except SecretError as exc:
                    if self._value is None or self._tokens:
                        raise
                    self.resolver.log.warning("keeping the last credentials: %s", exc)
                self._at = now
            elif self._tokens:
                value = list(self._value)
                for i in self._tokens:
                    value[i] = self.resolver.resolve(("user", "password")[i])
                self._value = (value[0], value[1])
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
