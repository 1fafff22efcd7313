"""The little JOSE an OAuth client needs: sign a client assertion, read a token's claims.

``private_key_jwt`` client authentication (RFC 7523, OpenID Connect Core §9) sends a
short-lived JWT signed with the client's private key: RS256 for an RSA key, ES256 for
an EC P-256 key, chosen from the key. Signing needs the ``cryptography`` package (the
``oidc`` extra), imported here only. Reading claims verifies nothing: the client only
looks at the times of a token it was just given (the consumer verifies the signature).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

from flbsql.errors import SecretError

__all__ = ["b64url", "claims_of", "sign_assertion"]

ASSERTION_LIFETIME = 60  # seconds a client assertion is valid


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def claims_of(token: str) -> dict[str, Any] | None:
    """The payload of a JWT (unverified), or None for an opaque token."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(_unb64url(parts[1]))
    except (ValueError, UnicodeDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def _load_key(pem: str) -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError:  # pragma: no cover - the oidc extra installs it
        raise SecretError(
            "oidc.private_key needs the 'cryptography' module: pip install \"flbsql[oidc]\""
        ) from None
    try:
        return serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        reason = str(exc).split("\n", 1)[0][:120]
        raise SecretError(f"oidc.private_key: not an unencrypted PEM key ({reason})") from None


def sign_assertion(pem: str, client_id: str, audience: str, key_id: str | None = None) -> str:
    """A ``client_assertion`` JWT: iss = sub = the client, aud = the issuer, 60 s of life.

    Raises:
        SecretError: the key is not an RSA or EC P-256 private key in PEM.
    """
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

    key = _load_key(pem)
    if isinstance(key, rsa.RSAPrivateKey):
        alg = "RS256"
    elif isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        alg = "ES256"
    else:
        raise SecretError("oidc.private_key must be an RSA or an EC P-256 key (RS256, ES256)")
    header: dict[str, str] = {"alg": alg, "typ": "JWT"}
    if key_id:
        header["kid"] = key_id
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME,
    }
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    ).encode("ascii")
    if alg == "RS256":
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:  # JWS wants r || s, 32 bytes each, not DER (RFC 7518 §3.4)
        r, s = utils.decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{signing_input.decode('ascii')}.{b64url(signature)}"
