"""CDC connects like the pool: a ``vault:`` password and ``vault.db_role`` credentials.

A throwaway ``wal_level=logical`` cluster where every role but ``postgres`` must give
its password (scram-sha-256), so a change can only stream when the password that
came from OpenBao is the right one. The publication is made by ``postgres`` (the
table owner); the CDC role only needs REPLICATION and SELECT.
"""

from __future__ import annotations

import secrets

import pytest
from tests.fix_pglogical import LOGICAL_SETTINGS, drain, open_source
from tests.fix_vault import database_role

pytestmark = [pytest.mark.vault, pytest.mark.postgres, pytest.mark.cdc]

KV_PASSWORD = "kv-" + secrets.token_hex(8)
CREATION = [
    """CREATE ROLE "{{name}}" WITH LOGIN REPLICATION PASSWORD '{{password}}'
       VALID UNTIL '{{expiration}}' IN ROLE cdc_reader""",
]
REVOCATION = [
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{{name}}'",
    'DROP ROLE IF EXISTS "{{name}}"',
]


@pytest.fixture(scope="module")
def scram_logical(pg_cluster_factory):
    cluster = pg_cluster_factory(
        hba=["host all postgres 127.0.0.1/32 trust", "host all all 127.0.0.1/32 scram-sha-256"],
        **LOGICAL_SETTINGS,
    )
    cluster.execute("CREATE ROLE cdc_reader NOLOGIN")
    cluster.execute(f"CREATE ROLE cdc_kv LOGIN REPLICATION PASSWORD '{KV_PASSWORD}'")
    cluster.execute("GRANT cdc_reader TO cdc_kv")
    return cluster


@pytest.fixture
def cdc_app(scram_logical):
    """A database with table t, its publication, and the names of a slot for it."""
    tag = secrets.token_hex(3)
    name = f"cdcv_{tag}"
    scram_logical.execute(f"CREATE DATABASE {name}")
    for stmt in (
        "CREATE TABLE t (id int PRIMARY KEY, v text)",
        "GRANT SELECT ON t TO cdc_reader",
        f"CREATE PUBLICATION p_{tag} FOR TABLE t",
    ):
        scram_logical.execute(stmt, name)
    try:
        yield name, f"s_{tag}", f"p_{tag}"
    finally:
        scram_logical.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            f"WHERE database = '{name}'"
        )
        scram_logical.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _stream(cluster, database, slot, publication, tmp_path, url_user, **extra):
    props = {
        "url": f"postgresql://{url_user}127.0.0.1:{cluster.port}/{database}",
        "mode": "cdc",
        "tables": "t",
        "snapshot": "never",
        "slot": slot,
        "publication": publication,
        "db": str(tmp_path / "pos.db"),
        **extra,
    }
    src = open_source(props)
    try:
        cluster.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')", database)
        cluster.execute("UPDATE t SET v = 'c' WHERE id = 2", database)
        recs = drain(src, lambda r: len(r) >= 3)
    finally:
        src.close()
    return [(r["op"], r["after"]) for r in recs]


def test_password_from_vault_kv_streams_changes(vault, scram_logical, cdc_app, tmp_path):
    vault.client().secrets.kv.v2.create_or_update_secret("cdc", {"password": KV_PASSWORD})
    database, slot, publication = cdc_app
    got = _stream(
        scram_logical,
        database,
        slot,
        publication,
        tmp_path,
        "cdc_kv@",
        password="vault:secret/data/cdc#password",
        **{"vault.address": vault.address, "vault.token": vault.root_token},
    )
    assert got == [
        ("c", {"id": 1, "v": "a"}),
        ("c", {"id": 2, "v": "b"}),
        ("u", {"id": 2, "v": "c"}),
    ]


def test_vault_db_role_streams_changes(vault, scram_logical, cdc_app, tmp_path):
    database_role(
        vault.client(), "cdc", scram_logical.port, "postgres", CREATION, REVOCATION, ttl=600
    )
    database, slot, publication = cdc_app
    got = _stream(
        scram_logical,
        database,
        slot,
        publication,
        tmp_path,
        "",
        **{
            "vault.address": vault.address,
            "vault.token": vault.root_token,
            "vault.db_role": "cdc",
        },
    )
    assert got == [
        ("c", {"id": 1, "v": "a"}),
        ("c", {"id": 2, "v": "b"}),
        ("u", {"id": 2, "v": "c"}),
    ]
