"""Database fixtures: each test session gets its own throwaway databases.

Order of preference for each server: an explicit URL (``FLBSQL_TEST_<DB>_URL``),
then for PostgreSQL and MariaDB the machine's local server (127.0.0.1:5432 trust
auth, 127.0.0.1:3306 root), for Oracle and SQL Server a Testcontainers container
started once per session, on first use, when a Docker engine answers; otherwise
the test is skipped with the reason. With ``--require-services`` (CI) a missing
PostgreSQL or MariaDB fails the run.

Every session creates ``flbsql_t<random>`` databases and drops them at the end,
so CI leaves the services as it found them.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

PG_ADMIN = os.environ.get(
    "FLBSQL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MYSQL_ADMIN = os.environ.get("FLBSQL_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/")


@dataclass(frozen=True)
class TestDB:
    """A database for one test session: the URL to give the plugin, and a DB-API opener."""

    dialect: str
    url: str

    def connect(self) -> Any:
        """A plain driver connection in autocommit, independent of flbsql's code."""
        from flbsql.conn.url import parse_url

        p = parse_url(self.url)
        if self.dialect == "postgresql":
            import psycopg

            return psycopg.connect(self.url, autocommit=True)
        if self.dialect == "mysql":
            import pymysql

            return pymysql.connect(
                host=p.host,
                port=p.port or 3306,
                user=p.user or "root",
                password=p.password or "",
                database=p.database,
                autocommit=True,
                charset="utf8mb4",
            )
        if self.dialect == "sqlite":
            import sqlite3

            return sqlite3.connect(p.database or ":memory:", isolation_level=None)
        from flbsql.dialects import get_dialect

        conn: Any = get_dialect(p.dialect).connect(p)
        conn.autocommit = True
        return conn

    def query(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        """Run one statement and return its rows."""
        conn = self.connect()
        try:
            cur = conn.cursor()
            cur.execute(sql, params)
            rows = cur.fetchall() if cur.description else []
            return [tuple(r) for r in rows]
        finally:
            conn.close()

    def execute(self, sql: str, params: Any = ()) -> None:
        """Run one statement (autocommit)."""
        conn = self.connect()
        try:
            conn.cursor().execute(sql, params)
        finally:
            conn.close()


def _unavailable(request: pytest.FixtureRequest, what: str, exc: BaseException) -> None:
    msg = f"{what} is not reachable: {type(exc).__name__}: {exc}"
    if request.config.getoption("--require-services"):
        pytest.fail(msg + " (--require-services / CI: a missing database is a failure)")
    pytest.skip(msg)


@pytest.fixture(scope="session")
def pg_db(request: pytest.FixtureRequest) -> Iterator[TestDB]:
    """A fresh PostgreSQL database for the session."""
    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except Exception as exc:
        _unavailable(request, f"PostgreSQL ({PG_ADMIN})", exc)
    name = "flbsql_t" + secrets.token_hex(4)
    admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0]
    try:
        yield TestDB("postgresql", f"{base}/{name}")
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def mysql_db(request: pytest.FixtureRequest) -> Iterator[TestDB]:
    """A fresh MariaDB/MySQL database for the session."""
    from flbsql.conn.url import parse_url

    p = parse_url(MYSQL_ADMIN)
    try:
        import pymysql

        admin = pymysql.connect(
            host=p.host,
            port=p.port or 3306,
            user=p.user or "root",
            password=p.password or "",
            autocommit=True,
            connect_timeout=5,
        )
    except Exception as exc:
        _unavailable(request, f"MariaDB ({MYSQL_ADMIN})", exc)
    name = "flbsql_t" + secrets.token_hex(4)
    admin.cursor().execute(f"CREATE DATABASE `{name}`")
    try:
        yield TestDB("mysql", MYSQL_ADMIN.rstrip("/") + "/" + name)
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.fixture
def sqlite_db(tmp_path: Any) -> TestDB:
    """A fresh SQLite file per test."""
    return TestDB("sqlite", str(tmp_path / "test.db"))


