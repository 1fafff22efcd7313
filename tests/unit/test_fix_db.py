"""The database fixtures' own promises: Oracle and SQL Server from Testcontainers.

Only what runs without a Docker engine is checked here: the classes import and the
engine probe says why it cannot be used.
"""

from __future__ import annotations

import inspect

from tests import fix_db


def test_testcontainers_classes_take_what_the_fixtures_pass():
    from testcontainers.community.mssql import SqlServerContainer
    from testcontainers.community.oracle import OracleDbContainer

    assert {"username", "password"} <= set(inspect.signature(OracleDbContainer).parameters)
    assert "password" in inspect.signature(SqlServerContainer).parameters


def test_docker_probe_says_why_not(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    why = fix_db.docker_engine()
    assert why is not None and "nothing.sock" in why
    monkeypatch.setenv("DOCKER_HOST", "ssh://example")
    assert "only unix:// and tcp://" in (fix_db.docker_engine() or "")
