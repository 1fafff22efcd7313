"""CDC benchmark: changes/s by transaction size, and end-to-end latency, in real Fluent Bit.

``python -m bench cdc [--changes 500000] [--repeat 3] [--latency-seconds 15]``
(``make bench-cdc``) runs in the Fluent Bit named by ``FLBSQL_FLUENT_BIT`` (else in the
test host, labelled so), with in_sql's defaults (only what names the source is set),
on a throwaway ``wal_level=logical`` cluster (``tests/fix_pgcluster.py``; the shared
server is not touched):

- **throughput**: a backlog of N rows committed in transactions of 1, 100 or 10,000
  rows, then in_sql ``mode cdc`` into Fluent Bit's ``file`` output (msgpack) until the
  host counted N records; changes/s = N / time from process start to the file's
  last write. The sink is decoded
  afterwards: exactly N records, N distinct ids. In the same run: the raw database
  operation (peek the same backlog from a copy of the slot, fetched) and the host's
  ceiling (a change record from ``dummy`` into ``null``).
- **latency**: 10-row transactions every 10 ms, in_sql -> out_sql into a sink table
  that stamps each row on insert; latency = that stamp - the change's commit time
  (both the server's clock); p50 and p99, at ``flush 0.2`` and ``flush 1``.

Every figure is the median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import io
import json
import pathlib
import struct
import sys
import tempfile
import threading
import time
from typing import Any

import msgpack
from bench.common import emit, median, require_build, result
from bench.engine import IN_SQL, OUT_SQL, Engine, FluentBit, Section, ceiling, engine

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


def _input(url: str, table: str, tag: str, db: pathlib.Path, **extra: Any) -> Section:
    """in_sql in CDC mode with its defaults: only what names the source is set."""
    props = {
        "Tag": tag,
        "url": url,
        "mode": "cdc",
        "tables": table,
        "slot": f"s_{tag}",
        "publication": f"p_{tag}",
        "db": str(db),
        "snapshot": "never",
        **extra,
    }
    return Section("input", "sql", props)


def _sink(eng: Engine, path: pathlib.Path) -> Section:
    """An output that keeps every record for the check: msgpack to a file."""
    if isinstance(eng, FluentBit):
        props = {"Match": "*", "Alias": "sink", "Path": path.parent, "File": path.name}
        return Section("output", "file", {**props, "Format": "msgpack"})
    return Section("output", "sink", {"file": path})


def _ids(eng: Engine, path: pathlib.Path) -> list[int]:
    """The ``after.id`` of every change record in the sink file, in order."""
    data = path.read_bytes()
    chunks = [data]
    if not isinstance(eng, FluentBit):  # the host's frames: tag and data lengths
        chunks, off = [], 0
        while off + 4 <= len(data):
            (tl,) = struct.unpack_from("<I", data, off)
            (dl,) = struct.unpack_from("<I", data, off + 4 + tl)
            chunks.append(data[off + 8 + tl : off + 8 + tl + dl])
            off += 8 + tl + dl
    ids = []
    for chunk in chunks:
        for ev in msgpack.Unpacker(io.BytesIO(chunk), raw=False, strict_map_key=False):
            body = ev[1]
            ids.append(int(body["after"]["id"]))
    return ids


def _drop_slot(url: str, slot: str) -> None:
    """Slots are per cluster: the next run (another database) names its slot the same."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as c:
        c.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_name = %s AND NOT active",
            (slot,),
        )


