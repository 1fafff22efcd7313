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


@pytest.fixture(scope="session")
def pg_logical(pg_cluster_factory: Callable[..., PgCluster]) -> PgCluster:
    """A running cluster with wal_level=logical (shared by the session's CDC tests)."""
    return pg_cluster_factory(**LOGICAL_SETTINGS)


@dataclass(frozen=True)
class CdcDB(TestDB):
    """A database in the logical cluster, plus names unique to one test."""

    slot: str = "flbsql"
    publication: str = "flbsql"

    def props(self, tmp_path: Any, **extra: Any) -> dict[str, str]:
        """Input properties for mode cdc on this database (position file in tmp_path)."""
        base = {"url": self.url, "mode": "cdc", "slot": self.slot,
                "publication": self.publication, "db": str(tmp_path / "pos.db")}
        base.update({k.replace("__", "."): str(v) for k, v in extra.items()})
        return base


@pytest.fixture
def cdc_db(pg_logical: PgCluster) -> Iterator[CdcDB]:
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
            f"WHERE database = '{name}'")
        pg_logical.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def open_source(props: dict[str, str]) -> Any:
    """A :class:`~flbsql.cdc.source.CdcSource` for these input properties."""
    import logging

    from flbsql.cdc.source import CdcSource
    from flbsql.config import parse

    log = logging.getLogger("flbsql.test.cdc")
    return CdcSource(parse("input", props.get), log)


def drain(src: Any, until: Callable[[list[dict[str, Any]]], bool], timeout: float = 30.0,
          out: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
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
        data = src.next_batch()
        if not data:
            time.sleep(0.05)
            continue
        for event in msgpack.Unpacker(io.BytesIO(data), raw=False, strict_map_key=False):
            records.append(event[1])
        src.commit()
    return records
