"""oidc: references, the client assertion's signature, and the Init-time rules (no network)."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest

from flbsql.conn.connect import SecretResolver, open_pool
from flbsql.errors import ConfigError, SecretError
from flbsql.secrets import SecretRef, invalidate, is_reference, parse_ref, resolve
from flbsql.secrets.jose import claims_of, sign_assertion
from flbsql.secrets.oidc import OidcClient, OidcSettings
from flbsql.settings import parse

LOG = logging.getLogger("test.oidc")


def _unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _pem(key):
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_oidc_references():
    assert is_reference("oidc:")
    assert parse_ref("oidc:") == SecretRef("oidc", "")
    assert parse_ref("oidc:urn:flbsql:db") == SecretRef("oidc", "urn:flbsql:db")
    assert str(parse_ref("oidc:https://db.example/")) == "oidc:https://db.example/"
    assert resolve("literal:oidc:x") == "oidc:x"
    with pytest.raises(SecretError, match=r"needs the oidc provider \(set oidc.issuer\)"):
        resolve("oidc:")
    assert not invalidate("env:X", "token", {})  # env: keeps no cache


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_client_assertion_is_signed_and_verifiable(kind):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

    key: Any
    if kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    token = sign_assertion(_pem(key), "fluent-bit", "https://idp/token", key_id="k1")
    head64, body64, sig64 = token.split(".")
    header = json.loads(_unb64(head64))
    claims = claims_of(token)
    assert claims is not None
    assert header == {"alg": "RS256" if kind == "rsa" else "ES256", "typ": "JWT", "kid": "k1"}
    assert claims["iss"] == claims["sub"] == "fluent-bit"
    assert claims["aud"] == "https://idp/token"
    assert claims["exp"] - claims["iat"] == 60 and len(claims["jti"]) == 32
    signed, sig = f"{head64}.{body64}".encode(), _unb64(sig64)
    if kind == "rsa":
        key.public_key().verify(sig, signed, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert len(sig) == 64  # r || s, not DER
        der = utils.encode_dss_signature(
            int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
        )
        key.public_key().verify(der, signed, ec.ECDSA(hashes.SHA256()))


def test_unusable_keys_are_one_line():
    from cryptography.hazmat.primitives.asymmetric import ec

    with pytest.raises(SecretError, match=r"^oidc.private_key: not an unencrypted PEM key"):
        sign_assertion("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----", "c", "a")
    p384 = _pem(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(SecretError, match="must be an RSA or an EC P-256 key"):
        sign_assertion(p384, "c", "a")


def test_claims_of_an_opaque_token():
    assert claims_of("opaque-token") is None
    assert claims_of("a.b.c") is None


def test_a_client_needs_an_issuer_and_credentials():
    with pytest.raises(SecretError, match=r"need oidc\.issuer and oidc\.client_id"):
        OidcClient(OidcSettings("", "c", client_secret="s"), LOG)
    with pytest.raises(SecretError, match=r"client 'c' needs oidc.client_secret or oidc.private"):
        OidcClient(OidcSettings("https://idp", "c"), LOG)


def _cfg(**values):
    base = {"url": "postgresql://127.0.0.1:1/x", "table": "t", **values}
    return parse("output", base.get)


def test_oidc_reference_without_an_issuer_fails_init():
    with pytest.raises(ConfigError, match=r"'password': an oidc: reference needs oidc\.issuer"):
        open_pool(_cfg(password="oidc:"), LOG)


def test_a_client_secret_from_the_vault_that_logs_in_with_it_is_a_circle():
    cfg = _cfg(
        **{
            "oidc.issuer": "https://idp.example/realms/x",
            "oidc.client_id": "fluent-bit",
            "oidc.client_secret": "vault:secret/data/idp#secret",
            "vault.address": "https://vault.example:8200",
            "vault.auth": "jwt",
            "vault.role": "r",
            "vault.db_role": "w",
        }
    )
    with pytest.raises(ConfigError, match=r"'oidc\.client_secret': cannot be read from Vault"):
        open_pool(cfg, LOG)


def test_vault_jwt_defaults_to_an_oidc_token():
    from flbsql.secrets.vault import VaultSettings

    cfg = _cfg(**{"oidc.issuer": "https://idp", "vault.address": "http://v", "vault.auth": "jwt"})
    assert VaultSettings.from_config(cfg).jwt == "oidc:"
    cfg = _cfg(**{"vault.address": "http://v", "vault.auth": "jwt", "vault.jwt": "file:/t"})
    assert VaultSettings.from_config(cfg).jwt == "file:/t"


def test_a_missing_ca_file_is_a_line_at_the_first_request_not_at_init():
    cfg = _cfg(
        **{
            "oidc.issuer": "https://idp.example/realms/x",
            "oidc.client_id": "fluent-bit",
            "oidc.client_secret": "s3cr3t-value",
            "oidc.ca_file": "/nonexistent/ca.pem",
            "password": "oidc:",
        }
    )
    resolver = SecretResolver(cfg, LOG)
    with pytest.raises(SecretError) as info:
        resolver.resolve("password")
    assert str(info.value) == (
        "option 'password': oidc: issuer https://idp.example/realms/x client 'fluent-bit': "
        "cannot load oidc.ca_file /nonexistent/ca.pem: No such file or directory"
    )
    assert "s3cr3t-value" not in repr(cfg)