def throughput(eng: Engine, url: str, size: int, n: int, tmp: pathlib.Path) -> dict[str, Any]:
    """Backlog of n changes in transactions of ``size`` rows, then drain it."""
    import psycopg

    tmp.mkdir(parents=True, exist_ok=True)
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
    sink = tmp / f"{tag}.msgpack"
    run = eng.run(
        [_input(url, table, tag, tmp / f"{tag}.db"), _sink(eng, sink)],
        records=n,
        count="sink",
        plugins=(IN_SQL,),
        finished=lambda: sink.stat().st_mtime,  # the file output's last write
    )
    _drop_slot(url, f"s_{tag}")
    ids = _ids(eng, sink)
    if len(ids) != n or len(set(ids)) != n:
        raise RuntimeError(f"sink holds {len(ids)} changes, {len(set(ids))} distinct; sent {n}")
    return {
        "txn_rows": size,
        "changes": n,
        "received": len(ids),
        "seconds": round(run.wall_s, 2),
        "changes_per_s": round(n / run.wall_s),
        "raw_changes_per_s": round(raw_rate),
        "generate_s": round(gen, 2),
        "peak_rss_mb": round(run.peak_rss_mb, 1),
    }


def latency(
    eng: Engine, url: str, seconds: float, flush: float, tmp: pathlib.Path
) -> dict[str, Any]:
    """A steady workload; commit -> row in a sink table written by out_sql (cdc -> out_sql).

    10-row transactions every 10 ms for ``seconds``, starting 2 s after Fluent Bit; the
    sink table stamps each row as it is inserted (``clock_timestamp()``), so the latency
    is that stamp minus the change's commit time, both on the server's clock.
    """
    import psycopg

    tag = f"lat{int(flush * 1000)}"
    table, sink = f"bench_{tag}", f"sink_{tag}"
    txns = int(seconds * 100)
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, n int, s text, ts timestamptz)")
        c.execute(
            f"CREATE TABLE {sink} (tag text, time timestamptz, data jsonb, "
            "arrived timestamptz NOT NULL DEFAULT clock_timestamp())"
        )

    def workload() -> None:
        time.sleep(2.0)
        with psycopg.connect(url, autocommit=True) as c:
            for k in range(0, txns * 10, 10):
                with c.transaction():
                    c.execute(
                        f"INSERT INTO {table} SELECT i, i, md5(i::text), now() "
                        "FROM generate_series(%s::int8, %s::int8) i",
                        (k, k + 9),
                    )
                time.sleep(0.01)

    writer = threading.Thread(target=workload, daemon=True)
    writer.start()
    src = _input(url, table, tag, tmp / f"{tag}.db", snapshot="initial")
    out = Section("output", "sql", {"Match": tag, "Alias": "sink", "url": url, "table": sink})
    eng.run([src, out], records=txns * 10, count="sink", flush=flush, plugins=(IN_SQL, OUT_SQL))
    writer.join()
    _drop_slot(url, f"s_{tag}")
    with psycopg.connect(url, autocommit=True) as c:
        rows = c.execute(
            f"SELECT extract(epoch FROM arrived - (data->>'commit_time')::timestamptz) "
            f"FROM {sink} WHERE data->>'commit_time' IS NOT NULL ORDER BY 1"
        ).fetchall()
    lat = [float(r[0]) for r in rows]
    q = (lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]) if lat else (lambda p: float("nan"))
    return {
        "flush": flush,
        "changes": txns * 10,
        "received": len(lat),
        "p50_s": round(q(0.50), 3),
        "p99_s": round(q(0.99), 3),
        "max_s": round(lat[-1], 3) if lat else None,
    }


