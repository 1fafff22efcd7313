"""HashiCorp Vault / OpenBao through hvac: login, KV reads, dynamic database credentials.

The only module that imports hvac (and only when a ``vault:`` reference or
``vault.db_role`` is configured). Nothing talks to Vault at Init: like the
database, Vault may be down when Fluent Bit starts.

Login (``vault.auth``): ``token`` (``vault.token``, default env ``VAULT_TOKEN``;
renewed with renew-self when renewable), ``approle`` (``vault.role_id`` +
``vault.secret_id``), ``kubernetes`` (``vault.role`` + the service-account token
file) and ``jwt`` (``vault.role`` + ``vault.jwt``: ``oidc:``, a token of the
``oidc.*`` client fetched from the identity provider itself, which is the default when
``oidc.issuer`` is set; or ``file:/path`` that something else keeps fresh). The
secret options accept ``env:``, ``file:`` and ``oidc:`` references. A JWT login
refused with an ``oidc:`` token is tried once more with a new token. Logins are repeated when
the token reaches ``vault.renew_before`` of its life, and once after a 403.

Dynamic credentials (``vault.db_role``): one lease at a time. When the lease has
``renew_before`` of its life left it is renewed, as long as Vault grants a full
TTL again; once ``max_ttl`` caps the renewal (or the lease is not renewable) new
credentials are read instead (a rotation). The pool compares the credentials on
every checkout, so new connections use the new ones and the old connections are
retired at their next checkout, after the transaction they were running. The old
lease is left to expire on its own, which is after the last old connection is
gone. Nothing here runs on a background thread: the work is done lazily by the
checkout that finds it due.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from typing import TYPE_CHECKING, Any, TypeVar

import hvac
import hvac.exceptions
import requests

from flbsql.errors import SecretError
from flbsql.secrets import SecretRef, invalidate, register, resolve

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable

    from flbsql.secrets import SecretProvider
    from flbsql.settings import Config

__all__ = ["VaultClient", "VaultProvider", "VaultSettings"]

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class VaultSettings:
    """The ``vault.*`` options (secret ones hold references or literals, never shown)."""

    address: str
    namespace: str | None = None
    auth: str = "token"
    auth_mount: str | None = None
    token: str | None = dataclasses.field(default=None, repr=False)
    role_id: str | None = dataclasses.field(default=None, repr=False)
    secret_id: str | None = dataclasses.field(default=None, repr=False)
    role: str | None = None
    jwt: str | None = dataclasses.field(default=None, repr=False)
    kubernetes_token_file: str = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    ca_file: str | None = None
    skip_verify: bool = False
    db_role: str | None = None
    db_mount: str = "database"
    renew_before: float = 0.33
    timeout: float = 30.0

    @classmethod
    def from_config(cls, cfg: Config) -> VaultSettings:
        """Read the ``vault.*`` options of a :class:`~flbsql.settings.Config`."""
        return cls(
            address=cfg.vault_address or "",
            namespace=cfg.vault_namespace,
            auth=cfg.vault_auth,
            auth_mount=cfg.vault_auth_mount,
            token=cfg.vault_token,
            role_id=cfg.vault_role_id,
            secret_id=cfg.vault_secret_id,
            role=cfg.vault_role,
            jwt=cfg.vault_jwt or ("oidc:" if cfg.oidc_issuer else None),
            kubernetes_token_file=cfg.vault_kubernetes_token_file,
            ca_file=cfg.vault_ca_file,
            skip_verify=cfg.vault_skip_verify,
            db_role=cfg.vault_db_role,
            db_mount=cfg.vault_db_mount,
            renew_before=min(max(cfg.vault_renew_before, 0.05), 0.9),
            timeout=min(float(cfg.statement_timeout), 30.0),
        )


def _describe(exc: BaseException) -> str:
    """A short, value-free description of an hvac/requests failure."""
    if isinstance(exc, requests.RequestException):
        return f"{type(exc).__name__} (Vault unreachable)"
    errors = getattr(exc, "errors", None)
    text = "; ".join(str(e) for e in errors) if errors else str(exc).split("\n", 1)[0]
    return f"{type(exc).__name__}: {text[:300]}"


class VaultClient:
    """An hvac client that logs in lazily and keeps its token fresh."""

    def __init__(
        self,
        settings: VaultSettings,
        log: logging.Logger,
        providers: dict[str, SecretProvider] | None = None,
    ) -> None:
        """No network here; ``providers`` resolve the login secrets (``oidc:``)."""
        self.settings = settings
        self.log = log
        self.providers = providers or {}
        verify: bool | str = settings.ca_file or not settings.skip_verify
        self._client = hvac.Client(
            url=settings.address,
            namespace=settings.namespace,
            verify=verify,
            timeout=settings.timeout,
        )
        self._lock = threading.RLock()
        self._logged_in = False
        self._refresh_at = 0.0  # monotonic; 0 = never (token without expiry)
        self.token_expires = 0.0  # monotonic; 0 = never
        self.logins = 0

    def __repr__(self) -> str:
        return f"VaultClient({self.settings.address}, auth={self.settings.auth})"

    # -- login ---------------------------------------------------------------------------

    def _secret(self, value: str | None, what: str) -> str:
        if value is None:
            raise SecretError(f"vault.auth {self.settings.auth} needs {what}")
        result = resolve(value, self.providers)  # env:/file:/oidc:, re-read at each login
        if not result:
            raise SecretError(f"{what} is empty")
        return result

    def _role(self) -> str:
        if not self.settings.role:
            raise SecretError(f"vault.auth {self.settings.auth} needs vault.role")
        return self.settings.role

    def _login(self) -> None:
        s = self.settings
        auth = self._client.auth
        mount = s.auth_mount
        if s.auth == "token":
            token = self._secret(
                s.token or os.environ.get("VAULT_TOKEN"), "vault.token (or env VAULT_TOKEN)"
            )
            self._client.token = token
            info = auth.token.lookup_self()["data"]
            ttl, renewable = int(info.get("ttl") or 0), bool(info.get("renewable"))
            if renewable and ttl and self.logins:
                ttl = int(auth.token.renew_self()["auth"]["lease_duration"])
        else:
            if s.auth == "approle":
                resp = auth.approle.login(
                    role_id=self._secret(s.role_id, "vault.role_id"),
                    secret_id=self._secret(s.secret_id, "vault.secret_id"),
                    mount_point=mount or "approle",
                )
            elif s.auth == "kubernetes":
                resp = auth.kubernetes.login(
                    role=self._role(),
                    jwt=self._secret(
                        "file:" + s.kubernetes_token_file, "vault.kubernetes_token_file"
                    ),
                    mount_point=mount or "kubernetes",
                )
            elif s.auth == "jwt":
                resp = self._jwt_login(mount or "jwt")
            else:  # pragma: no cover - the option is a choice
                raise SecretError(f"unknown vault.auth {s.auth}")
            ttl = int(resp["auth"].get("lease_duration") or 0)
            self._client.token = resp["auth"]["client_token"]
        register(self._client.token)
        self.logins += 1
        self._logged_in = True
        now = time.monotonic()
        self._refresh_at = now + ttl * (1 - s.renew_before) if ttl else 0.0
        self.token_expires = now + ttl if ttl else 0.0
        self.log.info(
            "vault: logged in to %s with %s auth (token ttl %s)",
            s.address,
            s.auth,
            f"{ttl}s" if ttl else "none: it does not expire",
        )

    def _jwt_login(self, mount: str) -> Any:
        """JWT login; a token refused by Vault is dropped from its cache and asked anew once."""
        role = self._role()
        for attempt in (1, 2):
            jwt = self._secret(self.settings.jwt, "vault.jwt")
            try:
                return self._client.auth.jwt.jwt_login(role=role, jwt=jwt, path=mount)
            except (
                hvac.exceptions.InvalidRequest,
                hvac.exceptions.Forbidden,
                hvac.exceptions.Unauthorized,
            ) as exc:
                if attempt == 2 or not invalidate(self.settings.jwt, jwt, self.providers):
                    raise
                self.log.info("vault: jwt login refused the token (%s); a new one", _describe(exc))
        raise AssertionError("unreachable")  # pragma: no cover

    def token_times(self) -> tuple[float, float] | None:
        """When the current Vault token expires and is replaced (monotonic), if it expires.

        Vault revokes the leases a token made when it expires, so a lease lives no longer.
        """
        return (self.token_expires, self._refresh_at) if self.token_expires else None

    def _ensure_login(self) -> None:
        if not self._logged_in or (self._refresh_at and time.monotonic() >= self._refresh_at):
            self._login()

    def call(self, what: str, fn: Callable[[Any], T]) -> T:
        """Run ``fn(hvac_client)`` logged in; one re-login after a 403.

        Raises:
            SecretError: Vault is unreachable or refused; the text never holds a value.
        """
        with self._lock:
            for attempt in (1, 2):
                try:
                    self._ensure_login()
                    return fn(self._client)
                except hvac.exceptions.Forbidden as exc:  # noqa: PERF203
                    if attempt == 2:
                        raise SecretError(f"vault {what}: {_describe(exc)}") from None
                    self._logged_in = False  # token expired or revoked: log in again
                except (hvac.exceptions.VaultError, requests.RequestException) as exc:
                    raise SecretError(f"vault {what}: {_describe(exc)}") from None
                except (KeyError, TypeError) as exc:
                    raise SecretError(f"vault {what}: unexpected answer ({exc})") from None
        raise AssertionError("unreachable")  # pragma: no cover

    # -- reads ---------------------------------------------------------------------------

    def read_kv(self, ref: SecretRef) -> str:
        """One field of a KV v1 or v2 secret (see :mod:`flbsql.secrets`)."""
        params = {"version": ref.version} if ref.version is not None else None

        def read(client: Any) -> Any:
            return client.adapter.get(f"/v1/{ref.target}", params=params)

        resp = self.call(f"read {ref.target}", read)
        data = (resp or {}).get("data") if isinstance(resp, dict) else None
        if not isinstance(data, dict):
            raise SecretError(f"vault: no secret at {ref.target}")
        if isinstance(data.get("data"), dict) and isinstance(data.get("metadata"), dict):
            data = data["data"]  # KV v2
        if ref.field not in data:
            raise SecretError(f"vault: secret {ref.target} has no field '{ref.field}'")
        value = data[ref.field]
        return value if isinstance(value, str) else str(value)


class VaultProvider:
    """``vault:<path>#<field>`` references through a :class:`VaultClient`."""

    scheme = "vault"

    def __init__(self, client: VaultClient) -> None:
        """Share one logged-in client."""
        self.client = client

    def get(self, ref: SecretRef) -> str:
        """Read the KV field."""
        if "/creds/" in f"/{ref.target}/":
            raise SecretError(
                f"'{ref}' is a dynamic-credentials path: set vault.db_role "
                "instead, so that user and password come from one lease"
            )
        return self.client.read_kv(ref)