def docker_engine() -> str | None:
    """None when a Docker engine answers ``GET /_ping`` (``DOCKER_HOST`` or the default
    socket), else why not.

    A plain socket, not docker-py: its failed connect leaks the socket, which
    ``filterwarnings = error`` turns into an error of an unrelated test.
    """
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: Any = host.removeprefix("unix://")
        elif host.startswith("tcp://"):
            name, _, port = host.removeprefix("tcp://").rstrip("/").rpartition(":")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            address = (name, int(port))
        else:
            return f"DOCKER_HOST={host}: only unix:// and tcp:// are understood here"
        with sock:
            sock.settimeout(5)
            sock.connect(address)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            answer = sock.recv(4096)
    except OSError as exc:
        return f"no Docker engine at {host}: {exc}"
    if not answer.startswith(b"HTTP/1.") or b" 200 " not in answer.split(b"\r\n", 1)[0]:
        return f"{host} answered {answer[:60]!r} to GET /_ping"
    return None


def _oracle_container(password: str) -> tuple[Any, str]:
    from testcontainers.community.oracle import OracleDbContainer

    c = OracleDbContainer(username="flbsql", password=password).start()
    port = c.get_exposed_port(1521)
    return c, f"oracle://flbsql:{password}@{c.get_container_host_ip()}:{port}/FREEPDB1"


def _mssql_container(password: str) -> tuple[Any, str]:
    from testcontainers.community.mssql import SqlServerContainer

    c = SqlServerContainer(password=password).start()
    port = c.get_exposed_port(1433)
    return c, f"mssql://sa:{password}@{c.get_container_host_ip()}:{port}/master"


def _given_or_container(
    dialect: str, env: str, start: Callable[[str], tuple[Any, str]]
) -> Iterator[TestDB]:
    """The URL in ``env``; else a Testcontainers server for the session; else a skip.

    Only the no-Docker path and the imports are exercised on the development
    machine (it has no Docker engine); the container path follows the
    testcontainers documentation and has not been run here.
    """
    url = os.environ.get(env)
    if url:
        yield TestDB(dialect, url)
        return
    why = docker_engine()
    if why is not None:
        pytest.skip(f"{dialect}: set {env} (e.g. from docker/test-urls.sh) or start Docker ({why})")
    password = "Flb1" + secrets.token_hex(8)  # upper, lower and digits: SQL Server's policy
    container, url = start(password)
    try:
        yield TestDB(dialect, url)
    finally:
        container.stop()


@pytest.fixture(scope="session")
def oracle_db() -> Iterator[TestDB]:
    """Oracle: ``FLBSQL_TEST_ORACLE_URL``, else gvenzl/oracle-free in Testcontainers."""
    yield from _given_or_container("oracle", "FLBSQL_TEST_ORACLE_URL", _oracle_container)


@pytest.fixture(scope="session")
def mssql_db() -> Iterator[TestDB]:
    """SQL Server: ``FLBSQL_TEST_MSSQL_URL``, else mssql/server in Testcontainers."""
    yield from _given_or_container("mssql", "FLBSQL_TEST_MSSQL_URL", _mssql_container)


DIALECT_PARAMS = [
    pytest.param("sqlite", marks=pytest.mark.sqlite, id="sqlite"),
    pytest.param("postgresql", marks=pytest.mark.postgres, id="postgresql"),
    pytest.param("mysql", marks=pytest.mark.mysql, id="mysql"),
    pytest.param("oracle", marks=pytest.mark.oracle, id="oracle"),
    pytest.param("mssql", marks=pytest.mark.mssql, id="mssql"),
]

_FIXTURE = {
    "sqlite": "sqlite_db",
    "postgresql": "pg_db",
    "mysql": "mysql_db",
    "oracle": "oracle_db",
    "mssql": "mssql_db",
}


@pytest.fixture(params=DIALECT_PARAMS)
def any_db(request: pytest.FixtureRequest) -> TestDB:
    """Behaviour tests: the same body on every configured dialect."""
    db: TestDB = request.getfixturevalue(_FIXTURE[request.param])
    return db


def unique_table(prefix: str = "t") -> str:
    """A table name no other test uses."""
    return f"{prefix}_{secrets.token_hex(4)}"
