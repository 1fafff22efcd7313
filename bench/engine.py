"""Where a benchmark pipeline runs: a real Fluent Bit, or the project's test host.

``FLBSQL_FLUENT_BIT=/path/to/fluent-bit`` makes every benchmark run in that binary
(the yardstick: what a user gets). Without it the pipelines run in ``build/flbhost``,
and every row says so. Both are driven the same way: a pipeline of
:class:`Section` objects with the plugins' DEFAULT settings unless a case sets one,
run until an output has counted ``records`` records.

Real Fluent Bit is observed from outside, as an operator would: its HTTP server's
``/api/v1/metrics`` (an output's ``proc_records``) says that the last record was
delivered, and ``/proc/<pid>/status`` its peak RSS (``VmHWM``) just before it is
stopped. The wall time runs from process start to the delivery of the last record.
Fluent Bit refreshes those metrics once a second (``flb_metrics_exporter.c``), which
would add up to a second to every run, so where the sink has a clock of its own the
end is taken from it: the ``counter`` output's timestamped line for each flush
(:func:`sink`, the ``null`` output that says when), or a caller's ``finished``
(e.g. when a sink file was last written). Otherwise it is the metrics poll that saw
the last record (polls every 20 ms).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
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
    feed: pathlib.Path | None = None  # frames the bench sends this input (:func:`replay`)


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
        finished: Callable[[], float] | None = None,
    ) -> Run:
        """Run until output ``count`` (its alias) has delivered ``records`` records.

        ``finished``: when the last record was delivered (epoch seconds), asked once
        the metrics have counted them all, before Fluent Bit is stopped.
        """
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
            log, printed = pathlib.Path(tmp) / "log", pathlib.Path(tmp) / "stdout"
            with open(log, "w") as err, open(printed, "w") as out:
                start, epoch = time.monotonic(), time.time()
                proc = subprocess.Popen(cmd, stdout=out, stderr=err)
                senders = [_sender(s, proc) for s in sections if s.feed is not None]
                try:
                    wall, got = self._wait(proc, port, count, records, start, timeout)
                    hwm = _vm_hwm_kb(proc.pid)
                    done = finished() if finished and got >= records else None
                finally:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                    for t in senders:
                        t.join(10)
            text = log.read_text(errors="replace")
            counted = printed.read_text(errors="replace")  # the counter output's lines
        if got < records:
            raise RuntimeError(
                f"{self.label} delivered {got} of {records} records:\n{text[-3000:]}"
            )
        done = done or _counted_at(counted, records)
        if done is not None and 0 < done - epoch < wall:
            wall = done - epoch
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


def _counted_at(log: str, records: int) -> float | None:
    """When the ``counter`` output's flushes first added up to ``records`` (epoch seconds).

    Fluent Bit 5 prints ``{"ts":..., "log_records": n, ...}`` per flush; 4.x prints
    ``ts,n (total = N)``.
    """
    seen = 0
    for line in log.splitlines():
        if line.startswith('{"ts":'):
            try:
                flush = json.loads(line)
            except ValueError:
                continue
            seen += int(flush.get("log_records", flush.get("total", 0)))
            ts = float(flush["ts"])
        elif m := re.match(r"(\d+\.\d+),\d+ \(total = (\d+)\)", line):
            ts, seen = float(m.group(1)), int(m.group(2))
        else:
            continue
        if seen >= records:
            return ts
    return None


def sink(eng: Engine, alias: str = "sink") -> Section:
    """An output that drops every record and says when it had them all.

    Fluent Bit: ``counter`` (``null`` that prints each flush's count and time);
    the test host: ``null``, which it counts itself.
    """
    name = "counter" if isinstance(eng, FluentBit) else "null"
    return Section("output", name, {"Match": "*", "Alias": alias})


def replay(eng: Engine, feed: pathlib.Path, tag: str = "bench") -> Section:
    """The chunks of a frames file (:func:`bench.common.write_frames`), as fast as taken.

    Fluent Bit: its ``forward`` input, sent each chunk as one PackedForward message,
    which it appends as it is (``flb_input_log_append``): the cost of taking a chunk
    in, as the test host's ``feed`` input replays the same file. No ``Mem_Buf_Limit``:
    on pause Fluent Bit closes every forward connection, and a client must resend
    what was not acknowledged, duplicates included; so what the output has not taken
    yet waits in Fluent Bit's memory and counts in its peak RSS, as with ``dummy``.
    """
    if isinstance(eng, TestHost):
        return Section("input", "feed", {"file": feed})
    props = {"Listen": "127.0.0.1", "Port": _free_port()}
    return Section("input", "forward", {**props, "Tag": tag}, feed=feed)


def _sender(section: Section, proc: subprocess.Popen[Any]) -> threading.Thread:
    """A thread sending ``section.feed`` to Fluent Bit's forward input once it listens."""
    import msgpack

    assert section.feed is not None
    feed, port = section.feed, int(section.props["Port"])
    tag = str(section.props.get("Tag", "bench"))

    def send() -> None:
        while proc.poll() is None:
            try:
                sock = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                time.sleep(0.005)  # not listening yet
        else:
            return
        with sock, open(feed, "rb") as f:
            while head := f.read(4):
                chunk = f.read(struct.unpack("<I", head)[0])
                try:
                    sock.sendall(msgpack.packb([tag, chunk]))
                except OSError:
                    return  # Fluent Bit stopped
            sock.shutdown(socket.SHUT_WR)
            sock.recv(1)  # until Fluent Bit closes

    t = threading.Thread(target=send, daemon=True)
    t.start()
    return t


def dummy(record: dict[str, Any], records: int, tag: str = "bench") -> Section:
    """Fluent Bit's ``dummy`` input emitting exactly ``records`` copies of ``record``.

    1,000 copies a tick, 1,000 ticks a second: faster than any output here.
    ``records`` must be a multiple of 1,000.
    """
    if records % 1000:
        raise ValueError("dummy() emits records in thousands")
    props = {"Tag": tag, "dummy": json.dumps(record), "rate": 1000, "copies": 1000}
    return Section("input", "dummy", {**props, "samples": records // 1000})


def ceiling(
    eng: Engine, record: dict[str, Any], records: int, source: Section | None = None
) -> Run:
    """The host's own ceiling for this record, to :func:`sink`: what no plugin can beat.

    ``source``: the input the plugin's run had (e.g. :func:`replay`). Otherwise
    Fluent Bit: ``dummy`` as fast as it goes (rate 1000 x 1000 copies); test host:
    its ``feed`` input replaying ``records`` copies in 2 MB chunks.
    """
    if source is not None:
        return eng.run([source, sink(eng)], records=records, count="sink", plugins=())
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
        [dummy(record, records), sink(eng)],
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
        finished: Callable[[], float] | None = None,  # the host times itself
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
