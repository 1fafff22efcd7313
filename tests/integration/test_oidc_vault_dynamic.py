"""The whole chain: identity provider -> OpenBao jwt login -> dynamic PostgreSQL users.

A real OpenID Connect provider (tests/fix_oidc.py) issues client-credentials tokens
with a short life; OpenBao's ``jwt`` auth trusts it through its discovery document
and maps the token (audience and subject bound) to a policy that reads dynamic
credentials of a throwaway PostgreSQL cluster (scram-sha-256 for every role but
``postgres``). The output, in the test host, logs in to OpenBao with ``oidc.*`` alone
(no token file) and writes under continuous load while the access tokens, the Vault
tokens made from them and the database users all expire and are replaced.

``FLBSQL_SOAK_SECONDS`` (default 30) is how long the output writes and
``FLBSQL_SOAK_TTL`` (default 10) both the access-token lifetime and the database
credential TTL (the Vault token lives as long as the access token). The issue's
acceptance run is ``FLBSQL_SOAK_SECONDS=180 FLBSQL_SOAK_TTL=30``. Every record must
arrive exactly once, several tokens and database users must have been used, and no
access token, client secret or database password may appear in the debug log.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

import pytest
from tests.fix_host import event_v2, props, write_frames
from tests.fix_oidc import AUDIENCE
from tests.fix_vault import database_role

pytestmark = [
    pytest.mark.oidc,
    pytest.mark.vault,
    pytest.mark.postgres,
    pytest.mark.shim,
    pytest.mark.chaos,
]

SECONDS = float(os.environ.get("FLBSQL_SOAK_SECONDS", "30"))
TTL = int(os.environ.get("FLBSQL_SOAK_TTL", "10"))
PACE = 0.04  # seconds each INSERT statement sleeps server-side: a steady write rate
RECS = 10
ROLE = "oidc-writer"

CREATION = [
    """CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'
       IN ROLE flb_writer""",
    "INSERT INTO issued (name, password) VALUES ('{{name}}', '{{password}}')",
]
REVOCATION = [
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{{name}}'",
    'DROP ROLE IF EXISTS "{{name}}"',
]


@pytest.fixture(scope="module")
def cluster(pg_cluster_factory):
    cluster = pg_cluster_factory(
        hba=["host all postgres 127.0.0.1/32 trust", "host all all 127.0.0.1/32 scram-sha-256"]
    )
    cluster.execute("CREATE DATABASE app")
    for stmt in (
        "CREATE ROLE flb_writer NOLOGIN",
        "CREATE TABLE issued (name text, password text)",
        "CREATE TABLE t (tag text, time text, data text, who text DEFAULT current_user)",
        "GRANT USAGE ON SCHEMA public TO flb_writer",
        "GRANT SELECT, INSERT ON t TO flb_writer",
        f"""CREATE FUNCTION pace() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN PERFORM pg_sleep({PACE}); RETURN NULL; END $$""",
        "CREATE TRIGGER pace BEFORE INSERT ON t FOR EACH STATEMENT EXECUTE FUNCTION pace()",
    ):
        cluster.execute(stmt, "app")
    return cluster


@pytest.fixture(scope="module")
def chain(vault, cluster, oidc_factory):
    """The provider, OpenBao's jwt auth trusting it, and the database role it may read."""
    idp = oidc_factory(ttl=TTL)
    c = vault.client()
    database_role(c, ROLE, cluster.port, "app", CREATION, REVOCATION, ttl=TTL)
    c.sys.create_or_update_policy(
        "flbsql-oidc-db",
        f'path "database/creds/{ROLE}" {{ capabilities = ["read"] }}\n'
        'path "sys/leases/renew" { capabilities = ["update"] }\n'
        'path "sys/leases/revoke" { capabilities = ["update"] }',
    )
    if "keycloak/" not in c.sys.list_auth_methods()["data"]:
        c.sys.enable_auth_method("jwt", path="keycloak")
    c.auth.jwt.configure(oidc_discovery_url=idp.issuer, bound_issuer=idp.issuer, path="keycloak")
    c.auth.jwt.create_role(
        "fluent-bit",
        role_type="jwt",
        user_claim="sub",
        bound_subject="flbsql",
        bound_audiences=[AUDIENCE],
        bound_claims={"client_id": "flbsql"},
        allowed_redirect_uris=[],
        token_policies=["flbsql-oidc-db"],
        token_ttl=f"{TTL}s",
        token_max_ttl=f"{TTL}s",
        path="keycloak",
    )
    return idp


