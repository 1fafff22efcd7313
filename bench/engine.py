"""Where a benchmark pipeline runs: a real Fluent Bit, or the project's test host.

``FLBSQL_FLUENT_BIT=/path/to/fluent-bit`` makes every benchmark run in that binary
(the yardstick: what a user gets). Without it the pipelines run in ``build/flbhost``,
and every row says so. Both are driven the same way: a pipeline of
:class:`Section` objects with the plugins' DEFAULT settings unless a case sets one,
run until an output has counted ``records`` records.

Real Fluent Bit is observed from outside, as an operator would: its HTTP server's
``/api/v1/metrics`` (an output's ``proc_records``) says when the last record was
delivered, and ``/proc/<pid>/status`` its peak RSS (``VmHWM``) just before it is
stopped. The wall time runs from process start to the poll that saw the last record
(polls every 20 ms).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
HOST = ROOT / "build" / "flbhost"
LIB = ROOT / "src" / "flbsql" / "lib"
IN_SQL = LIB / "in_sql.so"
OUT_SQL = LIB / "out_sql.so"
POLL = 0.02


@dataclasses.dataclass
class Section:
    """One ``[INPUT]`` or ``[OUTPUT]``: a plugin name and the properties a case sets."""

    kind: str  # "input" | "output"
    name: str
    props: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Run:
    """What one pipeline run measured."""

    wall_s: float
    peak_rss_mb: float
    records: int
    log: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _vm_hwm_kb(pid: int) -> int:
    try:
        text = pathlib.Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    m = re.search(r"^VmHWM:\s+(\d+)\s+kB", text, re.M)
    return int(m.group(1)) if m else 0


class FluentBit:
    """A real Fluent Bit binary."""

    def __init__(self, binary: str) -> None:
        """``binary``: the fluent-bit executable."""
        self.binary = binary
        text = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, check=False
        ).stdout
        m = re.search(r"Fluent Bit v(\S+)", text)
        self.version = m.group(1) if m else "?"
        help_text = subprocess.run(
            [binary, "--help"], capture_output=True, text=True, check=False
        ).stdout
        flags = re.search(r"Build Flags\s*=\s*(.*)", help_text)
        self.build_flags = flags.group(1).strip() if flags else "?"
        self.label = f"Fluent Bit {self.version}"

    def describe(self) -> dict[str, str]:
        """For the report: which host, which version, how it was built."""
        return {"engine": self.label, "binary": self.binary, "build_flags": self.build_flags}

    def run(
        self,
        sections: Sequence[Section],
        *,
        records: int,
        count: str,
        flush: float = 1.0,
        timeout: float = 1800,
        plugins: Sequence[pathlib.Path] = (IN_SQL, OUT_SQL),
        service: dict[str, Any] | None = None,
    ) -> Run:
        """Run until output ``count`` (its alias) has delivered ``records`` records."""
        port = _free_port()
        with tempfile.TemporaryDirectory(prefix="flbsql-bench-") as tmp:
            conf = pathlib.Path(tmp) / "fluent-bit.conf"
            lines = [
                "[SERVICE]",
                f"    flush {flush:g}",
                "    log_level warn",
                "    http_server on",
                "    http_listen 127.0.0.1",
                f"    http_port {port}",
            ]
            lines += [f"    {k} {v}" for k, v in (service or {}).items()]
            for s in sections:
                lines += ["", f"[{s.kind.upper()}]", f"    Name {s.name}"]
                lines += [f"    {k} {v}" for k, v in s.props.items()]
            conf.write_text("\n".join(lines) + "\n")
            cmd = [self.binary]
            for lib in plugins:
                cmd += ["-e", str(lib)]
            cmd += ["-c", str(conf)]
            log = pathlib.Path(tmp) / "log"
            with open(log, "w") as out:
                start = time.monotonic()
                proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
                try:
                    wall, got = self._wait(proc, port, count, records, start, timeout)
                    hwm = _vm_hwm_kb(proc.pid)
                finally:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
            text = log.read_text(errors="replace")
        if got < records:
            raise RuntimeError(
                f"{self.label} delivered {got} of {records} records:\n{text[-3000:]}"
            )
        return Run(wall, hwm / 1024, got, text)

    @staticmethod
    def _wait(
        proc: subprocess.Popen[Any],
        port: int,
        count: str,
        records: int,
        start: float,
        timeout: float,
    ) -> tuple[float, int]:
        got = 0
        deadline = start + timeout
        url = f"http://127.0.0.1:{port}/api/v1/metrics"
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    metrics = json.load(resp)
                got = int(metrics["output"].get(count, {}).get("proc_records", 0))
            except (OSError, ValueError, KeyError):
                pass  # not listening yet
            if got >= records:
                return time.monotonic() - start, got
            time.sleep(POLL)
        return time.monotonic() - start, got


def dummy(record: dict[str, Any], records: int, tag: str = "bench") -> Section:
    """Fluent Bit's ``dummy`` input emitting exactly ``records`` copies of ``record``.

    1,000 copies a tick, 1,000 ticks a second: faster than any output here.
    ``records`` must be a multiple of 1,000.
    """
    if records % 1000:
        raise ValueError("dummy() emits records in thousands")
    props = {"Tag": tag, "dummy": json.dumps(record), "rate": 1000, "copies": 1000}
    return Section("input", "dummy", {**props, "samples": records // 1000})


def ceiling(eng: Engine, record: dict[str, Any], records: int) -> Run:
    """The host's own ceiling for this record, to ``null``: what no plugin can beat.

    Fluent Bit: ``dummy`` as fast as it goes (rate 1000 x 1000 copies). Test host:
    its ``feed`` input replaying ``records`` copies in 2 MB chunks.
    """
    if isinstance(eng, TestHost):
        import msgpack

        event = msgpack.packb(
            [[msgpack.ExtType(0, b"\x65\x00\x00\x00\x00\x00\x00\x00"), {}], record]
        )
        per_chunk = max(1, (2 << 20) // len(event))
        with tempfile.TemporaryDirectory() as tmp:
            feed = pathlib.Path(tmp) / "feed.bin"
            with open(feed, "wb") as f:
                left = records
                while left:
                    n = min(per_chunk, left)
                    f.write((len(event) * n).to_bytes(4, "little") + event * n)
                    left -= n
            return eng.run(
                [Section("input", "feed", {"file": feed}), Section("output", "null", {})],
                records=records,
                count="sink",
                plugins=(),
            )
    return eng.run(
        [
            dummy(record, records),
            Section("output", "null", {"Match": "*", "Alias": "sink"}),
        ],
        records=records,
        count="sink",
        plugins=(),
    )


class TestHost:
    """``build/flbhost``, which loads the plugins as Fluent Bit's proxy loader does."""

    label = "test host (build/flbhost)"
    version = "-"
    build_flags = "-"

    def describe(self) -> dict[str, str]:
        """For the report."""
        return {"engine": self.label, "binary": str(HOST), "build_flags": "-"}

    def run(
        self,
        sections: Sequence[Section],
        *,
        records: int,
        count: str,
        flush: float = 1.0,
        timeout: float = 1800,
        plugins: Sequence[pathlib.Path] = (IN_SQL, OUT_SQL),
        service: dict[str, Any] | None = None,
    ) -> Run:
        """Run until ``records`` records were counted (``--stop-after-records``)."""
        cmd = [str(HOST)]
        for lib in plugins:
            cmd += ["-e", str(lib)]
        for s in sections:
            cmd += ["-i" if s.kind == "input" else "-o", s.name]
            if s.kind == "output":
                cmd += ["-m", str(s.props.get("Match", "*"))]
            for k, v in s.props.items():
                if k.lower() in ("alias", "match"):
                    continue
                if k.lower() == "tag":
                    cmd += ["-t", str(v)]
                    continue
                cmd += ["-p", f"{k}={v}"]
        cmd += ["--flush", f"{flush:g}", "--stop-after-records", str(records)]
        cmd += ["--log-level", "warn"]
        start = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        wall = time.monotonic() - start
        lines = proc.stdout.strip().splitlines()
        stats = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
        got = int(stats.get("records_out", 0))
        if got < records:
            raise RuntimeError(f"{self.label} delivered {got} of {records}:\n{proc.stderr[-3000:]}")
        return Run(wall, int(stats.get("peak_rss_kb", 0)) / 1024, got, proc.stderr)


Engine = FluentBit | TestHost


def engine() -> Engine:
    """Real Fluent Bit when ``FLBSQL_FLUENT_BIT`` names one, else the test host."""
    binary = os.environ.get("FLBSQL_FLUENT_BIT")
    return FluentBit(binary) if binary else TestHost()
