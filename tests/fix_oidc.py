"""A real OpenID Connect provider for the tests: the npm package ``oidc-provider``.

``tests/oidc/provider.js`` (its dependencies pinned by ``tests/oidc/package-lock.json``,
installed by ``npm ci`` there, which ``.ci/run`` does) runs on a free loopback port
with a Keycloak-like issuer path (``/realms/logs``), three clients allowed the
client-credentials grant (``flbsql`` with a secret, ``flbsql-rsa`` and ``flbsql-ec``
with ``private_key_jwt``), the scopes ``logs:write`` (allowed) and ``admin`` (known
but not allowed to them), and the audiences ``urn:flbsql:vault`` (the default) and
``urn:flbsql:db``. The access-token lifetime, a clock skew of the provider and HTTPS
with a test CA are parameters of :func:`start_oidc`. The provider prints one line per
token request, which the tests count. No Node.js or no ``node_modules``: the tests
fail, never skip (the issue's rule for this provider).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import ipaddress
import json
import pathlib
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["AUDIENCE", "OidcServer", "start_oidc"]

HERE = pathlib.Path(__file__).parent / "oidc"
AUDIENCE = "urn:flbsql:vault"
SCOPE = "logs:write"


def _b64(n: int, size: int = 0) -> str:
    raw = n.to_bytes(size or (n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _pem(key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    raw: bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return raw.decode()


def _jwk(key: Any) -> dict[str, str]:
    from cryptography.hazmat.primitives.asymmetric import rsa

    pub = key.public_key().public_numbers()
    if isinstance(key, rsa.RSAPrivateKey):
        return {"kty": "RSA", "n": _b64(pub.n), "e": _b64(pub.e), "alg": "RS256", "use": "sig"}
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64(pub.x, 32),
        "y": _b64(pub.y, 32),
        "alg": "ES256",
        "use": "sig",
    }


@dataclass
class OidcServer:
    """Where the provider is, its clients' credentials, and what it logged."""

    issuer: str
    secret: str = field(repr=False)
    rsa_key: str = field(repr=False)  # PEM of flbsql-rsa's private key
    ec_key: str = field(repr=False)  # PEM of flbsql-ec's private key
    process: subprocess.Popen[bytes] | None = None
    logfile: pathlib.Path | None = None
    ca_file: str | None = None

    def log(self) -> str:
        """Everything the provider printed."""
        if self.logfile is None:
            return ""
        with contextlib.suppress(OSError):
            return self.logfile.read_text(errors="replace")
        return ""

    def grants(self, client: str = "flbsql") -> int:
        """Tokens issued to ``client`` so far."""
        return self.log().splitlines().count(f"grant {client}")

    def refusals(self, client: str = "flbsql") -> int:
        """Token requests of ``client`` refused so far."""
        return sum(line.startswith(f"grant-error {client} ") for line in self.log().splitlines())

    def stop(self) -> None:
        """Terminate the provider (it keeps nothing)."""
        proc, self.process = self.process, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if self.logfile is not None:
            with contextlib.suppress(OSError):
                self.logfile.unlink()


def tls_files(directory: pathlib.Path) -> tuple[str, str, str]:
    """A test CA and a server certificate for 127.0.0.1: (ca, cert, key) file paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)

    def cert(cn: str, key: Any, issuer: x509.Name | None, signer: Any, ca: bool) -> Any:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        b = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer or name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            b = b.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        return b.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert("flbsql test CA", ca_key, None, ca_key, True)
    key = ec.generate_private_key(ec.SECP256R1())
    server = cert("127.0.0.1", key, ca.subject, ca_key, False)
    paths = [directory / n for n in ("ca.pem", "server.pem", "server.key")]
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_text(_pem(key))
    return str(paths[0]), str(paths[1]), str(paths[2])


def start_oidc(
    ttl: int = 30, skew: int = 0, tls: bool = False, timeout: float = 30.0
) -> OidcServer:
    """Start the provider; ``ttl``: access-token seconds, ``skew``: its clock's offset.

    Raises:
        RuntimeError: no node, no ``npm ci`` done, or the provider did not come up.
    """
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH (Node.js 20 or later runs the OIDC provider)")
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        raise RuntimeError(f"oidc-provider is not installed: run `npm ci` in {HERE}")
    work = pathlib.Path(tempfile.mkdtemp(prefix="flbsql-oidc-"))
    secret = "cs-" + secrets.token_hex(16)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    base = {"grant_types": ["client_credentials"], "redirect_uris": [], "response_types": []}
    signed = {"token_endpoint_auth_method": "private_key_jwt", "scope": SCOPE}
    config: dict[str, Any] = {
        "path": "/realms/logs",
        "scopes": [SCOPE, "admin"],
        "audiences": [AUDIENCE, "urn:flbsql:db"],
        "defaultAudience": AUDIENCE,
        "accessTokenTTL": ttl,
        "skew": skew,
        "clients": [
            {**base, "client_id": "flbsql", "client_secret": secret, "scope": SCOPE},
            {**base, **signed, "client_id": "flbsql-rsa", "jwks": {"keys": [_jwk(rsa_key)]}},
            {**base, **signed, "client_id": "flbsql-ec", "jwks": {"keys": [_jwk(ec_key)]}},
        ],
    }
    ca_file = None
    if tls:
        ca_file, cert, key = tls_files(work)
        config["tls"] = {"cert": cert, "key": key}
    (work / "config.json").write_text(json.dumps(config))
    log = work / "provider.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [node, str(HERE / "provider.js"), str(work / "config.json")],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=HERE,
        )
    server = OidcServer("", secret, _pem(rsa_key), _pem(ec_key), proc, log, ca_file)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        for line in server.log().splitlines():
            if line.startswith("listening "):
                server.issuer = line.split(" ", 1)[1].strip()
                return server
        time.sleep(0.1)
    tail = server.log()[-3000:]
    server.stop()
    raise RuntimeError(f"the OIDC provider did not start: {tail}")


@pytest.fixture(scope="session")
def oidc_factory() -> Iterator[Callable[..., OidcServer]]:
    """Start providers (:func:`start_oidc` arguments); all stop at the end of the session."""
    started: list[OidcServer] = []

    def factory(**kwargs: Any) -> OidcServer:
        try:
            server = start_oidc(**kwargs)
        except (RuntimeError, OSError) as exc:
            pytest.fail(f"cannot start the OpenID Connect provider: {exc}")
        started.append(server)
        return server

    try:
        yield factory
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="session")
def oidc(oidc_factory: Callable[..., OidcServer]) -> OidcServer:
    """The provider most tests share (30 s tokens, no skew, HTTP)."""
    return oidc_factory()
