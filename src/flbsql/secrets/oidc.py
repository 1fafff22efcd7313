"""Access tokens from an OpenID Connect provider (Keycloak) by the client-credentials grant.

The ``oidc.*`` options name an issuer (Keycloak: ``https://host/realms/<realm>``) and
a client; the token endpoint comes from ``<issuer>/.well-known/openid-configuration``.
The client authenticates with ``oidc.client_secret`` (itself a secret reference, read
again at every request, so a rotated file is picked up) or, with ``oidc.private_key``,
with a signed assertion (``private_key_jwt``, :mod:`flbsql.secrets.jose`). The token
is asked for ``oidc.scope`` and an audience: ``oidc.audience`` or the target of the
reference (``oidc:<audience>``), sent as ``audience`` and, when it is a URI, as the
RFC 8707 ``resource`` too.

Tokens are cached per (issuer, client, scope, audience) for the whole process, so
every plugin instance that uses the same client shares one token. A token is
refreshed when a third of its life is left, and at once when its consumer refused it
(:meth:`OidcClient.invalidate`: Vault's login, a database that takes tokens as
passwords). When a refresh fails while the token is still valid, the token is kept.

Failures are one line naming the issuer and the client, never a secret. An issuer
that cannot be reached (or answers 5xx/429) is retried twice at once, then again at
the next use. A refusal (unknown client, wrong secret, a scope or audience not
allowed, a clock skew) is not: the same credentials are not sent again for
:data:`HOLD` seconds, while the same line is raised (an identity provider may lock a
client out after repeated failures); a changed secret is tried at once. HTTP is the
standard library's (:mod:`flbsql.secrets.httpjson`): no dependency but ``cryptography``
for signing.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import ssl
import threading
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

from flbsql.errors import SecretError
from flbsql.secrets import SecretRef, register, resolve
from flbsql.secrets.httpjson import UnreachableError, request_json
from flbsql.secrets.jose import claims_of, sign_assertion

if TYPE_CHECKING:
    import logging

    from flbsql.secrets import SecretProvider
    from flbsql.settings import Config

__all__ = ["HOLD", "OidcClient", "OidcProvider", "OidcSettings", "clear_cache"]

HOLD = 30.0  # seconds a refused set of credentials is not sent again
REFRESH_BEFORE = 1 / 3  # refresh when this fraction of a token's life is left
DISCOVERY_TTL = 3600.0
_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclasses.dataclass(frozen=True)
class OidcSettings:
    """The ``oidc.*`` options (the secret ones as written: references or literals)."""

    issuer: str
    client_id: str
    client_secret: str | None = dataclasses.field(default=None, repr=False)
    private_key: str | None = dataclasses.field(default=None, repr=False)
    key_id: str | None = None
    scope: str | None = None
    audience: str | None = None
    ca_file: str | None = None
    leeway: float = 30.0
    timeout: float = 10.0

    @classmethod
    def from_config(cls, cfg: Config) -> OidcSettings:
        """Read the ``oidc.*`` options of a :class:`~flbsql.settings.Config`."""
        return cls(
            issuer=(cfg.oidc_issuer or "").rstrip("/"),
            client_id=cfg.oidc_client_id or "",
            client_secret=cfg.oidc_client_secret,
            private_key=cfg.oidc_private_key,
            key_id=cfg.oidc_key_id,
            scope=cfg.oidc_scope,
            audience=cfg.oidc_audience,
            ca_file=cfg.oidc_ca_file,
            leeway=cfg.oidc_leeway,
            timeout=min(float(cfg.connect_timeout), 30.0),
        )


@dataclasses.dataclass
class _Token:
    value: str = dataclasses.field(repr=False)
    expires: float  # monotonic
    refresh_at: float  # monotonic


@dataclasses.dataclass
class _Entry:
    """One cached client token, shared by every instance with the same key."""

    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    token: _Token | None = None
    refusal: tuple[str, float, str] | None = None  # line, until (monotonic), credentials


_cache: dict[tuple[str, str, str, str], _Entry] = {}
_discovered: dict[str, tuple[dict[str, Any], float]] = {}
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget every cached token, refusal and discovery document (tests)."""
    with _cache_lock:
        _cache.clear()
        _discovered.clear()


class _RefusedError(SecretError):
    """The issuer refused these credentials: held for :data:`HOLD` seconds."""


