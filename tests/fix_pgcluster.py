"""Throwaway PostgreSQL clusters: initdb on a free port, restart at will, removed after.

The shared server on 127.0.0.1:5432 must never be restarted by a test. Tests that
need a restart (outages) or restart-only settings (``wal_level=logical`` for CDC)
start their own cluster::

    cluster = start_cluster(wal_level="logical", max_replication_slots=4)
    try:
        url = cluster.url("postgres")
        cluster.restart()             # fast shutdown + start, same port and data
        cluster.stop("immediate")      # a crash; cluster.start() brings it back
    finally:
        cluster.destroy()

or through the fixtures: ``pg_cluster`` (one per session, default settings) and
``pg_cluster_factory`` (call it with settings; every cluster it made is destroyed at
the end of the session). Binaries come from ``FLBSQL_PG_BIN`` or
``/usr/lib/postgresql/15/bin`` (else ``pg_config --bindir``). When the tests run as
root, the cluster runs as the ``postgres`` OS user (initdb refuses root), and its
directory lives under the system temp dir so that user can reach it. Without the
binaries the fixtures skip, or fail under ``--require-services``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pathlib
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

__all__ = ["PgCluster", "find_pg_bin", "free_port", "start_cluster"]

DEFAULT_SETTINGS: dict[str, Any] = {
    "fsync": "off",  # throwaway: speed over durability
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "max_connections": 50,
    "log_min_messages": "warning",
}

_ALIVE: list[PgCluster] = []


def find_pg_bin() -> pathlib.Path | None:
    """Directory holding initdb/pg_ctl, or None."""
    candidates = [os.environ.get("FLBSQL_PG_BIN", ""), "/usr/lib/postgresql/15/bin"]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, timeout=10, check=False
        )
        candidates.append(out.stdout.strip())
    for cand in candidates:
        if cand and (pathlib.Path(cand) / "initdb").exists():
            return pathlib.Path(cand)
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _run_as() -> list[str]:
    """Prefix that drops root to the postgres user (initdb and postgres refuse root)."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", os.environ.get("FLBSQL_PG_OS_USER", "postgres"), "--"]


def _conf_value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float)):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


@dataclass
class PgCluster:
    """One private PostgreSQL cluster (trust auth, superuser ``postgres``)."""

    bindir: pathlib.Path
    root: pathlib.Path  # removed by destroy()
    port: int
    settings: dict[str, Any] = field(default_factory=dict)
    hba: list[str] = field(default_factory=list)  # pg_hba.conf lines put before initdb's

    @property
    def datadir(self) -> pathlib.Path:
        """The cluster's PGDATA."""
        return self.root / "data"

    @property
    def logfile(self) -> pathlib.Path:
        """The server log (pg_ctl -l)."""
        return self.root / "server.log"

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        """A libpq URL for this cluster."""
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def _ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [*_run_as(), str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)

    def initdb(self) -> None:
        """Create the data directory and write the settings into postgresql.conf."""
        cmd = [
            *_run_as(),
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if out.returncode:
            raise RuntimeError(f"initdb failed: {out.stdout}\n{out.stderr}")
        conf = {
            **DEFAULT_SETTINGS,
            **self.settings,
            "port": self.port,
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.root),
        }
        if self.hba:
            hba_file = self.datadir / "pg_hba.conf"
            hba_file.write_text("\n".join(self.hba) + "\n" + hba_file.read_text())
        with open(self.datadir / "postgresql.conf", "a", encoding="utf-8") as f:
            f.write("\n# flbsql test cluster\n")
            for key, value in conf.items():
                f.write(f"{key} = {_conf_value(value)}\n")

    def start(self, timeout: float = 60) -> None:
        """Start and wait until it accepts connections."""
        out = self._ctl(
            "-l", str(self.logfile), "-w", "-t", str(int(timeout)), "start", timeout=timeout + 10
        )
        if out.returncode:
            raise RuntimeError(f"pg_ctl start failed: {out.stderr}\n{self.log_tail()}")

    def stop(self, mode: str = "fast") -> None:
        """Stop: ``fast`` (clean, disconnects clients), ``immediate`` (like a crash)."""
        if self.running():
            self._ctl("-w", "-m", mode, "stop")

    def restart(self, mode: str = "fast") -> None:
        """Stop then start on the same port and data."""
        self.stop(mode)
        self.start()

    def running(self) -> bool:
        """True while the postmaster lives."""
        return self._ctl("status").returncode == 0

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server log, for failure messages."""
        try:
            return self.logfile.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def execute(self, sql: str, database: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement in autocommit as the superuser and return rows."""
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=10) as c:
            cur = c.execute(sql)
            return list(cur.fetchall()) if cur.description else []

    def destroy(self) -> None:
        """Stop (immediate) and remove everything."""
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
        with contextlib.suppress(ValueError):
            _ALIVE.remove(self)