def test_provider_to_vault_to_database_under_load(host, vault, cluster, chain, tmp_path):
    idp = chain
    secret_file = tmp_path / "client_secret"
    secret_file.write_text(idp.secret + "\n")
    chunks = int(SECONDS / PACE)  # each flush sleeps PACE server-side: >= SECONDS of writing
    total = chunks * RECS
    frames = write_frames(
        tmp_path / "frames.bin",
        (b"".join(event_v2({"k": c * RECS + i}) for i in range(RECS)) for c in range(chunks)),
    )
    grants_before = idp.grants()
    log_path = tmp_path / "host.log"
    started = time.monotonic()
    with open(log_path, "w") as log:
        proc = host.start(
            "--log-level",
            "debug",
            "--retry-wait",
            "200",
            "--stop-after-records",
            str(total),
            "--duration",
            str(int(SECONDS * 3 * 1000)),
            "-i",
            "feed",
            *props(file=frames),
            "-o",
            "sql",
            *props(
                url=f"postgresql://127.0.0.1:{cluster.port}/app",
                table="t",
                retry_limit="no_limits",
                log_level="debug",
                # one flush at a time: the PACE of each flush is what makes the
                # writing last SECONDS (two workers would halve it)
                workers="1",
                **{
                    "oidc.issuer": idp.issuer,
                    "oidc.client_id": "flbsql",
                    "oidc.client_secret": f"file:{secret_file}",
                    "oidc.scope": "logs:write",
                    "vault.address": vault.address,
                    "vault.auth": "jwt",
                    "vault.auth_mount": "keycloak",
                    "vault.role": "fluent-bit",
                    "vault.db_role": ROLE,
                    "pool.backoff_initial": "0.2",
                    "pool.backoff_max": "2s",
                },
            ),
            stderr=log,
        )
    try:
        out, _ = proc.communicate(timeout=SECONDS * 3 + 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    elapsed = time.monotonic() - started
    log_text = log_path.read_text(errors="replace") + out
    stats: dict[str, Any] = next(
        (json.loads(line) for line in reversed(out.strip().splitlines()) if line.startswith("{")),
        {},
    )
    rows = cluster.execute("SELECT (data::jsonb->>'k')::int, who FROM t", "app")
    keys = [k for k, _ in rows]
    users = {w for _, w in rows}
    issued = cluster.execute("SELECT name, password FROM issued", "app")
    tokens = idp.grants() - grants_before
    logins = log_text.count("with jwt auth")
    leaked_pw = [name for name, pw in issued if pw in log_text]
    jwt_like = re.findall(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+", log_text)
    print(
        f"\noidc chain: {elapsed:.0f}s of writing, TTL {TTL}s, {total} records sent, "
        f"{len(set(keys))} arrived ({len(keys) - len(set(keys))} twice), {tokens} access "
        f"tokens issued, {logins} Vault logins, {len(issued)} database users issued, "
        f"{len(users)} wrote rows, flush_retry={stats.get('flush_retry')}, tokens in "
        f"log={len(jwt_like)}, passwords in log={len(leaked_pw)}, "
        f"client secret in log={idp.secret in log_text}"
    )
    assert proc.returncode == 0, log_text[-3000:]
    assert sorted(keys) == list(range(total)), f"lost or doubled\n{log_text[-3000:]}"
    assert stats["flush_error"] == 0 and stats["chunks_dropped"] == 0
    # every lease is replaced before the Vault token that read it ends (Vault revokes
    # the lease then): no flush ever meets a dropped database user
    assert stats["flush_retry"] == 0, f"{stats['flush_retry']} flushes retried\n{log_text[-3000:]}"
    assert elapsed >= SECONDS * 0.9
    periods = int(SECONDS / (TTL * (2 / 3)))  # everything is replaced at 2/3 of its life
    assert periods >= 2, "FLBSQL_SOAK_SECONDS is too short for anything to be replaced"
    assert tokens >= periods, f"only {tokens} access tokens for {periods} periods"
    assert logins >= periods
    assert len(users) >= periods, f"only {len(users)} database users wrote"
    assert all(u.startswith("v-") for u in users)  # every row came from a Vault role
    assert not jwt_like, "an access token appears in the log"
    assert not leaked_pw, f"passwords of {leaked_pw} appear in the log"
    assert idp.secret not in log_text
    assert "oidc: new access token from issuer" in log_text
