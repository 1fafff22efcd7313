"""Dynamic database credentials from Vault's database secrets engine (``vault.db_role``).

A lease is read on first use, renewed while renewable, and replaced by a new one
before it expires, or before the Vault token that read it is replaced (Vault revokes
a token's leases when the token expires: short-lived tokens, e.g. from a JWT login
with an OIDC token, bound the lease); a failed refresh keeps the current credentials
while they are still valid. The pool calls :class:`DynamicCredentials` on every connect, which is
how rotated credentials reach new connections.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import TYPE_CHECKING, Any

from flbsql.errors import SecretError
from flbsql.secrets import register

if TYPE_CHECKING:
    import logging

    from flbsql.secrets.vault import VaultClient

__all__ = ["DynamicCredentials"]


@dataclasses.dataclass
class Lease:
    """One lease of database credentials and when to refresh it."""

    lease_id: str = dataclasses.field(repr=False)
    username: str = dataclasses.field(repr=False)
    password: str = dataclasses.field(repr=False)
    ttl: float  # as granted at creation
    renewable: bool
    expires: float  # monotonic
    refresh_at: float  # monotonic
    login: int = 0  # the Vault login that made it: its token's end revokes it


class DynamicCredentials:
    """``(user, password)`` from the database secrets engine, renewed and rotated.

    Call it for the current credentials; it renews or rotates first when due.
    ``counters`` has ``leases`` (credentials read), ``renewals`` and ``failures``.
    """

    def __init__(self, client: VaultClient, log: logging.Logger) -> None:
        """Nothing is read until the first call."""
        s = client.settings
        if not s.db_role:
            raise SecretError("vault.db_role is not set")
        self.client = client
        self.log = log
        self.mount = s.db_mount
        self.role = s.db_role
        self.renew_before = s.renew_before
        self._lease: Lease | None = None
        self._lock = threading.Lock()
        self.counters = {"leases": 0, "renewals": 0, "failures": 0, "revoked": 0}

    def __repr__(self) -> str:
        return f"DynamicCredentials({self.mount}/creds/{self.role})"

    def __call__(self) -> tuple[str, str]:
        """The credentials to connect with now."""
        with self._lock:
            now = time.monotonic()
            lease = self._lease
            if lease is None or now >= lease.refresh_at:
                try:
                    self._refresh(lease, now)
                except SecretError:
                    self.counters["failures"] += 1
                    if lease is None or time.monotonic() >= lease.expires:
                        raise
                    retry = min(5.0, max(0.5, (lease.expires - now) / 4))
                    lease.refresh_at = time.monotonic() + retry
                    self.log.warning(
                        "vault: cannot refresh database credentials; the "
                        "current ones stay valid for %.0fs, retrying in %.1fs",
                        lease.expires - now,
                        retry,
                    )
            assert self._lease is not None
            return self._lease.username, self._lease.password

    def release(self) -> None:
        """Revoke the current lease (at shutdown): Vault drops its database user now.

        Otherwise the user lives on until its TTL ends. Called after the pool closed
        its connections; a failure is logged, never raised (the lease still expires).
        """
        with self._lock:
            lease, self._lease = self._lease, None
        if lease is None or not lease.lease_id:
            return

        def revoke(client: Any) -> Any:
            return client.sys.revoke_lease(lease_id=lease.lease_id)

        try:
            self.client.call("revoke database lease", revoke)
        except SecretError as exc:
            self.log.warning(
                "vault: cannot revoke the lease of database user %s (%s); it ends with its TTL",
                lease.username,
                exc,
            )
            return
        self.counters["revoked"] += 1
        self.log.info("vault: revoked the lease of database user %s", lease.username)

    def _times(self, granted: float, now: float) -> tuple[float, float]:
        return now + granted, now + granted * (1 - self.renew_before)

    def _refresh(self, lease: Lease | None, now: float) -> None:
        self.client.call("login", lambda _client: None)  # a due re-login first
        if (
            lease is not None
            and lease.renewable
            and now < lease.expires
            and lease.login == self.client.logins  # else its token is about to end
        ):
            granted = self._renew(lease)
            if granted >= lease.ttl:  # a full TTL again: keep these credentials
                lease.expires, lease.refresh_at = self._times(granted, now)
                self.counters["renewals"] += 1
                self.log.debug("vault: renewed database lease for %ss", granted)
                return
        self._rotate(now)

    def _renew(self, lease: Lease) -> float:
        def renew(client: Any) -> Any:
            return client.sys.renew_lease(lease_id=lease.lease_id, increment=int(lease.ttl))

        try:
            resp = self.client.call("renew database lease", renew)
            return float(resp["lease_duration"])
        except (SecretError, KeyError, TypeError) as exc:
            self.log.info("vault: lease renewal refused (%s); rotating", exc)
            return 0.0

    def _rotate(self, now: float) -> None:
        def read(client: Any) -> Any:
            return client.secrets.database.generate_credentials(
                name=self.role, mount_point=self.mount
            )

        resp = self.client.call(f"read {self.mount}/creds/{self.role}", read)
        try:
            user, password = resp["data"]["username"], resp["data"]["password"]
            ttl = float(resp["lease_duration"])
        except (KeyError, TypeError):
            raise SecretError(
                f"vault: unexpected answer from {self.mount}/creds/{self.role}"
            ) from None
        register(password)
        if ttl <= 0:
            ttl = float("inf")
        expires, refresh_at = self._times(ttl, time.monotonic())
        token = self.client.token_times()
        if token is not None:  # the token that made the lease ends first: so does the lease
            expires, refresh_at = min(expires, token[0]), min(refresh_at, token[1])
        first = self._lease is None
        self._lease = Lease(
            resp.get("lease_id", ""),
            user,
            password,
            ttl,
            bool(resp.get("renewable")),
            expires,
            refresh_at,
            self.client.logins,
        )
        self.counters["leases"] += 1
        self.log.info(
            "vault: %s database credentials from %s/creds/%s (lease %ss)",
            "new" if first else "rotated to new",
            self.mount,
            self.role,
            int(ttl) if ttl != float("inf") else "unlimited",
        )
