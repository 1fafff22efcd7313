"""No password in Fluent Bit's log: the host's whole log is searched, errors included.

A throwaway cluster where the role must give its password (scram-sha-256). One run
has a wrong password (every connect fails and is logged), one a right password in
the URL while the proxy cuts connections (disconnects and reconnects are logged),
one the password as a ``file:`` reference; all at log level debug.
"""

from __future__ import annotations

import secrets

import pytest
from tests.fix_host import event_v2, props, write_frames

pytestmark = [pytest.mark.postgres, pytest.mark.shim, pytest.mark.chaos]


@pytest.fixture(scope="module")
def scram(pg_cluster_factory):
    cluster = pg_cluster_factory(
        hba=["host all postgres 127.0.0.1/32 trust", "host all all 127.0.0.1/32 scram-sha-256"]
    )
    password = "Pw-" + secrets.token_urlsafe(12)
    cluster.execute("CREATE DATABASE app")
    cluster.execute(f"CREATE ROLE app LOGIN PASSWORD '{password}'")
    cluster.execute("GRANT ALL ON SCHEMA public TO app", "app")
    return cluster, password


def frames(tmp_path, n=200):
    return write_frames(
        tmp_path / "frames.bin",
        [b"".join(event_v2({"k": c * 5 + i}) for i in range(5)) for c in range(n)],
    )


def run_host(host, tmp_path, url, proxy=None, n=200, table="t", **opts):
    log_path = tmp_path / "host.log"
    with open(log_path, "w") as log:
        proc = host.start(
            "--flush",
            "0.05",  # the cuts come in the first second: flush before they do
            "--log-level",
            "debug",
            "--retry-wait",
            "100",
            "--stop-after-records",
            str(n * 5),
            "--duration",
            "20000",
            "-i",
            "feed",
            *props(file=frames(tmp_path, n)),
            "-o",
            "sql",
            *props(url=url, table=table, log_level="debug", **opts),
            stderr=log,
        )
    try:
        if proxy is not None:
            import time

            for _ in range(5):
                time.sleep(0.2)
                proxy.cut()
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return log_path.read_text(errors="replace") + out


def test_wrong_password_is_never_logged(host, scram, tmp_path):
    cluster, _ = scram
    wrong = "Wrong-" + secrets.token_urlsafe(12)
    pw = tmp_path / "pw"
    pw.write_text(wrong + "\n")
    log = run_host(
        host, tmp_path, cluster.url("app", user="app"), n=2, password=f"file:{pw}", retry_limit=2
    )
    assert "password authentication failed" in log  # the failure itself is reported
    assert wrong not in log


def test_password_in_the_url_is_never_logged_through_cuts(host, scram, tmp_path, proxy_factory):
    cluster, password = scram
    proxy = proxy_factory("127.0.0.1", cluster.port)
    url = proxy.url(f"postgresql://app:{password}@127.0.0.1:{cluster.port}/app")
    log = run_host(
        host,
        tmp_path,
        url,
        proxy=proxy,
        n=3000,
        retry_limit="no_limits",
        **{"pool.backoff_initial": "0.05", "pool.backoff_max": "0.2"},
    )
    assert "lost" in log or "cannot connect" in log, "no error was logged: the test proves nothing"
    assert password not in log
    assert "app:***@" in log  # the URL is shown, redacted


def test_password_from_env_is_never_logged(host, scram, tmp_path, monkeypatch):
    cluster, password = scram
    monkeypatch.setenv("FLBSQL_T_APP_PW", password)
    log = run_host(
        host,
        tmp_path,
        cluster.url("app", user="app"),
        n=50,
        table="t_env",  # its own table: the other tests of the module write into t
        password="env:FLBSQL_T_APP_PW",
    )
    rows = cluster.execute("SELECT count(*) FROM t_env", "app")[0][0]
    assert rows == 50 * 5  # 50 chunks of 5 records, each written once
    assert password not in log
