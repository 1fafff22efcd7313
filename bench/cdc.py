"""CDC benchmark: changes/s by transaction size, and end-to-end latency.

``python -m bench cdc [--changes 200000] [--latency-seconds 15]`` (``make bench-cdc``)
starts a throwaway ``wal_level=logical`` cluster from the local server binaries
(``tests/fix_pgcluster.py``; the shared server is not touched) and measures:

- **throughput**: a backlog of N inserted rows committed in transactions of 1,
  100 or 10,000 rows (generated server-side), then ``build/flbhost`` with
  ``in_sql.so mode=cdc snapshot=never`` and ``-o null`` until every change was
  written to a sink file that the bench follows. changes/s = N / (time from the
  first possible collect, 0.4 s after start, to the arrival of the last record).
  The collect interval is Fluent Bit's fixed 1 s, so results are quantised by it:
  use ``--changes`` large enough for several seconds of work.
- **latency**: a steady workload (10-row transactions at about 200/s) while the host
  streams to a sink file; the bench tails the file and stamps each chunk on
  arrival. latency = arrival - commit_time of each record; p50 and p99.

Prints one line per measurement and a JSON summary last.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pathlib
import struct
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import msgpack
from bench.common import HOST, IN_SQL, emit, peak_rss_kb, require_build, result

ROOT = pathlib.Path(__file__).resolve().parent.parent
GEN = {
    1: "DO $$ BEGIN FOR k IN 0..{n}-1 LOOP INSERT INTO {t} VALUES (k, k, md5(k::text), now());"
    " COMMIT; END LOOP; END $$",
    100: "DO $$ BEGIN FOR k IN 0..{n}/100-1 LOOP INSERT INTO {t} SELECT i, i, md5(i::text), "
    "now() FROM generate_series(k*100, k*100+99) i; COMMIT; END LOOP; END $$",
    10_000: "DO $$ BEGIN FOR k IN 0..{n}/10000-1 LOOP INSERT INTO {t} SELECT i, i, "
    "md5(i::text), now() FROM generate_series(k*10000, k*10000+9999) i; COMMIT; "
    "END LOOP; END $$",
}


def _props(url: str, table: str, tag: str, db: pathlib.Path, **extra: Any) -> list[str]:
    kv = {
        "url": url,
        "mode": "cdc",
        "tables": table,
        "slot": f"s_{tag}",
        "publication": f"p_{tag}",
        "db": str(db),
        "snapshot": "never",
        "rows_per_collect": 400_000,
        "bytes_per_collect": "48M",
        "fetch_size": 5000,
        "heartbeat_interval": "1s",
        **extra,
    }
    out: list[str] = []
    for k, v in kv.items():
        out += ["-p", f"{k}={v}"]
    return out


def _host_cmd(props: list[str], sink: pathlib.Path, *extra: str) -> list[str]:
    """The host running in_sql (``props``) into a sink file at Fluent Bit's 1 s cadence."""
    return [
        str(HOST),
        "-e",
        str(IN_SQL),
        "-i",
        "sql",
        *props,
        "-o",
        "sink",
        "-p",
        f"file={sink}",
        "--interval",
        "1000",
        *extra,
    ]