def start_cluster(
    base_dir: str | os.PathLike[str] | None = None,
    port: int | None = None,
    hba: list[str] | None = None,
    **settings: Any,
) -> PgCluster:
    """initdb + start a cluster; ``settings`` go to postgresql.conf (restart-only ones too).

    Args:
        base_dir: where to create the cluster's directory (default: the system temp
            dir; it must be reachable by the postgres OS user when running as root).
        port: TCP port (default: a free one).
        hba: pg_hba.conf lines that take precedence over initdb's trust rules, e.g.
            ``["host all postgres 127.0.0.1/32 trust",
            "host all all 127.0.0.1/32 scram-sha-256"]`` to make passwords matter.
        **settings: server settings, e.g. ``wal_level="logical"``.

    Raises:
        RuntimeError: the binaries are missing or the server would not start.
    """
    bindir = find_pg_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found (set FLBSQL_PG_BIN)")
    root = pathlib.Path(tempfile.mkdtemp(prefix="flbsql-pg-", dir=base_dir))
    if os.geteuid() == 0:
        pw = pwd.getpwnam(os.environ.get("FLBSQL_PG_OS_USER", "postgres"))
        os.chmod(root, 0o755)
        os.chown(root, pw.pw_uid, pw.pw_gid)
    cluster = PgCluster(bindir, root, port or free_port(), dict(settings), list(hba or ()))
    _ALIVE.append(cluster)
    try:
        cluster.initdb()
        for attempt in range(3):  # the free port may be taken between probe and bind
            try:
                cluster.start()
                break
            except RuntimeError:
                if attempt == 2 or port is not None:
                    raise
                cluster.port = free_port()
                with open(cluster.datadir / "postgresql.conf", "a", encoding="utf-8") as f:
                    f.write(f"port = {cluster.port}\n")
    except BaseException:
        cluster.destroy()
        raise
    return cluster


@atexit.register
def _destroy_leftovers() -> None:  # a crashed session must not leave servers behind
    while _ALIVE:
        _ALIVE[-1].destroy()


def _unavailable(request: pytest.FixtureRequest, exc: BaseException) -> None:
    msg = f"cannot start a throwaway PostgreSQL cluster: {exc}"
    if request.config.getoption("--require-services"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def pg_cluster_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., PgCluster]]:
    """Call with server settings to get a started cluster; all are destroyed at the end."""
    made: list[PgCluster] = []

    def make(**settings: Any) -> PgCluster:
        try:
            cluster = start_cluster(**settings)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            _unavailable(request, exc)
            raise
        made.append(cluster)
        return cluster

    try:
        yield make
    finally:
        for cluster in made:
            cluster.destroy()


@pytest.fixture(scope="session")
def _pg_cluster_session(pg_cluster_factory: Callable[..., PgCluster]) -> PgCluster:
    return pg_cluster_factory()


@pytest.fixture
def pg_cluster(_pg_cluster_session: PgCluster) -> PgCluster:
    """The session's private cluster (default settings), running, for restart tests."""
    if not _pg_cluster_session.running():  # a previous test left it stopped
        _pg_cluster_session.start()
    return _pg_cluster_session


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
