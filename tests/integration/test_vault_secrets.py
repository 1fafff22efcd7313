"""Vault references against a real OpenBao dev server: KV v1/v2, AppRole, JWT, token.

The JWT test plays the identity provider (Keycloak's role): it makes an RSA key
pair, gives Vault the public key, and signs the token the plugin logs in with.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time

import pytest

from flbsql.errors import SecretError
from flbsql.secrets import SecretProvider, parse_ref, resolve
from flbsql.secrets.vault import VaultClient, VaultProvider, VaultSettings
from flbsql.settings import parse

pytestmark = [pytest.mark.vault]

POLICY = """
path "secret/data/app" { capabilities = ["read"] }
path "kv1/app" { capabilities = ["read"] }
"""


@pytest.fixture(scope="module")
def kv(vault):
    """KV v2 at secret/ (dev default) and KV v1 at kv1/, plus a read policy."""
    c = vault.client()
    mounts = c.sys.list_mounted_secrets_engines()["data"]
    if "kv1/" not in mounts:
        c.sys.enable_secrets_engine("kv", path="kv1", options={"version": "1"})
    c.sys.create_or_update_policy("flbsql-read", POLICY)
    c.secrets.kv.v2.create_or_update_secret("app", {"password": "v2-first-pw", "user": "app"})
    c.secrets.kv.v2.create_or_update_secret("app", {"password": "v2-second-pw", "user": "app"})
    c.secrets.kv.v1.create_or_update_secret("app", {"password": "v1-pw-value"}, mount_point="kv1")
    return vault


def settings(vault, **kw):
    return VaultSettings(address=vault.address, **kw)


def client(vault, **kw):
    return VaultClient(settings(vault, **kw), logging.getLogger("test.vault"))


def test_kv_v2_latest_and_version(kv):
    p: dict[str, SecretProvider] = {"vault": VaultProvider(client(kv, token=kv.root_token))}
    assert resolve("vault:secret/data/app#password", p) == "v2-second-pw"
    assert resolve("vault:secret/data/app?version=1#password", p) == "v2-first-pw"


def test_kv_v1(kv):
    p: dict[str, SecretProvider] = {"vault": VaultProvider(client(kv, token=kv.root_token))}
    assert resolve("vault:kv1/app#password", p) == "v1-pw-value"


def test_missing_field_and_path(kv):
    prov = VaultProvider(client(kv, token=kv.root_token))
    with pytest.raises(SecretError, match="no field 'nope'"):
        prov.get(parse_ref("vault:secret/data/app#nope"))
    with pytest.raises(SecretError, match="secret/data/missing"):
        prov.get(parse_ref("vault:secret/data/missing#password"))


def test_dynamic_path_is_refused_as_a_reference(kv):
    prov = VaultProvider(client(kv, token=kv.root_token))
    with pytest.raises(SecretError, match=r"vault\.db_role"):
        prov.get(parse_ref("vault:database/creds/writer#password"))


def test_token_from_env_and_bad_token(kv, monkeypatch):
    monkeypatch.setenv("VAULT_TOKEN", kv.root_token)
    assert VaultProvider(client(kv)).get(parse_ref("vault:kv1/app#password")) == "v1-pw-value"
    bad = client(kv, token="not-a-token-" + secrets.token_hex(4))
    with pytest.raises(SecretError) as info:
        VaultProvider(bad).get(parse_ref("vault:kv1/app#password"))
    assert "not-a-token" not in str(info.value)


def test_unreachable_vault_is_a_secret_error(kv):
    c = VaultClient(
        VaultSettings(address="http://127.0.0.1:1", token="x", timeout=2),
        logging.getLogger("test.vault"),
    )
    with pytest.raises(SecretError, match="unreachable"):
        VaultProvider(c).get(parse_ref("vault:kv1/app#password"))


@pytest.fixture(scope="module")
def approle(kv):
    c = kv.client()
    if "approle/" not in c.sys.list_auth_methods()["data"]:
        c.sys.enable_auth_method("approle")
    c.auth.approle.create_or_update_approle(
        "flbsql", token_policies=["flbsql-read"], token_ttl="1h"
    )
    role_id = c.auth.approle.read_role_id("flbsql")["data"]["role_id"]
    secret_id = c.auth.approle.generate_secret_id("flbsql")["data"]["secret_id"]
    return role_id, secret_id


def test_approle_login_reads_kv_and_relogs_after_revocation(kv, approle, tmp_path, monkeypatch):
    role_id, secret_id = approle
    sid = tmp_path / "secret_id"
    sid.write_text(secret_id + "\n")
    monkeypatch.setenv("FLBSQL_T_ROLE_ID", role_id)
    c = client(kv, auth="approle", role_id="env:FLBSQL_T_ROLE_ID", secret_id=f"file:{sid}")
    prov = VaultProvider(c)
    assert prov.get(parse_ref("vault:secret/data/app#password")) == "v2-second-pw"
    assert c.logins == 1
    kv.client().auth.token.revoke(c._client.token)  # the token dies (TTL, admin)
    assert prov.get(parse_ref("vault:kv1/app#password")) == "v1-pw-value"
    assert c.logins == 2  # one re-login after the 403


def test_approle_wrong_secret_id(kv, approle):
    role_id, _ = approle
    c = client(kv, auth="approle", role_id=role_id, secret_id="wrong-secret-id-123")
    with pytest.raises(SecretError) as info:
        VaultProvider(c).get(parse_ref("vault:kv1/app#password"))
    assert "wrong-secret-id-123" not in str(info.value)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(private_key, claims):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    head = _b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "test"}).encode())
    body = _b64(json.dumps(claims).encode())
    sig = private_key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{_b64(sig)}"


@pytest.fixture(scope="module")
def idp(kv):
    """An identity provider: a key pair whose public half Vault trusts."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    c = kv.client()
    if "oidc/" not in c.sys.list_auth_methods()["data"]:
        c.sys.enable_auth_method("jwt", path="oidc")
    c.auth.jwt.configure(
        jwt_validation_pubkeys=[pem.decode()],
        bound_issuer="https://keycloak.test/realms/logs",
        path="oidc",
    )
    c.auth.jwt.create_role(
        "fluent-bit",
        user_claim="sub",
        allowed_redirect_uris=[],
        role_type="jwt",
        bound_audiences=["flbsql"],
        token_policies=["flbsql-read"],
        token_ttl="1h",
        path="oidc",
    )
    return key


