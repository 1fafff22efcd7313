"""Where the OIDC token goes: a database password, Vault's jwt login, ``flbsql check``.

A real provider (tests/fix_oidc.py), a throwaway PostgreSQL cluster that checks the
password, and OpenBao's jwt auth trusting the provider. A consumer that refuses the
token makes the client drop it and ask for a new one.
"""

from __future__ import annotations

import logging
import time

import pytest
from tests.fix_oidc import AUDIENCE

from flbsql.conn.connect import SecretResolver, open_pool
from flbsql.errors import TransientError
from flbsql.secrets.oidc import OidcClient, OidcProvider, OidcSettings, clear_cache
from flbsql.secrets.vault import VaultClient, VaultProvider, VaultSettings
from flbsql.settings import parse
from flbsql.tools.check import check_file

pytestmark = [pytest.mark.oidc]

LOG = logging.getLogger("test.oidc")
DB_AUDIENCE = "urn:flbsql:db"


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


def oidc_options(server, **more):
    return {
        "oidc.issuer": server.issuer,
        "oidc.client_id": "flbsql",
        "oidc.client_secret": server.secret,
        "oidc.scope": "logs:write",
        **more,
    }


@pytest.mark.postgres
def test_token_as_database_password_is_replaced_when_the_database_refuses_it(
    oidc, pg_cluster_factory
):
    cluster = pg_cluster_factory(
        hba=["host all postgres 127.0.0.1/32 trust", "host all all 127.0.0.1/32 scram-sha-256"]
    )
    cluster.execute("CREATE ROLE tokuser LOGIN")
    values = {
        "url": f"postgresql://tokuser@127.0.0.1:{cluster.port}/postgres",
        "table": "t",
        "password": f"oidc:{DB_AUDIENCE}",
        "pool.backoff_initial": "0.05",
        "pool.backoff_max": "0.1",
        **oidc_options(oidc),
    }
    pool = open_pool(parse("output", values.get), LOG)
    idp = OidcClient(OidcSettings(oidc.issuer, "flbsql", oidc.secret, scope="logs:write"), LOG)
    before = oidc.grants()
    try:
        first = idp.token(DB_AUDIENCE)  # the token the pool will use: one cache
        cluster.execute(f"ALTER ROLE tokuser PASSWORD '{first}'")
        with pool.connection() as conn:
            assert conn.cursor().execute("SELECT current_user").fetchone() == ("tokuser",)
        # the database stops taking it (a token checker after a revocation)
        cluster.execute("ALTER ROLE tokuser PASSWORD 'not-the-token'")
        pool.invalidate()
        with (
            pytest.raises(TransientError, match="password authentication failed"),
            pool.connection(),
        ):
            pass
        second = idp.token(DB_AUDIENCE)  # dropped by the refusal: a new one
        assert second != first
        cluster.execute(f"ALTER ROLE tokuser PASSWORD '{second}'")
        time.sleep(0.2)  # the pool's backoff
        with pool.connection() as conn:
            assert conn.cursor().execute("SELECT current_user").fetchone() == ("tokuser",)
        assert oidc.grants() - before == 2
    finally:
        pool.close()


@pytest.fixture(scope="module")
def jwt_auth(vault, oidc):
    """OpenBao's jwt auth at keycloak-kv/, trusting the provider; a role that reads a KV secret."""
    c = vault.client()
    c.sys.create_or_update_policy(
        "flbsql-oidc-kv", 'path "secret/data/oidc" { capabilities = ["read"] }'
    )
    c.secrets.kv.v2.create_or_update_secret("oidc", {"answer": "forty-two"})
    if "keycloak-kv/" not in c.sys.list_auth_methods()["data"]:
        c.sys.enable_auth_method("jwt", path="keycloak-kv")
    c.auth.jwt.configure(
        oidc_discovery_url=oidc.issuer, bound_issuer=oidc.issuer, path="keycloak-kv"
    )
    c.auth.jwt.create_role(
        "fluent-bit",
        role_type="jwt",
        user_claim="sub",
        bound_audiences=[AUDIENCE],
        bound_claims={"client_id": "flbsql"},
        allowed_redirect_uris=[],
        token_policies=["flbsql-oidc-kv"],
        token_ttl="5m",
        path="keycloak-kv",
    )
    return vault


