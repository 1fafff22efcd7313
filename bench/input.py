"""Input benchmark: a PostgreSQL log table through in_sql to a sink that only counts.

``python -m bench input [--rows 1000000] [--rows 10000000 ...]`` (``make bench-input``)
fills ``logs_<n>`` in the bench database once, then for each size, ``--repeat`` times:

- ``COPY (SELECT * FROM logs_<n>) TO STDOUT`` read by psycopg: the baseline, in
  the same run, on the same machine;
- in_sql with its defaults in the Fluent Bit named by ``FLBSQL_FLUENT_BIT`` (else
  ``build/flbhost``, Fluent Bit's fixed 1 s input cadence) into
  :func:`bench.engine.sink` (``counter``; the host's ``null``), until every row was
  counted; rows/s is rows / wall time from process start to the last record (startup
  included), and Fluent Bit's ceiling for the same record (``dummy`` into the sink);
- the process's peak RSS (VmHWM), to show memory is flat in table size;
- at the first size, each run paired with one with ``time_column ts`` (same state).

Prints one line per size and a JSON summary on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any

from bench.engine import IN_SQL, Engine, Section, ceiling, engine, sink

ADMIN = os.environ.get(
    "FLBSQL_BENCH_POSTGRES_URL",
    os.environ.get("FLBSQL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
)
DBNAME = "flbsql_bench_input"


def _url() -> str:
    return ADMIN.rsplit("/", 1)[0] + "/" + DBNAME


def prepare(rows: int) -> str:
    """Create (once) a log table of ``rows`` rows; return its name."""
    import psycopg

    with psycopg.connect(ADMIN, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DBNAME,)).fetchone():
            admin.execute(f'CREATE DATABASE "{DBNAME}"')
    table = f"logs_{rows}"
    with psycopg.connect(_url(), autocommit=True) as conn:
        have = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
        if have and have[0] and conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == rows:
            return table
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"""CREATE TABLE {table} (
            id bigserial PRIMARY KEY, ts timestamptz NOT NULL, level text NOT NULL,
            host text NOT NULL, message text NOT NULL)""")
        t0 = time.monotonic()
        conn.execute(
            f"""INSERT INTO {table} (ts, level, host, message)
            SELECT timestamptz '2024-01-01' + g * interval '1 millisecond',
                   (ARRAY['debug','info','warn','error'])[1 + g %% 4], 'web-' || (g %% 16),
                   'GET /api/v1/items/' || g || ' 200 ' || (g %% 500) || 'ms user=u' || (g %% 997)
            FROM generate_series(1, %s) g""",
            (rows,),
        )
        conn.execute(f"VACUUM ANALYZE {table}")
        print(f"# filled {table} in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    return table


def settle_server(wait: float = 120.0) -> None:
    """Before a case: what the output benchmarks (or a fill) left the server to do is done.

    A checkpoint writes their WAL now, and autovacuum's workers on their tables (a
    million inserted rows start one) are waited for, up to ``wait`` seconds: on two
    cores either would take a core from the runs measured.
    """
    import psycopg

    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute("CHECKPOINT")
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            busy = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
            ).fetchone()
            if not busy or not busy[0]:
                return
            time.sleep(1.0)


def copy_rate(table: str) -> tuple[float, int]:
    """rows/s of COPY TO STDOUT read by the client, and the bytes it moved."""
    import psycopg

    n = size = 0
    with psycopg.connect(_url()) as conn, conn.cursor() as cur:
        t0 = time.monotonic()
        with cur.copy(f"COPY (SELECT * FROM {table}) TO STDOUT") as copy:
            for block in copy:
                size += len(block)
                n += bytes(block).count(b"\n")
        dt = time.monotonic() - t0
    return n / dt, size


def plugin_rate(eng: Engine, table: str, rows: int, opts: dict[str, str]) -> dict[str, Any]:
    """in_sql -> :func:`~bench.engine.sink` until ``rows`` records: rows/s from process start."""
    with tempfile.TemporaryDirectory() as tmp:
        props = {"Tag": "bench", "url": _url(), "table": table, "db": f"{tmp}/pos.db", **opts}
        run = eng.run(
            [Section("input", "sql", props), sink(eng)],
            records=rows,
            count="sink",
            plugins=(IN_SQL,),
        )
    return {"rows_per_s": rows / run.wall_s, "wall_s": run.wall_s, "peak_rss_mb": run.peak_rss_mb}


def sample_row(table: str) -> dict[str, Any]:
    """One row as the input emits it, for the ceiling run (same record size)."""
    import psycopg

    with psycopg.connect(_url()) as conn:
        row = conn.execute(f"SELECT row_to_json(t) FROM {table} t LIMIT 1").fetchone()
    return dict(row[0]) if row else {}


def _summary(
    eng: Engine,
    rows: int,
    timed_rows: bool,
    runs: list[tuple[dict[str, Any], float, float]],
    repeat: int,
) -> dict[str, Any]:
    """One result row from a case's runs (plugin result, COPY rate, ceiling rate)."""
    from bench.common import median, result

    measured = {
        "rows_per_s": median(r["rows_per_s"] for r, _, _ in runs),
        "baseline": "COPY (SELECT *) TO STDOUT",
        "baseline_rows_per_s": median(c for _, c, _ in runs),
        "ceiling_rows_per_s": median(t for _, _, t in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r, _, _ in runs),
        "runs": [r["rows_per_s"] for r, _, _ in runs],
        "baseline_runs": [c for _, c, _ in runs],
        **eng.describe(),
    }
    measured["ratio"] = measured["rows_per_s"] / measured["baseline_rows_per_s"]
    measured["ceiling_ratio"] = measured["rows_per_s"] / measured["ceiling_rows_per_s"]
    label = "time_column ts" if timed_rows else "ingest time"
    print(
        f"in_sql {rows:>10,} rows ({label}): {measured['rows_per_s']:>9,.0f} rows/s "
        f"(median of {repeat}), COPY TO STDOUT "
        f"{measured['baseline_rows_per_s']:>10,.0f} rows/s (ratio {measured['ratio']:.2f}), "
        f"ceiling {measured['ceiling_rows_per_s']:,.0f} rows/s (ratio "
        f"{measured['ceiling_ratio']:.2f}), peak RSS {measured['peak_rss_mb']:.0f} MB",
        flush=True,
    )
    return result(
        "input",
        "PostgreSQL",
        f"{rows:,}-row log table ({label}) to null, in {eng.label}",
        measured,
        target_rps=None if timed_rows else 200_000,
    )