def throughput(cluster: Any, url: str, size: int, n: int, tmp: pathlib.Path) -> dict[str, Any]:
    """Backlog of n changes in transactions of ``size`` rows, then drain it."""
    import psycopg

    table, tag = f"bench_{size}", f"b{size}"
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(f"DROP TABLE IF EXISTS {table}")
        c.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, n int, s text, ts timestamptz)")
        c.execute(f"CREATE PUBLICATION p_{tag} FOR TABLE {table}")
        c.execute(f"SELECT pg_create_logical_replication_slot('s_{tag}', 'pgoutput')")
        t0 = time.perf_counter()
        c.execute(GEN[size].format(n=n, t=table))  # type: ignore[arg-type]
        c.execute("SELECT pg_switch_wal()")
        gen = time.perf_counter() - t0
        # the raw database operation: decode the same backlog from a copy of the slot and
        # fetch every pgoutput message to the client (binary), without the plugin
        c.execute(f"SELECT pg_copy_logical_replication_slot('s_{tag}', 's_{tag}_raw')")
        t0 = time.perf_counter()
        with c.cursor(binary=True) as cur:
            cur.execute(
                f"SELECT data FROM pg_logical_slot_peek_binary_changes('s_{tag}_raw', NULL, "
                f"NULL, 'proto_version', '1', 'publication_names', 'p_{tag}')"
            )
            while cur.fetchmany(10_000):
                pass
        raw_rate = n / (time.perf_counter() - t0)
        c.execute(f"SELECT pg_drop_replication_slot('s_{tag}_raw')")
    sink = tmp / f"{tag}.bin"
    cmd = _host_cmd(
        _props(url, table, tag, tmp / f"{tag}.db"),
        sink,
        "--stop-after-records",
        str(n),
        "--grace",
        "1000",
    )
    arrivals: list[tuple[float, int]] = []
    stop = threading.Event()
    tail = threading.Thread(target=_tail, args=(sink, stop, [], arrivals), daemon=True)
    tail.start()
    start = time.time()
    with open(tmp / f"{tag}.log", "w+") as log, open(tmp / f"{tag}.out", "w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=log)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        stop.set()
        tail.join(60)
        if proc.returncode != 0:
            log.seek(0)
            raise RuntimeError(f"flbhost exited {proc.returncode}:\n{log.read()[-3000:]}")
    got = sum(c for _, c in arrivals)
    first_collect = start + 0.4  # --first-delay: nothing can arrive before
    busy = max(arrivals[-1][0] - first_collect, 1e-3) if arrivals else float("inf")
    return {
        "txn_rows": size,
        "changes": n,
        "received": got,
        "seconds": round(busy, 2),
        "changes_per_s": round(got / busy),
        "collects": len(arrivals),
        "raw_changes_per_s": round(raw_rate),
        "generate_s": round(gen, 2),
        "peak_rss_mb": round(peak_rss_kb(_stats(tmp / f"{tag}.out"), usage) / 1024, 1),
    }


def _stats(path: pathlib.Path) -> dict[str, Any]:
    """The host's final stats line."""
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def _tail(
    path: pathlib.Path,
    stop: threading.Event,
    lat: list[float],
    arrivals: list[tuple[float, int]] | None = None,
) -> None:
    """Follow the sink file; stamp each chunk on arrival (latency or counts)."""
    off = 0
    buf = b""
    while not stop.is_set() or buf:
        try:
            with open(path, "rb") as f:
                f.seek(off)
                new = f.read()
        except FileNotFoundError:
            new = b""
        now = time.time()
        off += len(new)
        buf += new
        while len(buf) >= 4:
            (tl,) = struct.unpack_from("<I", buf, 0)
            if len(buf) < 8 + tl:
                break
            (dl,) = struct.unpack_from("<I", buf, 4 + tl)
            if len(buf) < 8 + tl + dl:
                break
            chunk = buf[8 + tl : 8 + tl + dl]
            buf = buf[8 + tl + dl :]
            if arrivals is not None:
                arrivals.append((now, chunk.count(b"\x92\x92\xd7\x00")))
                continue
            for ev in msgpack.Unpacker(io.BytesIO(chunk), raw=False):
                ct = ev[1].get("commit_time")
                if ct:
                    from datetime import datetime

                    lat.append(now - datetime.fromisoformat(ct).timestamp())
        if not new:
            if stop.is_set():
                break
            time.sleep(0.005)


def latency(url: str, seconds: float, tmp: pathlib.Path) -> dict[str, Any]:
    """A steady workload; commit -> arrival at the sink."""
    import psycopg

    table, tag = "bench_lat", "lat"
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, n int, s text, ts timestamptz)")
    sink = tmp / "lat.bin"
    cmd = _host_cmd(_props(url, table, tag, tmp / "lat.db", snapshot="initial"), sink)
    lat: list[float] = []
    stop = threading.Event()
    tail = threading.Thread(target=_tail, args=(sink, stop, lat), daemon=True)
    with open(tmp / "lat.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
        try:
            time.sleep(1.5)
            tail.start()
            k = 0
            with psycopg.connect(url, autocommit=True) as c:
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    with c.transaction():
                        c.execute(
                            f"INSERT INTO {table} SELECT i, i, md5(i::text), now() "
                            "FROM generate_series(%s::int8, %s::int8) i",
                            (k, k + 9),
                        )
                    k += 10
                    time.sleep(0.005)
            time.sleep(3)
        finally:
            proc.terminate()
            proc.wait(20)
            stop.set()
            tail.join(10)
    lat.sort()
    q = (lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]) if lat else (lambda p: float("nan"))
    return {
        "changes": k,
        "received": len(lat),
        "p50_s": round(q(0.50), 3),
        "p99_s": round(q(0.99), 3),
        "max_s": round(lat[-1], 3) if lat else None,
        "mean_s": round(sum(lat) / len(lat), 3) if lat else None,
    }


