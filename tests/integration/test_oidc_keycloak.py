"""The OIDC client against Keycloak itself, in Testcontainers when a Docker engine answers.

A realm ``logs`` is imported at start: a confidential client ``fluent-bit`` with service
accounts (the client-credentials grant) and an audience mapper adding ``vault`` to its
access tokens, as docs/secrets.md describes. Without Docker the tests are skipped with
the reason, like the Oracle and SQL Server ones (tests/fix_db.py); the certified
``oidc-provider`` (tests/fix_oidc.py) is the provider CI always runs. Only the
no-Docker path has run on the development machine (it has no Docker engine); the
container path follows the Keycloak and testcontainers documentation.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest
from tests.fix_db import docker_engine

from flbsql.errors import SecretError
from flbsql.secrets.jose import claims_of
from flbsql.secrets.oidc import OidcClient, OidcSettings, clear_cache

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.oidc, pytest.mark.slow]

IMAGE = "quay.io/keycloak/keycloak:26.0"
LOG = logging.getLogger("test.keycloak")


def _realm(secret: str) -> dict[str, Any]:
    audience = {
        "name": "audience-vault",
        "protocol": "openid-connect",
        "protocolMapper": "oidc-audience-mapper",
        "config": {
            "included.custom.audience": "vault",
            "access.token.claim": "true",
            "id.token.claim": "false",
        },
    }
    client = {
        "clientId": "fluent-bit",
        "enabled": True,
        "publicClient": False,
        "clientAuthenticatorType": "client-secret",
        "secret": secret,
        "serviceAccountsEnabled": True,
        "standardFlowEnabled": False,
        "directAccessGrantsEnabled": False,
        "protocolMappers": [audience],
    }
    return {
        "realm": "logs",
        "enabled": True,
        "sslRequired": "none",
        "accessTokenLifespan": 60,
        "clients": [client],
    }


@pytest.fixture(scope="module")
def keycloak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(issuer, client secret) of a Keycloak in a container."""
    why = docker_engine()
    if why is not None:
        pytest.skip(f"Keycloak runs in Testcontainers, and {why}")
    from testcontainers.core.container import DockerContainer

    secret = "kc-" + secrets.token_hex(16)
    folder = tmp_path_factory.mktemp("keycloak-import")
    folder.chmod(0o755)
    realm = folder / "logs-realm.json"
    realm.write_text(json.dumps(_realm(secret)))
    realm.chmod(0o644)
    container = (
        DockerContainer(IMAGE)
        .with_env("KC_BOOTSTRAP_ADMIN_USERNAME", "admin")
        .with_env("KC_BOOTSTRAP_ADMIN_PASSWORD", secrets.token_hex(8))
        .with_volume_mapping(str(folder), "/opt/keycloak/data/import", "ro")
        .with_exposed_ports(8080)
        .with_command("start-dev --import-realm")
    )
    container.start()
    try:
        base = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(8080)}"
        issuer = f"{base}/realms/logs"
        discovery, deadline = f"{issuer}/.well-known/openid-configuration", time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(discovery, timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)
        yield issuer, secret
    finally:
        container.stop()


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


def client(issuer, client_id="fluent-bit", **kw):
    return OidcClient(OidcSettings(issuer, client_id, audience="vault", **kw), LOG)


def refused(c):
    with pytest.raises(SecretError) as info:
        c.token()
    return str(info.value)


def test_service_account_token_for_the_vault_audience(keycloak):
    issuer, secret = keycloak
    claims = claims_of(client(issuer, client_secret=secret).token()) or {}
    aud = claims.get("aud")
    assert "vault" in (aud if isinstance(aud, list) else [aud])
    assert claims["azp"] == "fluent-bit"
    assert claims["iss"] == issuer


def test_wrong_secret_and_unknown_client(keycloak):
    issuer, _ = keycloak
    for client_id in ("fluent-bit", "nobody"):
        line = refused(client(issuer, client_id, client_secret="wrong-secret-value"))
        assert line.startswith(
            f"oidc: issuer {issuer} client '{client_id}' refused: unknown client or wrong "
            "secret (oidc.client_secret) ("
        ), line
        assert "wrong-secret-value" not in line


def test_scope_the_client_does_not_have(keycloak):
    issuer, secret = keycloak
    line = refused(client(issuer, client_secret=secret, scope="no-such-scope"))
    assert line.startswith(
        f"oidc: issuer {issuer} client 'fluent-bit' refused scope 'no-such-scope' (invalid_scope"
    ), line