def run(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Measure every size; one result row each (bench.common.result)."""
    ap = argparse.ArgumentParser(prog="python -m bench input")
    ap.add_argument(
        "--rows",
        type=int,
        action="append",
        help="table sizes (default 1000000 and 10000000: RSS must stay flat)",
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "-p",
        "--prop",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an in_sql property (default: none, the plugin's defaults are measured)",
    )
    args = ap.parse_args(argv)
    eng = engine()
    sizes = args.rows or [1_000_000, 10_000_000]
    base = dict(kv.split("=", 1) for kv in args.prop)
    # the criterion's case (event time = ingest time) at every size; at the first size,
    # each run is followed by one with the event time from the table's ts column (more
    # work per row): paired runs see the same server and cache state, where a 1M-row run
    # ends after its third or its fourth 1 s callback depending on that state
    groups = [(rows, (False, True) if rows == sizes[0] else (False,)) for rows in sizes]
    out: list[dict[str, Any]] = []
    timed: list[dict[str, Any]] = []
    print(f"input benchmark in {eng.label}, in_sql properties: {base or 'defaults'}", flush=True)
    for rows, variants in groups:
        table = prepare(rows)
        settle_server()
        record = sample_row(table)
        runs: dict[bool, list[tuple[dict[str, Any], float, float]]] = {v: [] for v in variants}
        for n in range(args.repeat):
            for timed_rows in variants:
                opts = {**base, "time_column": "ts"} if timed_rows else base
                copy_rps, _ = copy_rate(table)
                res = plugin_rate(eng, table, rows, opts)
                top = rows / ceiling(eng, record, rows).wall_s
                runs[timed_rows].append((res, copy_rps, top))
                print(
                    f"  run {n + 1}{' (time_column ts)' if timed_rows else ''}: in_sql "
                    f"{res['rows_per_s']:,.0f} rows/s ({res['wall_s']:.1f}s, peak RSS "
                    f"{res['peak_rss_mb']:.0f} MB), COPY TO STDOUT {copy_rps:,.0f} rows/s, "
                    f"ceiling (same record -> counter) {top:,.0f} rows/s",
                    flush=True,
                )
        for timed_rows in variants:
            (timed if timed_rows else out).append(
                _summary(eng, rows, timed_rows, runs[timed_rows], args.repeat)
            )
    out += timed  # every size with ingest time first, as the report lists them
    timed_row, plain_row = out[-1], out[0]
    timed_row["vs_ingest_time"] = timed_row["rows_per_s"] / plain_row["rows_per_s"]
    timed_row["target"] = ">= 90% of the same input with ingest time (same run)"
    timed_row["met"] = timed_row["vs_ingest_time"] >= 0.9
    print(
        f"time_column ts: {timed_row['vs_ingest_time']:.0%} of the ingest-time rate "
        f"({timed_row['rows_per_s']:,.0f} vs {plain_row['rows_per_s']:,.0f} rows/s)",
        flush=True,
    )
    if len(sizes) > 1:
        low, high = out[0]["peak_rss_mb"], out[len(sizes) - 1]["peak_rss_mb"]
        big = out[len(sizes) - 1]
        big["target"] += f"; peak RSS <= 300 MB and within +10% of the {sizes[0]:,}-row run"
        big["met"] = bool(big["met"]) and high <= 300 and high <= 1.1 * low
        print(
            f"peak RSS {low:.0f} MB at {sizes[0]:,} rows, {high:.0f} MB at {sizes[-1]:,} rows "
            f"({high / low - 1:+.0%})",
            flush=True,
        )
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when a target is missed."""
    rows = run(argv)
    print(json.dumps(rows))
    return 0 if all(r["met"] is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