def run(argv: list[str]) -> list[dict[str, Any]]:
    """Measure; result rows for the report (bench.common.result)."""
    ap = argparse.ArgumentParser(prog="python -m bench cdc")
    ap.add_argument(
        "--changes",
        type=int,
        default=500_000,
        help="changes per throughput run (1-row runs use a fifth)",
    )
    ap.add_argument("--latency-seconds", type=float, default=15.0)
    args = ap.parse_args(argv)
    require_build()
    sys.path.insert(0, str(ROOT))
    from tests.fix_pgcluster import start_cluster

    cluster = start_cluster(
        wal_level="logical",
        max_replication_slots=20,
        max_wal_senders=20,
        max_wal_size="1GB",
        synchronous_commit="on",
    )
    results: dict[str, Any] = {"throughput": [], "latency": None}
    try:
        cluster.execute("CREATE DATABASE bench")
        url = cluster.url("bench")
        with tempfile.TemporaryDirectory(prefix="flbsql-bench-cdc-") as d:
            tmp = pathlib.Path(d)
            for size in (1, 100, 10_000):
                n = args.changes // 5 if size == 1 else args.changes
                r = throughput(cluster, url, size, n, tmp)
                results["throughput"].append(r)
                emit(
                    f"cdc {size:>6}-row transactions: {r['changes_per_s']:>8,} changes/s "
                    f"({r['received']:,}/{n:,} changes in {r['seconds']} s from the first "
                    f"collect, {r['collects']} collects, peak RSS {r['peak_rss_mb']} MB)"
                )
            lat = latency(url, args.latency_seconds, tmp)
            results["latency"] = lat
            emit(
                f"cdc latency commit -> output: p50 {lat['p50_s']} s, p99 {lat['p99_s']} s "
                f"(max {lat['max_s']} s, {lat['received']:,} changes, 10-row txns)"
            )
    finally:
        cluster.destroy()
    emit(json.dumps(results))
    rows = []
    for r in results["throughput"]:
        measured = {
            "rows_per_s": r["changes_per_s"],
            "baseline": "pg_logical_slot_peek_binary_changes, fetched",
            "baseline_rows_per_s": r["raw_changes_per_s"],
            "ratio": r["changes_per_s"] / r["raw_changes_per_s"],
            "peak_rss_mb": r["peak_rss_mb"],
            "runs": [r["changes_per_s"]],
        }
        rows.append(
            result(
                "cdc",
                "PostgreSQL",
                f"{r['changes']:,} changes in {r['txn_rows']:,}-row transactions",
                measured,
                target_rps=100_000 if r["txn_rows"] == 100 else None,
                unit="changes/s",
            )
        )
    lat = results["latency"]
    rows.append(
        {
            "benchmark": "cdc",
            "database": "PostgreSQL",
            "case": f"latency commit -> output, p50 {lat['p50_s']} s (10-row transactions)",
            "unit": "s p99",
            "rows_per_s": lat["p99_s"],
            "baseline": None,
            "peak_rss_mb": None,
            "target": "p99 <= 2 s",
            "met": lat["p99_s"] <= 2.0,
        }
    )
    return rows


def main(argv: list[str]) -> int:
    """Entry point of ``python -m bench cdc``; 1 when a target is missed."""
    rows = run(argv)
    return 0 if all(r.get("met") is not False for r in rows) else 1