class OidcClient:
    """Client-credentials tokens of one client; the cache behind it is process-wide."""

    def __init__(
        self,
        settings: OidcSettings,
        log: logging.Logger,
        providers: dict[str, SecretProvider] | None = None,
    ) -> None:
        """No network here; ``providers`` resolve ``oidc.client_secret`` (``vault:``)."""
        if not settings.issuer or not settings.client_id:
            raise SecretError("oidc: tokens need oidc.issuer and oidc.client_id")
        if not settings.client_secret and not settings.private_key:
            raise SecretError(
                f"oidc: client '{settings.client_id}' needs oidc.client_secret or oidc.private_key"
            )
        self.settings = settings
        self.log = log
        self.providers = providers or {}
        self.where = f"issuer {settings.issuer} client '{settings.client_id}'"
        self._ssl: ssl.SSLContext | None = None  # at the first request: the CA may come later

    def __repr__(self) -> str:
        return f"OidcClient({self.where})"

    def _entry(self, audience: str) -> _Entry:
        s = self.settings
        key = (s.issuer, s.client_id, s.scope or "", audience)
        with _cache_lock:
            return _cache.setdefault(key, _Entry())

    # -- the token -----------------------------------------------------------------------

    def token(self, audience: str | None = None) -> str:
        """A valid access token (cached, refreshed when due).

        Raises:
            SecretError: one line naming the issuer and the client.
        """
        aud = audience or self.settings.audience or ""
        entry = self._entry(aud)
        with entry.lock:
            now = time.monotonic()
            held = entry.token
            if held is not None and now < held.refresh_at:
                return held.value
            try:
                entry.token = self._fetch(entry, aud)
            except SecretError as exc:
                if held is None or now >= held.expires - 1.0:
                    raise
                held.refresh_at = now + min(5.0, (held.expires - now) / 4)
                self.log.warning(
                    "%s; keeping the current token, valid for %.0fs", exc, held.expires - now
                )
                return held.value
            return entry.token.value

    def invalidate(self, token: str, audience: str | None = None) -> None:
        """The consumer refused ``token`` (expired, revoked): the next use fetches anew."""
        entry = self._entry(audience or self.settings.audience or "")
        with entry.lock:
            if entry.token is not None and entry.token.value == token:
                entry.token = None
                self.log.info("oidc: %s: its consumer refused the token; refreshing", self.where)

    def _fetch(self, entry: _Entry, audience: str) -> _Token:
        secret, key = self._credentials()
        fingerprint = hashlib.sha256(f"{secret}\0{key}".encode()).hexdigest()
        refusal = entry.refusal
        now = time.monotonic()
        if refusal is not None and refusal[2] == fingerprint and now < refusal[1]:
            raise SecretError(f"{refusal[0]} (not asked again for {refusal[1] - now:.0f}s)")
        try:
            token = self._request_token(secret, key, audience)
        except _RefusedError as exc:
            entry.refusal = (str(exc), time.monotonic() + HOLD, fingerprint)
            raise
        entry.refusal = None
        return token

    def _credentials(self) -> tuple[str | None, str | None]:
        s = self.settings
        name = "oidc.client_secret"
        try:
            secret = resolve(s.client_secret, self.providers)
            name = "oidc.private_key"
            key = resolve(s.private_key, self.providers)
        except SecretError as exc:
            raise SecretError(f"oidc: {self.where}: option '{name}': {exc}") from None
        if key is not None and "-----BEGIN" not in key:  # a path, not PEM text
            key = resolve("file:" + key)
        return secret, key

    def _request_token(self, secret: str | None, key: str | None, audience: str) -> _Token:
        s = self.settings
        meta = self._discover()
        endpoint = meta.get("token_endpoint")
        if not isinstance(endpoint, str):
            raise _RefusedError(f"oidc: {self.where}: the discovery document has no token_endpoint")
        form = {"grant_type": "client_credentials"}
        if s.scope:
            form["scope"] = s.scope
        if audience:
            form["audience"] = audience
            if "://" in audience or audience.startswith("urn:"):
                form["resource"] = audience  # RFC 8707 resource indicator
        headers = {"Accept": "application/json"}
        if key is not None:
            form["client_id"] = s.client_id
            form["client_assertion_type"] = _ASSERTION_TYPE
            form["client_assertion"] = sign_assertion(key, s.client_id, endpoint, s.key_id)
        elif "client_secret_basic" in meta.get(
            "token_endpoint_auth_methods_supported", ["client_secret_basic"]
        ):
            quote = urllib.parse.quote  # RFC 6749 §2.3.1: both encoded before Basic
            pair = f"{quote(s.client_id, safe='')}:{quote(secret or '', safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form["client_id"], form["client_secret"] = s.client_id, secret or ""
        status, body = self._http(endpoint, urllib.parse.urlencode(form).encode(), headers)
        if status != 200 or not isinstance(body.get("access_token"), str):
            raise _RefusedError(self._refusal(status, body, audience, key is not None))
        value = body["access_token"]
        register(value)
        lifetime = self._check_times(value, body.get("expires_in"))
        now = time.monotonic()
        self.log.info(
            "oidc: new access token from %s (expires in %.0fs)%s",
            self.where,
            lifetime,
            f" for audience {audience}" if audience else "",
        )
        return _Token(value, now + lifetime, now + lifetime * (1 - REFRESH_BEFORE))

    def _refusal(self, status: int, body: dict[str, Any], audience: str, signed: bool) -> str:
        error = str(body.get("error") or f"HTTP {status}")
        desc = str(body.get("error_description") or "")[:200]
        said = f"({error}: {desc})" if desc else f"({error})"
        if error == "invalid_client" or (error == "unauthorized_client" and status == 401):
            what = "assertion (oidc.private_key)" if signed else "secret (oidc.client_secret)"
            return f"oidc: {self.where} refused: unknown client or wrong {what} {said}"
        if error == "unauthorized_client":
            return (
                f"oidc: {self.where} refused: the client may not use the client-credentials "
                f"grant {said}; enable it (Keycloak: Service accounts roles)"
            )
        if error == "invalid_scope":
            return (
                f"oidc: {self.where} refused scope '{self.settings.scope or ''}' {said}; "
                "check oidc.scope against the scopes the client may ask for"
            )
        if error == "invalid_target":
            return f"oidc: {self.where} refused audience '{audience}' {said}; check oidc.audience"
        return f"oidc: {self.where} refused the token request {said}"

    def _check_times(self, token: str, expires_in: Any) -> float:
        """The token's lifetime in seconds; a clock skew beyond the leeway is an error."""
        claims = claims_of(token) or {}
        now, leeway = time.time(), self.settings.leeway
        for claim in ("iat", "nbf"):
            at = claims.get(claim)
            if isinstance(at, (int, float)) and at > now + leeway:
                raise _RefusedError(
                    f"oidc: the token of {self.where} is not valid yet: its {claim} is "
                    f"{at - now:.0f}s in the future (oidc.leeway {leeway:g}s); the clocks of "
                    "this host and the issuer differ (check NTP)"
                )
        exp = claims.get("exp")
        if isinstance(exp, (int, float)) and exp <= now:
            raise _RefusedError(
                f"oidc: the token of {self.where} expired {now - exp:.0f}s before it arrived; "
                "the clocks of this host and the issuer differ (check NTP)"
            )
        if isinstance(expires_in, (int, float)) and expires_in > 0:
            return float(expires_in)
        if isinstance(exp, (int, float)):
            return float(exp - now)
        return 300.0  # neither says: ask again in a few minutes

    # -- HTTP ----------------------------------------------------------------------------

    def _discover(self) -> dict[str, Any]:
        s = self.settings
        with _cache_lock:
            known = _discovered.get(s.issuer)
        if known is not None and time.monotonic() - known[1] < DISCOVERY_TTL:
            return known[0]
        url = f"{s.issuer}/.well-known/openid-configuration"
        status, meta = self._http(url, None, {"Accept": "application/json"})
        if status != 200:
            raise _RefusedError(f"oidc: {self.where}: no discovery document (HTTP {status})")
        if str(meta.get("issuer", "")).rstrip("/") != s.issuer:
            raise _RefusedError(
                f"oidc: {self.where}: the discovery document names issuer "
                f"{meta.get('issuer')!r}; set oidc.issuer to it"
            )
        with _cache_lock:
            _discovered[s.issuer] = (meta, time.monotonic())
        return meta

    def _http(
        self, url: str, data: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        if self._ssl is None:
            try:
                self._ssl = ssl.create_default_context(cafile=self.settings.ca_file or None)
            except (OSError, ssl.SSLError) as exc:
                why = getattr(exc, "strerror", None) or str(exc)
                raise SecretError(
                    f"oidc: {self.where}: cannot load oidc.ca_file {self.settings.ca_file}: {why}"
                ) from None
        try:
            return request_json(url, data, headers, self.settings.timeout, self._ssl)
        except UnreachableError as exc:
            with _cache_lock:
                _discovered.pop(self.settings.issuer, None)
            raise SecretError(f"oidc: {self.where}: issuer unreachable ({exc})") from None


class OidcProvider:
    """``oidc:`` (``oidc.audience``) and ``oidc:<audience>``: an access token as a secret."""

    scheme = "oidc"

    def __init__(self, client: OidcClient) -> None:
        """Share one client."""
        self.client = client

    def get(self, ref: SecretRef) -> str:
        """The current access token."""
        return self.client.token(ref.target or None)

    def invalidate(self, ref: SecretRef, value: str) -> None:
        """The consumer refused ``value``: fetch a new token next time."""
        self.client.invalidate(value, ref.target or None)
