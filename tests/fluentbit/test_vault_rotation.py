"""Dynamic database credentials from OpenBao rotating while Fluent Bit writes.

The cluster, the database secrets engine (role ``writer``, lease TTL
``FLBSQL_ROTATION_TTL``, default 10 s) and the AppRole come from
tests/integration/test_vault_dynamic.py: every Vault-issued password is captured in
a side table, every row records ``current_user``, and revocation kills the expired
role's sessions and drops it. A feeder inserts rows into a source table for
``FLBSQL_ROTATION_SECONDS`` (default 30); in_sql reads them and out_sql writes them
with the dynamic credentials. Settings the case needs, and why: the ``vault.*``
options (the subject of the test), ``retry_limit no_limits`` (a flush that races a
revocation is retried, never dropped after Fluent Bit's single default retry), and
``log_level debug`` on the output (the "no password in the log" check then covers
the most talkative level).
"""

from __future__ import annotations

import time

import pytest

from tests.fluentbit.common import Feeder, needs_fluent_bit, source_table, wait_rows
from tests.integration.test_vault_dynamic import (  # noqa: F401  (fixtures)
    RENEW_BEFORE,
    SECONDS,
    TTL,
    db_engine,
    scram_cluster,
)

pytestmark = [
    needs_fluent_bit,
    pytest.mark.fluentbit,
    pytest.mark.vault,
    pytest.mark.postgres,
    pytest.mark.chaos,
    pytest.mark.slow,
]


def test_rotating_credentials_deliver_every_record_once_and_log_no_password(
    fluent_bit,
    vault,
    scram_cluster,  # noqa: F811
    db_engine,  # noqa: F811
    pg_db,
    tmp_path,
):
    role_id, secret_id = db_engine
    sid = tmp_path / "secret_id"
    sid.write_text(secret_id + "\n")
    scram_cluster.execute("TRUNCATE t", "app")
    src = source_table(pg_db, 0)
    sink_url = f"postgresql://127.0.0.1:{scram_cluster.port}/app"
    conf = fluent_bit.config(
        inputs=[
            {"name": "sql", "tag": "src", "url": pg_db.url, "table": src, "db": tmp_path / "pos.db"}
        ],
        outputs=[
            {
                "name": "sql",
                "match": "*",
                "url": sink_url,
                "table": "t",
                "retry_limit": "no_limits",
                "log_level": "debug",
                "vault.address": vault.address,
                "vault.auth": "approle",
                "vault.role_id": role_id,
                "vault.secret_id": f"file:{sid}",
                "vault.db_role": "writer",
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
        url = scram_cluster.url("app")
        took = wait_rows(url, "t", sent, 120, key="(data::jsonb->>'id')::bigint")
        time.sleep(3)
        out = run.metrics()["output"]["sql.0"]
    finally:
        feeder.halt.set()
        code = run.stop()
    log = run.log()
    rows = scram_cluster.execute("SELECT (data::jsonb->>'id')::bigint, who FROM t", "app")
    keys = [k for k, _ in rows]
    writers = {w for _, w in rows}
    issued = scram_cluster.execute("SELECT name, password FROM issued", "app")
    leaked = [name for name, pw in issued if pw in log]
    print(
        f"\n{fluent_bit.version()}: {SECONDS:.0f}s of writing, TTL {TTL}s, renew_before "
        f"{RENEW_BEFORE}; sent={sent} rows={len(keys)} distinct={len(set(keys))}; "
        f"{len(issued)} credentials issued, {len(writers)} wrote rows; caught up {took:.1f}s "
        f"after the feed stopped; passwords in log={len(leaked)}; output {out}"
    )
    assert code == 0, log[-3000:]
    assert sorted(keys) == list(range(1, sent + 1)), "a record is missing or duplicated"
    assert len(writers) >= 3, f"only {writers} wrote rows"
    assert all(w.startswith("v-") for w in writers)
    assert not leaked, f"passwords of {leaked} appear in the log"
    assert secret_id not in log
    assert "rotated to new database credentials" in log
    assert out["errors"] == 0 and out["dropped_records"] == 0, out
