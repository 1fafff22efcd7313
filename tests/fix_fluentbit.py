"""A real Fluent Bit running the plugins: config writer, process driver, log reader.

Enabled by ``FLBSQL_FLUENT_BIT=/path/to/fluent-bit`` (or a ``fluent-bit`` on PATH);
without a binary every test using the ``fluent_bit`` fixture skips, also in CI (CI
has no Fluent Bit build: the C test host stands in for it there). ``make
test-fluent-bit`` runs the suite in ``tests/fluentbit/``::

    def test_x(fluent_bit, pg_db):
        conf = fluent_bit.config(
            inputs=[{"name": "sql", "tag": "s", "url": pg_db.url, "table": "src"}],
            outputs=[{"name": "sql", "match": "*", "url": pg_db.url, "table": "t"}],
            fmt="yaml",                      # or "classic" (the default)
        )
        run = fluent_bit.start(conf)         # the plugins via plugins_file / plugins:
        ...
        run.stop()                           # SIGTERM, wait; run.kill() is SIGKILL
        assert "Traceback" not in run.log()

The plugin libraries are the ones the C test host loads (``tests/fix_host.py``).
Every run writes Fluent Bit's whole output to its own file in the test's directory.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from tests.fix_host import LIBDIR
from tests.fix_pgcluster import free_port

FLUENT_BIT = os.environ.get("FLBSQL_FLUENT_BIT") or shutil.which("fluent-bit")
IN_SQL = LIBDIR / "in_sql.so"
OUT_SQL = LIBDIR / "out_sql.so"

Section = dict[str, Any]


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    return str(v)


def classic_config(service: Section, inputs: Sequence[Section], outputs: Sequence[Section]) -> str:
    """The classic ``[SECTION]`` format."""
    lines: list[str] = []
    for header, sections in (("SERVICE", [service]), ("INPUT", inputs), ("OUTPUT", outputs)):
        for sec in sections:
            lines.append(f"[{header}]")
            lines += [f"    {k} {_value(v)}" for k, v in sec.items()]
            lines.append("")
    return "\n".join(lines)


def yaml_config(
    service: Section,
    inputs: Sequence[Section],
    outputs: Sequence[Section],
    plugins: Sequence[pathlib.Path] = (),
) -> str:
    """The YAML format; every scalar is written as a JSON string (valid YAML)."""

    def block(indent: str, sec: Section) -> list[str]:
        items = list(sec.items())
        out = []
        for i, (k, v) in enumerate(items):
            lead = indent + ("- " if i == 0 else "  ")
            out.append(f"{lead}{k}: {json.dumps(_value(v))}")
        return out

    lines = ["service:"] + [f"  {k}: {json.dumps(_value(v))}" for k, v in service.items()]
    if plugins:
        lines += ["plugins:"] + [f"  - {json.dumps(str(p))}" for p in plugins]
    lines += ["pipeline:", "  inputs:"]
    for sec in inputs:
        lines += block("    ", sec)
    lines.append("  outputs:")
    for sec in outputs:
        lines += block("    ", sec)
    return "\n".join(lines) + "\n"


class FluentBitRun:
    """One Fluent Bit process; its output goes to ``log_path``."""

    def __init__(self, proc: subprocess.Popen[bytes], log_path: pathlib.Path, http_port: int):
        self.proc = proc
        self.log_path = log_path
        self.http_port = http_port
        self.started = time.monotonic()

    def log(self) -> str:
        """Everything Fluent Bit and the plugins printed so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_size(self) -> int:
        """Current length of the log, to cut a window out of it later."""
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int, until: int | None = None) -> str:
        """The log between two ``log_size()`` marks."""
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            data = f.read() if until is None else f.read(max(0, until - offset))
        return data.decode(errors="replace")

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc.poll() is None

    def metrics(self) -> dict[str, Any]:
        """``/api/v1/metrics`` (needs ``http=True`` at start)."""
        url = f"http://127.0.0.1:{self.http_port}/api/v1/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            data: dict[str, Any] = json.loads(resp.read())
            return data

    def reload(self) -> None:
        """SIGHUP: hot reload (Fluent Bit started with -Y)."""
        self.proc.send_signal(signal.SIGHUP)

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.alive():
            self.proc.kill()
        self.proc.wait(30)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM (a clean shutdown within Fluent Bit's grace) and wait; SIGKILL if stuck."""
        if self.alive():
            self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            self.proc.kill()
            self.proc.wait(30)
            msg = f"Fluent Bit did not stop in {timeout}s\n{self.log()[-3000:]}"
            raise AssertionError(msg) from exc


class FluentBit:
    """Writes configs into the test's directory and starts the binary on them."""

    def __init__(self, binary: str, workdir: pathlib.Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.runs: list[FluentBitRun] = []
        self._confs = 0
        self._http_ports: dict[pathlib.Path, int] = {}

    @property
    def storage_path(self) -> pathlib.Path:
        """A ``storage.path`` for filesystem buffering, kept across runs of one test."""
        return self.workdir / "fb-storage"

    def version(self) -> str:
        """``fluent-bit --version``'s first line."""
        out = subprocess.run(
            [self.binary, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
        return (out.stdout or out.stderr).strip().splitlines()[0]

    def config(
        self,
        inputs: Sequence[Section],
        outputs: Sequence[Section],
        service: Section | None = None,
        fmt: str = "classic",
        plugins: str = "config",
        http: bool = False,
    ) -> pathlib.Path:
        """Write a config; ``plugins="config"`` loads the .so files from it
        (classic: ``plugins_file``; YAML: ``plugins:``), ``"cli"`` leaves that to ``-e``.
        ``http=True`` turns on the HTTP server for :meth:`FluentBitRun.metrics`."""
        self._confs += 1
        svc: Section = {"flush": 1, "log_level": "info"}
        port = free_port() if http else 0
        if http:
            svc |= {"http_server": "on", "http_listen": "127.0.0.1", "http_port": port}
        svc |= service or {}
        libs = (IN_SQL, OUT_SQL) if plugins == "config" else ()
        if fmt == "yaml":
            path = self.workdir / f"fluent-bit-{self._confs}.yaml"
            path.write_text(yaml_config(svc, inputs, outputs, libs))
        else:
            if libs:
                pfile = self.workdir / f"plugins-{self._confs}.conf"
                pfile.write_text("[PLUGINS]\n" + "".join(f"    Path {p}\n" for p in libs))
                svc = {**svc, "plugins_file": pfile}
            path = self.workdir / f"fluent-bit-{self._confs}.conf"
            path.write_text(classic_config(svc, inputs, outputs))
        self._http_ports[path] = port
        return path

    def start(self, conf: pathlib.Path, *args: str, cli_plugins: bool = False) -> FluentBitRun:
        """Start Fluent Bit on ``conf`` (``cli_plugins``: load the .so files with ``-e``)."""
        cmd = [self.binary]
        if cli_plugins:
            cmd += ["-e", str(IN_SQL), "-e", str(OUT_SQL)]
        cmd += ["-c", str(conf), *args]
        log_path = self.workdir / f"fluent-bit-run{len(self.runs)}.log"
        http_port = self._http_ports.get(conf, 0)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        run = FluentBitRun(proc, log_path, http_port)
        self.runs.append(run)
        return run

    def stop_all(self) -> None:
        """Kill whatever is still running (test teardown)."""
        for run in self.runs:
            if run.alive():
                run.kill()


@pytest.fixture
def fluent_bit(tmp_path: pathlib.Path) -> Any:
    """A :class:`FluentBit` for this test; skips without a binary."""
    if not FLUENT_BIT:
        pytest.skip("no Fluent Bit binary: set FLBSQL_FLUENT_BIT=/path/to/fluent-bit")
    for lib in (IN_SQL, OUT_SQL):
        if not lib.exists():
            pytest.fail(f"{lib} is missing: run `make build` first")
    fb = FluentBit(FLUENT_BIT, tmp_path)
    try:
        yield fb
    finally:
        fb.stop_all()


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass; returns the last result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