def test_jwt_login_with_a_token_from_the_identity_provider(kv, idp, tmp_path):
    now = int(time.time())
    token = _jwt(
        idp,
        {
            "iss": "https://keycloak.test/realms/logs",
            "sub": "fluent-bit",
            "aud": "flbsql",
            "iat": now,
            "nbf": now - 5,
            "exp": now + 300,
        },
    )
    tok = tmp_path / "token"
    tok.write_text(token + "\n")
    c = client(kv, auth="jwt", auth_mount="oidc", role="fluent-bit", jwt=f"file:{tok}")
    assert VaultProvider(c).get(parse_ref("vault:secret/data/app#user")) == "app"


def test_jwt_with_a_foreign_signature_is_refused(kv, idp, tmp_path):
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    token = _jwt(
        other,
        {
            "iss": "https://keycloak.test/realms/logs",
            "sub": "x",
            "aud": "flbsql",
            "iat": now,
            "exp": now + 300,
        },
    )
    c = client(kv, auth="jwt", auth_mount="oidc", role="fluent-bit", jwt=token)
    with pytest.raises(SecretError) as info:
        VaultProvider(c).get(parse_ref("vault:secret/data/app#user"))
    assert token not in str(info.value)


def test_settings_from_config_and_repr_hide_secrets(kv):
    values = {
        "vault.address": kv.address,
        "vault.auth": "approle",
        "vault.role_id": "rid-value-1",
        "vault.secret_id": "sid-value-2",
        "url": "postgresql://x@h/db",
        "table": "t",
    }
    cfg = parse("output", values.get, probe_typos=False)
    s = VaultSettings.from_config(cfg)
    assert (s.address, s.auth, s.role_id) == (kv.address, "approle", "rid-value-1")
    text = repr(s) + repr(VaultClient(s, logging.getLogger("x"))) + repr(cfg)
    assert "sid-value-2" not in text and "rid-value-1" not in text