SAMPLE = {  # one change record as the input emits it, for the ceiling run
    "op": "c",
    "table": "public.bench_100",
    "lsn": "0/16B3748",
    "xid": 1234,
    "commit_time": "2026-01-01T00:00:00.123456+00:00",
    "snapshot": False,
    "overlap": False,
    "pos": 1,
    "before": None,
    "after": {"id": 1, "n": 1, "s": "c4ca4238a0b923820dcc509a6f75849b", "ts": "2026-01-01"},
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
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--latency-seconds", type=float, default=15.0)
    args = ap.parse_args(argv)
    require_build()
    eng = engine()
    sys.path.insert(0, str(ROOT))
    from tests.fix_pgcluster import start_cluster

    cluster = start_cluster(
        wal_level="logical",
        max_replication_slots=40,
        max_wal_senders=20,
        max_wal_size="1GB",
        synchronous_commit="on",
    )
    emit(f"cdc benchmark in {eng.label}, in_sql defaults")
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="flbsql-bench-cdc-") as d:
            tmp = pathlib.Path(d)
            for size in (1, 100, 10_000):
                n = args.changes // 5 if size == 1 else args.changes
                runs, tops = [], []
                for k in range(args.repeat):
                    db = f"bench_{size}_{k}"
                    cluster.execute(f"CREATE DATABASE {db}")
                    r = throughput(eng, cluster.url(db), size, n, tmp / db)
                    runs.append(r)
                    tops.append(n / ceiling(eng, SAMPLE, n // 1000 * 1000).wall_s)
                    emit(
                        f"  run {k + 1}: {size:>6}-row transactions: {r['changes_per_s']:>8,} "
                        f"changes/s ({r['received']:,} distinct of {n:,} in {r['seconds']} s "
                        f"from start, peak RSS {r['peak_rss_mb']} MB), raw peek "
                        f"{r['raw_changes_per_s']:,}, ceiling {tops[-1]:,.0f}"
                    )
                measured = {
                    "rows_per_s": median(r["changes_per_s"] for r in runs),
                    "baseline": "pg_logical_slot_peek_binary_changes, fetched",
                    "baseline_rows_per_s": median(r["raw_changes_per_s"] for r in runs),
                    "ceiling_rows_per_s": median(tops),
                    "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                    "runs": [r["changes_per_s"] for r in runs],
                    **eng.describe(),
                }
                measured["ratio"] = measured["rows_per_s"] / measured["baseline_rows_per_s"]
                measured["ceiling_ratio"] = measured["rows_per_s"] / measured["ceiling_rows_per_s"]
                emit(
                    f"cdc {size:>6}-row transactions: {measured['rows_per_s']:,.0f} changes/s "
                    f"(median of {args.repeat})"
                )
                rows.append(
                    result(
                        "cdc",
                        "PostgreSQL",
                        f"{n:,} changes in {size:,}-row transactions to a file, in {eng.label}",
                        measured,
                        target_rps=100_000 if size == 100 else None,
                        unit="changes/s",
                    )
                )
            for flush in (0.2, 1.0):
                lats = []
                for k in range(args.repeat):
                    db = f"bench_lat_{int(flush * 1000)}_{k}"
                    cluster.execute(f"CREATE DATABASE {db}")
                    run_dir = tmp / db  # its own position file
                    run_dir.mkdir(parents=True, exist_ok=True)
                    lats.append(latency(eng, cluster.url(db), args.latency_seconds, flush, run_dir))
                    emit(
                        f"  run {k + 1}: latency commit -> sink table, flush {flush:g}: p50 "
                        f"{lats[-1]['p50_s']} s, p99 {lats[-1]['p99_s']} s "
                        f"({lats[-1]['received']:,} changes)"
                    )
                p50, p99 = median(x["p50_s"] for x in lats), median(x["p99_s"] for x in lats)
                emit(f"cdc latency, flush {flush:g}: p50 {p50:.3f} s, p99 {p99:.3f} s (median)")
                rows.append(
                    {
                        "benchmark": "cdc",
                        "database": "PostgreSQL",
                        "case": f"latency commit -> sink table (cdc -> out_sql), flush {flush:g}, "
                        f"p50 {p50:.2f} s, in {eng.label}",
                        "unit": "s p99",
                        "rows_per_s": p99,
                        "baseline": None,
                        "peak_rss_mb": None,
                        "runs": [x["p99_s"] for x in lats],
                        "target": "p99 <= 1.5 s" if flush == 0.2 else None,
                        "met": p99 <= 1.5 if flush == 0.2 else None,
                        **eng.describe(),
                    }
                )
    finally:
        cluster.destroy()
    emit(json.dumps(rows))
    return rows


def main(argv: list[str]) -> int:
    """Entry point of ``python -m bench cdc``; 1 when a target is missed."""
    rows = run(argv)
    return 0 if all(r.get("met") is not False for r in rows) else 1
