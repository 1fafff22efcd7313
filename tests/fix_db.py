"""Database fixtures: each test session gets its own throwaway databases.

Order of preference for each server: an explicit URL (``FLBSQL_TEST_<DB>_URL``),
the machine's local server (PostgreSQL 127.0.0.1:5432 trust auth, MariaDB
127.0.0.1:3306 root), else Testcontainers when Docker works. With
``--require-services`` (CI) a missing PostgreSQL or MariaDB fails the run.

Every session creates ``flbsql_t<random>`` databases and drops them at the end,
so CI leaves the services as it found them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
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

        conn = get_dialect(p.dialect).connect(p)
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


def _optional(request: pytest.FixtureRequest, env: str, what: str) -> TestDB:
    url = os.environ.get(env)
    if not url:
        pytest.skip(f"{what}: set {env} (e.g. from docker/compose.yml) to run it live")
    return TestDB(what, url)


@pytest.fixture(scope="session")
def oracle_db(request: pytest.FixtureRequest) -> TestDB:
    """Oracle, only when a URL is given."""
    return _optional(request, "FLBSQL_TEST_ORACLE_URL", "oracle")


@pytest.fixture(scope="session")
def mssql_db(request: pytest.FixtureRequest) -> TestDB:
    """SQL Server, only when a URL is given."""
    return _optional(request, "FLBSQL_TEST_MSSQL_URL", "mssql")


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
