"""Helpers shared by the benchmarks: run the test host, time it, take its peak RSS.

Every figure is measured in the same run as its baseline, on the same machine.
``run_host`` returns wall time, the host's final stats and its peak RSS (from
``wait4``'s rusage, so only that process is counted); ``repeat`` runs a
measurement N times and :func:`median` summarises it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

ROOT = pathlib.Path(__file__).resolve().parent.parent
HOST = ROOT / "build" / "flbhost"
LIB = ROOT / "src" / "flbsql" / "lib"
IN_SQL = LIB / "in_sql.so"
OUT_SQL = LIB / "out_sql.so"
T = TypeVar("T")


@dataclasses.dataclass
class HostRun:
    """One run of ``build/flbhost``."""

    returncode: int
    wall: float  # seconds, process start to exit
    peak_rss_kb: int
    stats: dict[str, Any]
    stderr: str

    def check(self) -> HostRun:
        """Raise with the log tail when the host failed."""
        if self.returncode != 0:
            raise RuntimeError(f"flbhost exited {self.returncode}:\n{self.stderr[-3000:]}")
        return self


def host_cmd(*args: str, plugins: Sequence[pathlib.Path] = (OUT_SQL,)) -> list[str]:
    """argv of a host run with the given plugin libraries loaded first."""
    cmd = [str(HOST)]
    for lib in plugins:
        cmd += ["-e", str(lib)]
    return cmd + list(args)


def run_host(
    *args: str,
    plugins: Sequence[pathlib.Path] = (OUT_SQL,),
    env: dict[str, str] | None = None,
    timeout: float = 1800,
) -> HostRun:
    """Run the host to completion; wall time and peak RSS of that process only."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            host_cmd(*args, plugins=plugins),
            stdout=out,
            stderr=err,
            env={**os.environ, **(env or {})},
            text=True,
        )
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.01)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    stats: dict[str, Any] = {}
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            stats = json.loads(line)
            break
    return HostRun(proc.returncode, wall, peak_rss_kb(stats, usage), stats, stderr)


def peak_rss_kb(stats: dict[str, Any], usage: Any) -> int:
    """The host's own peak RSS (its VmHWM, in its stats) rather than ``ru_maxrss``.

    Linux carries ``ru_maxrss`` over exec from the forking parent, so a benchmark
    process holding a large dataset would be counted as the host's memory.
    """
    value = stats.get("peak_rss_kb")
    return int(value) if isinstance(value, int) and value > 0 else int(usage.ru_maxrss)


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def repeat(n: int, fn: Callable[[], T]) -> list[T]:
    """``fn`` run ``n`` times."""
    return [fn() for _ in range(n)]


def median(values: Iterable[float]) -> float:
    """Median of the values."""
    return float(statistics.median(list(values)))


def write_frames(path: pathlib.Path, chunks: Iterable[bytes]) -> pathlib.Path:
    """The host's feed input file: u32le length + msgpack chunk, repeated."""
    with open(path, "wb") as f:
        for chunk in chunks:
            f.write(struct.pack("<I", len(chunk)))
            f.write(chunk)
    return path


def emit(line: str) -> None:
    """A result line, flushed at once (benchmarks run for minutes)."""
    print(line, flush=True)


def require_build() -> None:
    """Fail early, with the fix, when ``make build`` has not run."""
    missing = [p for p in (HOST, OUT_SQL, IN_SQL) if not p.exists()]
    if missing:
        sys.exit(f"missing {', '.join(map(str, missing))}: run `make build` first")


def result(
    bench: str,
    database: str,
    case: str,
    measured: dict[str, Any],
    *,
    target_rps: float | None = None,
    target_ratio: float | None = None,
    unit: str = "rows/s",
) -> dict[str, Any]:
    """One row of the benchmark table (docs/benchmarks.md).

    ``measured`` carries ``rows_per_s`` (median), ``baseline`` (the raw database
    operation, measured in the same run), ``baseline_rows_per_s``, ``ratio``,
    ``peak_rss_mb`` and the individual ``runs``.
    """
    met: bool | None = None
    if target_rps is not None or target_ratio is not None:
        met = (target_rps is None or measured["rows_per_s"] >= target_rps) and (
            target_ratio is None or measured.get("ratio", 0) >= target_ratio
        )
    target = " and ".join(
        t
        for t in (
            f">= {target_rps:,.0f} {unit}" if target_rps else "",
            f">= {target_ratio:.0%} of baseline" if target_ratio else "",
        )
        if t
    )
    return {
        "benchmark": bench,
        "database": database,
        "case": case,
        "unit": unit,
        **measured,
        "target": target or None,
        "met": met,
    }
