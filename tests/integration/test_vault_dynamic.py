"""Dynamic database credentials from OpenBao, rotated under continuous writes.

A throwaway PostgreSQL cluster where every role but ``postgres`` must give its
password (scram-sha-256), the OpenBao database engine creating real login roles
with a short TTL, and the output logging in to Vault with AppRole. The table
records ``current_user`` for every row, so the rotations are counted from the data
itself. Vault's revocation terminates the expired role's sessions and drops it, so
a pool that kept an old connection would fail.

``FLBSQL_ROTATION_SECONDS`` (default 30) is how long the output writes and
``FLBSQL_ROTATION_TTL`` (default 10) the lease TTL; the acceptance run is
``FLBSQL_ROTATION_SECONDS=180 FLBSQL_ROTATION_TTL=30``. Every Vault-issued password is
captured (the creation statement stores it in a side table) and the host's whole
log is searched for it.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from tests.fix_host import event_v2, props, write_frames
from tests.fix_vault import database_role

pytestmark = [pytest.mark.vault, pytest.mark.postgres, pytest.mark.shim, pytest.mark.chaos]

SECONDS = float(os.environ.get("FLBSQL_ROTATION_SECONDS", "30"))
TTL = int(os.environ.get("FLBSQL_ROTATION_TTL", "10"))
RENEW_BEFORE = 0.33
PACE = 0.04  # seconds each INSERT/COPY statement sleeps server-side: a steady write rate
RECS = 10

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
def scram_cluster(pg_cluster_factory):
    cluster = pg_cluster_factory(
        hba=["host all postgres 127.0.0.1/32 trust", "host all all 127.0.0.1/32 scram-sha-256"]
    )
    cluster.execute("CREATE DATABASE app")
    for stmt in (
        "CREATE ROLE flb_writer NOLOGIN",
        "CREATE TABLE issued (name text, password text)",
        "CREATE TABLE t (tag text, time text, data text, who text DEFAULT current_user)",
        "GRANT USAGE, CREATE ON SCHEMA public TO flb_writer",
        "GRANT SELECT, INSERT ON t TO flb_writer",
        f"""CREATE FUNCTION pace() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN PERFORM pg_sleep({PACE}); RETURN NULL; END $$""",
        "CREATE TRIGGER pace BEFORE INSERT ON t FOR EACH STATEMENT EXECUTE FUNCTION pace()",
    ):
        cluster.execute(stmt, "app")
    return cluster


@pytest.fixture(scope="module")
def db_engine(vault, scram_cluster):
    """database/ mount with a role issuing TTL-second credentials; an AppRole to read them."""
    c = vault.client()
    database_role(c, "writer", scram_cluster.port, "app", CREATION, REVOCATION, ttl=TTL)
    c.sys.create_or_update_policy(
        "flbsql-db",
        'path "database/creds/writer" { capabilities = ["read"] }\n'
        'path "sys/leases/renew" { capabilities = ["update"] }\n'
        'path "sys/leases/revoke" { capabilities = ["update"] }',
    )
    if "approle/" not in c.sys.list_auth_methods()["data"]:
        c.sys.enable_auth_method("approle")
    c.auth.approle.create_or_update_approle(
        "flbsql-db", token_policies=["flbsql-db"], token_ttl="1h"
    )
    role_id = c.auth.approle.read_role_id("flbsql-db")["data"]["role_id"]
    secret_id = c.auth.approle.generate_secret_id("flbsql-db")["data"]["secret_id"]
    return role_id, secret_id


def test_rotation_under_continuous_writes_loses_nothing_and_logs_no_secret(
    host, vault, scram_cluster, db_engine, tmp_path
):
    role_id, secret_id = db_engine
    sid = tmp_path / "secret_id"
    sid.write_text(secret_id + "\n")
    chunks = int(SECONDS / PACE)  # each flush sleeps PACE server-side: >= SECONDS of writing
    total = chunks * RECS
    frames = write_frames(
        tmp_path / "frames.bin",
        (b"".join(event_v2({"k": c * RECS + i}) for i in range(RECS)) for c in range(chunks)),
    )
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
                url=f"postgresql://127.0.0.1:{scram_cluster.port}/app",
                table="t",
                retry_limit="no_limits",
                log_level="debug",
                # one flush at a time: the PACE of each flush is what makes the
                # writing last SECONDS (two workers would halve it)
                workers="1",
                **{
                    "vault.address": vault.address,
                    "vault.auth": "approle",
                    "vault.role_id": role_id,
                    "vault.secret_id": f"file:{sid}",
                    "vault.db_role": "writer",
                    "vault.renew_before": RENEW_BEFORE,
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
    rows = scram_cluster.execute("SELECT (data::jsonb->>'k')::int, who FROM t", "app")
    keys = {k for k, _ in rows}
    writers = {w for _, w in rows}
    issued = scram_cluster.execute("SELECT name, password FROM issued", "app")
    rotations = len(writers) - 1
    leaked = [name for name, pw in issued if pw in log_text]
    print(
        f"\nrotation: {elapsed:.0f}s of writing, TTL {TTL}s, {len(issued)} credentials issued, "
        f"{len(writers)} used for rows ({rotations} rotations), {total} records, "
        f"missing={total - len(keys & set(range(total)))}, duplicates={len(rows) - len(keys)}, "
        f"flush_retry={stats.get('flush_retry')}, passwords in log={len(leaked)}"
    )
    assert proc.returncode == 0, log_text[-3000:]
    assert keys == set(range(total)), f"{total - len(keys)} records lost\n{log_text[-3000:]}"
    assert stats["flush_error"] == 0 and stats["chunks_dropped"] == 0
    # renewal ahead of expiry: no flush ever meets a revoked role (a plugin that only
    # reconnects after Vault's revocation killed its session would retry here)
    assert stats["flush_retry"] == 0, f"{stats['flush_retry']} flushes retried\n{log_text[-3000:]}"
    assert elapsed >= SECONDS * 0.9
    # a new credential every TTL * (1 - renew_before) seconds of writing; the first is
    # no rotation and the last period may be cut short
    expected = int(SECONDS / (TTL * (1 - RENEW_BEFORE))) - 1
    assert expected >= 1, "FLBSQL_ROTATION_SECONDS is too short to rotate at all"
    assert rotations >= expected, f"only {rotations} rotations, expected {expected}"
    assert all(w.startswith("v-") for w in writers)  # every row came from a Vault role
    assert not leaked, f"passwords of {leaked} appear in the log"
    assert secret_id not in log_text
    assert "rotated to new database credentials" in log_text


def test_the_last_lease_is_revoked_when_the_output_closes(vault, scram_cluster, db_engine):
    # otherwise its database user lived on until the end of its TTL
    import logging

    from flbsql.conn.connect import open_pool
    from flbsql.settings import parse

    role_id, secret_id = db_engine
    values = {
        "url": f"postgresql://127.0.0.1:{scram_cluster.port}/app",
        "table": "t",
        "vault.address": vault.address,
        "vault.auth": "approle",
        "vault.role_id": role_id,
        "vault.secret_id": secret_id,
        "vault.db_role": "writer",
    }
    pool = open_pool(parse("output", values.get), logging.getLogger("test.vault"))
    with pool.connection() as conn:
        user = conn.cursor().execute("SELECT current_user").fetchone()[0]
    exists = f"SELECT count(*) FROM pg_roles WHERE rolname = '{user}'"
    assert scram_cluster.execute(exists, "app") == [(1,)]
    pool.close()
    assert scram_cluster.execute(exists, "app") == [(0,)]
