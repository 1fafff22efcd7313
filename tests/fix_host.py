"""Driving the C test host (``build/flbhost``) that loads the plugins like Fluent Bit.

``host.run("-i", "feed", "-p", f"file={frames}", "-o", "sql", "-p", "url=...")`` runs
one pipeline to completion and returns its exit code, logs and final stats.
Event builders produce both Fluent Bit event formats with every timestamp kind.
"""

from __future__ import annotations

import json
import os
import pathlib
import struct
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = pathlib.Path(os.environ.get("FLBSQL_SAN_BUILD") or ROOT / "build")
LIBDIR = pathlib.Path(os.environ.get("FLBSQL_SAN_BUILD") or ROOT / "src" / "flbsql" / "lib")


def event_time(sec: int, nsec: int = 0) -> msgpack.ExtType:
    """Fluent Bit's EventTime: msgpack ext type 0, two big-endian uint32."""
    return msgpack.ExtType(0, struct.pack(">II", sec, nsec))


def event_v2(
    body: dict[str, Any],
    sec: int = 1_700_000_000,
    nsec: int = 0,
    meta: dict[str, Any] | None = None,
) -> bytes:
    """``[[EventTime, metadata], body]``, Fluent Bit's default since v2.1."""
    packed: bytes = msgpack.packb([[event_time(sec, nsec), meta or {}], body])
    return packed


def event_classic(body: dict[str, Any], ts: Any = 1_700_000_000) -> bytes:
    """``[timestamp, body]`` with an EventTime, int or float timestamp."""
    packed: bytes = msgpack.packb([ts, body])
    return packed


def group_marker(start: bool = True) -> bytes:
    """OpenTelemetry group start/end marker (not a record)."""
    packed: bytes = msgpack.packb(
        [[event_time(0xFFFFFFFF if start else 0xFFFFFFFE, 0), {}], {"resource": {}}]
    )
    return packed


def write_frames(path: pathlib.Path, chunks: Iterable[bytes]) -> pathlib.Path:
    """The feed input's file: u32le length + msgpack chunk, repeated."""
    with open(path, "wb") as f:
        for chunk in chunks:
            f.write(struct.pack("<I", len(chunk)))
            f.write(chunk)
    return path


def read_sink(path: pathlib.Path) -> list[tuple[str, bytes]]:
    """(tag, chunk) pairs written by the host's sink output."""
    out = []
    data = pathlib.Path(path).read_bytes()
    off = 0
    while off < len(data):
        (tlen,) = struct.unpack_from("<I", data, off)
        tag = data[off + 4 : off + 4 + tlen].decode()
        off += 4 + tlen
        (dlen,) = struct.unpack_from("<I", data, off)
        out.append((tag, data[off + 4 : off + 4 + dlen]))
        off += 4 + dlen
    return out


def sink_records(path: pathlib.Path) -> list[Any]:
    """Every event the sink received, decoded (EventTime kept as ExtType)."""
    events = []
    for _, chunk in read_sink(path):
        events.extend(
            msgpack.Unpacker(__import__("io").BytesIO(chunk), raw=False, strict_map_key=False)
        )
    return events


def props(**kv: Any) -> list[str]:
    """``-p key=value`` arguments (dots in keys: pass a dict via **{"a.b": 1})."""
    args: list[str] = []
    for k, v in kv.items():
        if isinstance(v, bool):
            v = "on" if v else "off"
        args += ["-p", f"{k}={v}"]
    return args


@dataclass
class HostResult:
    """What one host run left behind."""

    returncode: int
    stdout: str
    stderr: str
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def log(self) -> str:
        """Fluent Bit's log (the host prints it on stderr)."""
        return self.stderr


class Host:
    """Runs ``build/flbhost`` with the plugin libraries."""

    binary = BUILD / "flbhost"
    in_sql = LIBDIR / "in_sql.so"
    out_sql = LIBDIR / "out_sql.so"

    def command(self, *args: str, plugins: Sequence[pathlib.Path] | None = None) -> list[str]:
        """The argv for a run: every plugin library loaded with -e first."""
        libs = plugins if plugins is not None else (self.in_sql, self.out_sql)
        cmd = [str(self.binary)]
        for lib in libs:
            cmd += ["-e", str(lib)]
        return cmd + list(args)

    def run(
        self,
        *args: str,
        timeout: float = 120,
        env: dict[str, str] | None = None,
        plugins: Sequence[pathlib.Path] | None = None,
        check: bool = False,
        cwd: pathlib.Path | None = None,
    ) -> HostResult:
        """Run to completion; the last stdout line is the stats JSON."""
        proc = subprocess.run(
            self.command(*args, plugins=plugins),
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            check=False,
            cwd=cwd,
        )
        stats: dict[str, Any] = {}
        for line in reversed(proc.stdout.strip().splitlines()):
            if line.startswith("{"):
                stats = json.loads(line)
                break
        result = HostResult(proc.returncode, proc.stdout, proc.stderr, stats)
        if check and proc.returncode != 0:
            raise AssertionError(f"host exited {proc.returncode}\n{proc.stderr[-4000:]}")
        return result

    def start(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        plugins: Sequence[pathlib.Path] | None = None,
        stderr: Any = subprocess.PIPE,
    ) -> subprocess.Popen[str]:
        """Start in the background (for kill -9, pause/resume, outages)."""
        return subprocess.Popen(
            self.command(*args, plugins=plugins),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, **(env or {})},
        )


@pytest.fixture(scope="session")
def host() -> Host:
    """The built test host and plugins (``make build``); missing ones fail the test."""
    h = Host()
    for path in (h.binary, h.in_sql, h.out_sql):
        if not path.exists():
            pytest.fail(f"{path} is missing: run `make build` first")
    return h