@pytest.mark.vault
def test_vault_jwt_login_with_the_oidc_options_alone(jwt_auth, oidc):
    values = {
        "url": "sqlite:///unused.db",
        "table": "t",
        "password": "vault:secret/data/oidc#answer",
        "vault.address": jwt_auth.address,
        "vault.auth": "jwt",
        "vault.auth_mount": "keycloak-kv",
        "vault.role": "fluent-bit",
        **oidc_options(oidc),
    }
    resolver = SecretResolver(parse("output", values.get), LOG)
    before = oidc.grants()
    assert resolver.resolve("password") == "forty-two"
    assert oidc.grants() - before == 1


class FirstStale:
    """An ``oidc:`` provider whose cached token went bad: Vault refuses the first one."""

    scheme = "oidc"

    def __init__(self, real):
        self.real, self.dropped = real, []

    def get(self, ref):
        return self.real.get(ref) if self.dropped else "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.x"

    def invalidate(self, ref, value):
        self.dropped.append(value)
        self.real.invalidate(ref, value)


@pytest.mark.vault
def test_a_token_vault_refuses_is_replaced_once(jwt_auth, oidc):
    idp = OidcClient(OidcSettings(oidc.issuer, "flbsql", oidc.secret, scope="logs:write"), LOG)
    stale = FirstStale(OidcProvider(idp))
    settings = VaultSettings(
        jwt_auth.address, auth="jwt", auth_mount="keycloak-kv", role="fluent-bit", jwt="oidc:"
    )
    client = VaultClient(settings, LOG, {"oidc": stale})
    from flbsql.secrets import parse_ref

    assert VaultProvider(client).get(parse_ref("vault:secret/data/oidc#answer")) == "forty-two"
    assert stale.dropped == ["eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.x"]
    assert client.logins == 1


def _conf(tmp_path, secret, oidc):
    path = tmp_path / "flbsql.conf"
    path.write_text(
        "[INPUT]\n    Name dummy\n\n[OUTPUT]\n    Name sql\n    Match *\n"
        f"    url sqlite:///{tmp_path}/out.db\n    table t\n    auto_create_table on\n"
        f"    oidc.issuer {oidc.issuer}\n    oidc.client_id flbsql\n"
        f"    oidc.client_secret file:{secret}\n    oidc.scope logs:write\n"
    )
    return path


def test_check_logs_in_to_the_identity_provider(oidc, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("wrong-secret-value")
    path = _conf(tmp_path, secret, oidc)
    problems = check_file(path)
    assert problems == [
        f"{path}:4 [OUTPUT] sql: oidc login: oidc: issuer {oidc.issuer} client 'flbsql' "
        "refused: unknown client or wrong secret (oidc.client_secret) (invalid_client: "
        "client authentication failed)"
    ]
    secret.write_text(oidc.secret)
    before = oidc.grants()
    assert check_file(path) == []
    assert oidc.grants() - before == 1


@pytest.mark.vault
def test_client_secret_from_a_vault_reference(vault, oidc):
    vault.client().secrets.kv.v2.create_or_update_secret("idp", {"secret": oidc.secret})
    values = {
        "url": "sqlite:///unused.db",
        "table": "t",
        "password": f"oidc:{DB_AUDIENCE}",
        "vault.address": vault.address,
        "vault.token": vault.root_token,
        **oidc_options(oidc, **{"oidc.client_secret": "vault:secret/data/idp#secret"}),
    }
    cfg = parse("output", values.get)
    assert SecretResolver(cfg, LOG).resolve("password")


def test_a_refreshed_token_reaches_the_next_connect(oidc_factory):
    from flbsql.conn.connect import credentials_for

    short = oidc_factory(ttl=3)
    values = {
        "url": "postgresql://tokuser@127.0.0.1:1/x",
        "table": "t",
        "password": "oidc:",
        **oidc_options(short),
    }
    cfg = parse("output", values.get)
    creds = credentials_for(cfg, LOG, SecretResolver(cfg, LOG))
    assert creds is not None
    first = creds()
    assert creds() == first  # cached
    time.sleep(2.2)  # a third of the token's life left: a new one, not 60 s later
    second = creds()
    assert second[1] != first[1] and second[0] is None
    assert short.grants() == 2
