"""Keycloak-style chain in a real Fluent Bit: provider -> OpenBao jwt -> dynamic users.

The provider, OpenBao's jwt auth and the database role come from
tests/integration/test_oidc_vault_dynamic.py (access tokens, Vault tokens and database
credentials all live ``FLBSQL_SOAK_TTL`` seconds, default 10). A feeder inserts rows
into a source table for ``FLBSQL_SOAK_SECONDS`` (default 30); in_sql reads them and
out_sql writes them with the credentials that chain yields, configured with the
``oidc.*`` options alone (no token file). Settings the case needs, and why: the
``oidc.*`` and ``vault.*`` options (the subject), ``retry_limit no_limits`` (a flush
is never dropped after one retry) and ``log_level debug`` on the output (the "no
secret in the log" check covers the most talkative level).
"""

from __future__ import annotations

import re
import time

import pytest

from tests.fluentbit.common import Feeder, needs_fluent_bit, source_table, wait_rows
from tests.integration.test_oidc_vault_dynamic import (  # noqa: F401  (fixtures)
    ROLE,
    SECONDS,
    TTL,
    chain,
    cluster,
)

pytestmark = [
    needs_fluent_bit,
    pytest.mark.fluentbit,
    pytest.mark.oidc,
    pytest.mark.vault,
    pytest.mark.postgres,
    pytest.mark.chaos,
    pytest.mark.slow,
]


def test_oidc_chain_delivers_every_record_once_and_logs_no_secret(
    fluent_bit,
    vault,
    cluster,  # noqa: F811
    chain,  # noqa: F811
    pg_db,
    tmp_path,
):
    idp = chain
    secret_file = tmp_path / "client_secret"
    secret_file.write_text(idp.secret + "\n")
    cluster.execute("TRUNCATE t", "app")
    src = source_table(pg_db, 0)
    grants_before = idp.grants()
    conf = fluent_bit.config(
        inputs=[
            {"name": "sql", "tag": "src", "url": pg_db.url, "table": src, "db": tmp_path / "pos.db"}
        ],
        outputs=[
            {
                "name": "sql",
                "match": "*",
                "url": f"postgresql://127.0.0.1:{cluster.port}/app",
                "table": "t",
                "retry_limit": "no_limits",
                "log_level": "debug",
                "oidc.issuer": idp.issuer,
                "oidc.client_id": "flbsql",
                "oidc.client_secret": f"file:{secret_file}",
                "oidc.scope": "logs:write",
                "vault.address": vault.address,
                "vault.auth": "jwt",
                "vault.auth_mount": "keycloak",
                "vault.role": "fluent-bit",
                "vault.db_role": ROLE,
            },
        ],
        http=True,
    )
    feeder = Feeder(pg_db.url, src, per_tick=20, tick=0.1)
    run = fluent_bit.start(conf)
    try:
        feeder.start()
        time.sleep(SECONDS)
        sent = feeder.stop()
        took = wait_rows(cluster.url("app"), "t", sent, 120, key="(data::jsonb->>'id')::bigint")
        time.sleep(3)
        out = run.metrics()["output"]["sql.0"]
    finally:
        feeder.halt.set()
        code = run.stop()
    log = run.log()
    rows = cluster.execute("SELECT (data::jsonb->>'id')::bigint, who FROM t", "app")
    keys = [k for k, _ in rows]
    users = {w for _, w in rows}
    issued = cluster.execute("SELECT name, password FROM issued", "app")
    tokens = idp.grants() - grants_before
    leaked = [name for name, pw in issued if pw in log]
    jwt_like = re.findall(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+", log)
    print(
        f"\n{fluent_bit.version()}: {SECONDS:.0f}s of writing, TTL {TTL}s; sent={sent} "
        f"rows={len(keys)} distinct={len(set(keys))}; {tokens} access tokens, "
        f"{log.count('with jwt auth')} Vault logins, {len(users)} database users wrote; "
        f"caught up {took:.1f}s after the feed stopped; tokens in log={len(jwt_like)}, "
        f"passwords in log={len(leaked)}; output {out}"
    )
    assert code == 0, log[-3000:]
    assert sorted(keys) == list(range(1, sent + 1)), "a record is missing or duplicated"
    periods = int(SECONDS / (TTL * (2 / 3)))
    assert tokens >= periods and len(users) >= periods, (tokens, users)
    assert all(w.startswith("v-") for w in users)
    assert not jwt_like, "an access token appears in the log"
    assert not leaked, f"passwords of {leaked} appear in the log"
    assert idp.secret not in log
    assert out["errors"] == 0 and out["dropped_records"] == 0, out
