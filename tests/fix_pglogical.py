"""CDC fixtures: one throwaway ``wal_level=logical`` cluster per session, a database per test.

The cluster comes from :mod:`tests.fix_pgcluster` (initdb on a free port from the
local server binaries, as the ``postgres`` OS user when running as root); it is
destroyed at the end of the session. The shared server on 5432 is never touched.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.fix_db import TestDB
from tests.fix_pgcluster import PgCluster

LOGICAL_SETTINGS: dict[str, Any] = {
    "wal_level": "logical",
    "max_replication_slots": 20,
    "max_wal_senders": 20,
    "wal_sender_timeout": "0",
    "max_wal_size": "256MB",
}


class DockerCluster:
    """The PgCluster surface the CDC tests use, on a Testcontainers postgres:15."""

    def __init__(self, container: Any) -> None:
        self.container = container
        self.host = container.get_container_host_ip()
        self.port = int(container.get_exposed_port(5432))

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}:test@{self.host}:{self.port}/{database}"

    def running(self) -> bool:
        return True

    def start(self) -> None:  # pragma: no cover - never stopped by the CDC tests
        pass

    def execute(self, sql: str, database: str = "postgres") -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as c:
            cur = c.execute(sql)
            return list(cur.fetchall()) if cur.description else []


@pytest.fixture(scope="session")
def pg_logical(
    request: pytest.FixtureRequest, pg_cluster_factory: Callable[..., PgCluster]
) -> Iterator[Any]:
    """A running cluster with wal_level=logical (shared by the session's CDC tests).

    From the local server binaries; without them, a Testcontainers postgres:15 when
    Docker works (else skip, or fail under --require-services).
    """
    from tests.fix_pgcluster import find_pg_bin

    if find_pg_bin() is not None:
        yield pg_cluster_factory(**LOGICAL_SETTINGS)
        return
    try:
        from testcontainers.postgres import PostgresContainer

        args = " ".join(f"-c {k}={v}" for k, v in LOGICAL_SETTINGS.items())
        container = PostgresContainer("postgres:15", password="test").with_command(
            f"postgres {args}"
        )
        container.start()
    except Exception as exc:
        msg = f"no PostgreSQL binaries and no Docker for a logical cluster: {exc}"
        if request.config.getoption("--require-services"):
            pytest.fail(msg)
        pytest.skip(msg)
    try:
        yield DockerCluster(container)
    finally:
        container.stop()


@dataclass(frozen=True)
class CdcDB(TestDB):
    """A database in the logical cluster, plus names unique to one test."""

    slot: str = "flbsql"
    publication: str = "flbsql"

    def props(self, tmp_path: Any, **extra: Any) -> dict[str, str]:
        """Input properties for mode cdc on this database (position file in tmp_path)."""
        base = {
            "url": self.url,
            "mode": "cdc",
            "slot": self.slot,
            "publication": self.publication,
            "db": str(tmp_path / "pos.db"),
        }
        base.update({k.replace("__", "."): str(v) for k, v in extra.items()})
        return base


@pytest.fixture
def cdc_db(pg_logical: Any) -> Iterator[CdcDB]:
    """A fresh database; its slots are dropped and the database removed afterwards."""
    if not pg_logical.running():
        pg_logical.start()
    name = "cdc_" + secrets.token_hex(4)
    pg_logical.execute(f'CREATE DATABASE "{name}"')
    tag = secrets.token_hex(3)
    db = CdcDB("postgresql", pg_logical.url(name), slot=f"s_{tag}", publication=f"p_{tag}")
    try:
        yield db
    finally:
        pg_logical.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            f"WHERE database = '{name}'"
        )
        pg_logical.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def open_source(props: dict[str, str]) -> Any:
    """A :class:`~flbsql.cdc.source.CdcSource` for these input properties."""
    import logging

    from flbsql.cdc.source import CdcSource
    from flbsql.settings import parse

    log = logging.getLogger("flbsql.test.cdc")
    return CdcSource(parse("input", props.get), log)


def drain(
    src: Any,
    until: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 30.0,
    out: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Collect record bodies like Fluent Bit would (next_batch, then commit) until
    ``until(records)`` is true; fails after ``timeout`` seconds."""
    import io
    import time

    import msgpack

    records = out if out is not None else []
    deadline = time.monotonic() + timeout
    while not until(records):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out with {len(records)} records: {records[-3:]}")
        if src.worker.fatal is not None:
            raise AssertionError(f"source stopped: {src.worker.fatal}")
        data = b"".join(src.next_batch())
        if not data:
            time.sleep(0.05)
            continue
        for event in msgpack.Unpacker(io.BytesIO(data), raw=False, strict_map_key=False):
            records.append(event[1])
        src.commit()
        src.landed(1)  # the engine took it into a chunk
    return records
