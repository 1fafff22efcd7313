"""Replication benchmark: in_sql CDC -> out_sql ``apply cdc`` into PostgreSQL, vs appending.

``python -m bench replicate [--changes 100000] [--repeat 1]`` (``make bench-replicate``)
runs in the Fluent Bit named by ``FLBSQL_FLUENT_BIT`` (else in the test host, labelled
so) on a throwaway ``wal_level=logical`` cluster (``tests/fix_pgcluster.py``):

A backlog of N row changes is committed in 100-row transactions (60 % inserts, 30 %
updates, 10 % deletes) with two slots waiting for it. Then the same backlog goes
through in_sql ``mode cdc`` twice, each with its own slot:

- **apply**: out_sql ``apply cdc`` (``workers 1``) into a replica of the table in
  another database; afterwards the replica must equal the source, row by row;
- **append**: out_sql's default append path (each change one row of tag, time,
  JSON) into a log table, the path the plugin had before apply mode.

Changes/s = N / time from process start until the output counted N records; the
ratio is apply / append. Every figure is the median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
from typing import Any

from bench.common import emit, median, require_build, result
from bench.engine import Engine, Section, engine

ROOT = pathlib.Path(__file__).resolve().parent.parent
DDL = "CREATE TABLE src (id bigint PRIMARY KEY, n int, s text, ts timestamptz)"
BATCH = 100


def _backlog(c: Any, n: int) -> int:
    """Commit about ``n`` changes in 100-row transactions; returns the exact count."""
    inserts = n * 6 // 10 // BATCH * BATCH
    done = 0
    for k in range(inserts // BATCH):
        c.execute(
            "INSERT INTO src SELECT i, i, md5(i::text), now() "
            "FROM generate_series(%s::bigint, %s::bigint) i",
            (k * BATCH, k * BATCH + BATCH - 1),
        )
        done += BATCH
    k = 0
    while done < n * 9 // 10:  # updates of 100-row ranges
        lo = (k * BATCH) % inserts
        done += c.execute(
            "UPDATE src SET n = n + 1, s = md5(s) WHERE id >= %s AND id < %s", (lo, lo + BATCH)
        ).rowcount
        k += 1
    k = 0
    while done < n:  # deletes from the end
        hi = inserts - k * BATCH
        done += c.execute("DELETE FROM src WHERE id >= %s AND id < %s", (hi - BATCH, hi)).rowcount
        k += 1
    return done


def _input(url: str, slot: str, db: pathlib.Path) -> Section:
    props = {
        "Tag": "cdc",
        "url": url,
        "mode": "cdc",
        "tables": "public.src",
        "slot": slot,
        "publication": "p_bench",
        "db": str(db),
        "snapshot": "never",
    }
    return Section("input", "sql", props)


def once(eng: Engine, cluster: Any, k: int, n: int, tmp: pathlib.Path) -> dict[str, Any]:
    """One backlog, applied and appended; changes/s of each."""
    import psycopg

    src, tgt = f"rep_src_{k}", f"rep_tgt_{k}"
    cluster.execute(f"CREATE DATABASE {src}")
    cluster.execute(f"CREATE DATABASE {tgt}")
    src_url, tgt_url = cluster.url(src), cluster.url(tgt)
    with psycopg.connect(src_url, autocommit=True) as c:
        c.execute(DDL)
        c.execute("CREATE PUBLICATION p_bench FOR TABLE src")
        for slot in (f"s_apply_{k}", f"s_append_{k}"):  # slots are per cluster
            c.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
        changes = _backlog(c, n)
        source = c.execute("SELECT id, n, s, ts FROM src ORDER BY id").fetchall()
    with psycopg.connect(tgt_url, autocommit=True) as c:
        c.execute(DDL)
    out = {"changes": changes}
    for mode in ("apply", "append"):
        props: dict[str, Any] = {"Match": "*", "Alias": mode, "url": tgt_url}
        if mode == "apply":
            props.update(apply="cdc", workers=1)
        else:
            props.update(table="changes_log")
        run = eng.run(
            [
                _input(src_url, f"s_{mode}_{k}", tmp / f"{k}_{mode}.db"),
                Section("output", "sql", props),
            ],
            records=changes,
            count=mode,
        )
        out[mode] = round(changes / run.wall_s)
        out[f"{mode}_s"] = round(run.wall_s, 2)
        out[f"{mode}_rss_mb"] = round(run.peak_rss_mb, 1)
    with psycopg.connect(tgt_url, autocommit=True) as c:
        replica = c.execute("SELECT id, n, s, ts FROM src ORDER BY id").fetchall()
    if replica != source:
        raise RuntimeError(f"replica has {len(replica)} rows, source {len(source)}: they differ")
    return out


def run(argv: list[str]) -> list[dict[str, Any]]:
    """Measure; result rows for the report (bench.common.result)."""
    ap = argparse.ArgumentParser(prog="python -m bench replicate")
    ap.add_argument("--changes", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args(argv)
    require_build()
    eng = engine()
    sys.path.insert(0, str(ROOT))
    from tests.fix_pgcluster import start_cluster

    cluster = start_cluster(wal_level="logical", max_replication_slots=20, max_wal_size="1GB")
    emit(f"replication benchmark in {eng.label}")
    try:
        with tempfile.TemporaryDirectory(prefix="flbsql-bench-rep-") as d:
            runs = []
            for k in range(args.repeat):
                r = once(eng, cluster, k, args.changes, pathlib.Path(d))
                runs.append(r)
                emit(
                    f"  run {k + 1}: {r['changes']:,} changes: apply {r['apply']:,}/s "
                    f"({r['apply_s']} s), append {r['append']:,}/s ({r['append_s']} s); "
                    "replica equals source"
                )
    finally:
        cluster.destroy()
    measured = {
        "rows_per_s": median(r["apply"] for r in runs),
        "baseline": "the same changes appended (out_sql default shape)",
        "baseline_rows_per_s": median(r["append"] for r in runs),
        "peak_rss_mb": max(r["apply_rss_mb"] for r in runs),
        "runs": [r["apply"] for r in runs],
        **eng.describe(),
    }
    measured["ratio"] = measured["rows_per_s"] / measured["baseline_rows_per_s"]
    emit(
        f"replicate: {measured['rows_per_s']:,.0f} changes/s applied, "
        f"{measured['ratio']:.0%} of the append path (median of {args.repeat})"
    )
    rows = [
        result(
            "replicate",
            "PostgreSQL",
            f"{args.changes:,} changes (100-row transactions) applied to a replica, in {eng.label}",
            measured,
            unit="changes/s",
        )
    ]
    emit(json.dumps(rows))
    return rows


def main(argv: list[str]) -> int:
    """Entry point of ``python -m bench replicate``."""
    run(argv)
    return 0
