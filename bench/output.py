"""Output benchmark: log records into PostgreSQL, MariaDB, SQLite, in real Fluent Bit.

``python -m bench output [--rows 1000000] [--repeat 3] [--workers N]`` (``make bench-output``)
runs in the Fluent Bit named by ``FLBSQL_FLUENT_BIT`` (else in the test host, labelled so),
with out_sql's default settings:

- the records: ``--rows`` realistic log records (about 250 bytes, 9 keys, one nested) in
  8,000-record chunks, replayed as fast as the host takes them (:func:`bench.engine.replay`:
  Fluent Bit's ``forward`` input, one PackedForward message per chunk; the test host's
  ``feed`` input). Fluent Bit's ``dummy`` input is not fast enough to feed them (its own
  ceiling, under 200k records/s on this machine, was below PostgreSQL's ``\\copy``);
- PostgreSQL: out_sql into a fresh table, ``--repeat`` times, and in the same run the
  baseline ``psql \\copy`` of the same rows, Fluent Bit's own ``pgsql`` output on the same
  records, and Fluent Bit's ceiling (the same input into ``counter``);
- MariaDB (baseline ``LOAD DATA LOCAL INFILE``) and SQLite (``executemany`` in one
  transaction), each with the ceiling too; target: >= 60% of the baseline;
- every run checks that the table holds exactly ``--rows`` rows; rows/s is from process
  start to the last record counted by the host (SQLite: to its file's last write).

Prints one line per measurement and a JSON summary on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import struct
import subprocess
import tempfile
from collections.abc import Callable
from typing import Any

import msgpack
from bench.common import emit, median, require_build, result, timed, write_frames
from bench.engine import OUT_SQL, Engine, FluentBit, Run, Section, ceiling, engine, replay

PG_ADMIN = os.environ.get(
    "FLBSQL_BENCH_POSTGRES_URL",
    os.environ.get("FLBSQL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
)
MYSQL_URL = os.environ.get("FLBSQL_BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/")
DBNAME = "flbsql_bench_output"
CHUNK = 8000
LEVELS = ("info", "info", "info", "warn", "error", "debug")


def record(i: int, rnd: random.Random) -> dict[str, Any]:
    """One log record: 9 keys, one nested map, about 250 bytes packed."""
    return {
        "host": f"web-{i % 50:02d}.prod.example.com",
        "service": "checkout-api",
        "level": LEVELS[i % len(LEVELS)],
        "message": f"GET /api/v1/orders/{i} completed in {i % 997} ms for user {i * 7919 % 10**5}",
        "status": 200 if i % 17 else 500,
        "latency_ms": round(rnd.random() * 300, 3),
        "trace_id": f"{rnd.getrandbits(128):032x}",
        "user": {"id": i * 7919 % 100000, "region": "eu-west-1"},
        "pid": 4242,
    }


def feed_file(rows: int, directory: pathlib.Path) -> pathlib.Path:
    """The frames file (built once per size and kept in the temp dir)."""
    path = directory / f"flbsql_bench_output_{rows}.bin"
    if path.exists():
        return path
    rnd = random.Random(42)
    base = 1_700_000_000

    def chunks() -> Any:
        for start in range(0, rows, CHUNK):
            parts = []
            for i in range(start, min(rows, start + CHUNK)):
                ts = msgpack.ExtType(0, struct.pack(">II", base + i // 1000, i % 1000 * 10**6))
                parts.append(msgpack.packb([[ts, {}], record(i, rnd)]))
            yield b"".join(parts)

    tmp = path.with_suffix(".tmp")
    write_frames(tmp, chunks())
    tmp.rename(path)
    return path


def _pg_url() -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + DBNAME


def _pg(sql: str, url: str | None = None) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url or _pg_url(), autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


def _ceiling(eng: Engine, feed: pathlib.Path, rows: int) -> float:
    """rows/s of the same records, replayed the same way, into the host's sink."""
    return rows / ceiling(eng, record(1, random.Random(42)), rows, replay(eng, feed)).wall_s


def _plugin_run(
    eng: Engine,
    url: str,
    table: str,
    feed: pathlib.Path,
    rows: int,
    workers: int | None,
    finished: Callable[[], float] | None = None,
) -> Run:
    """The records into ``table`` through out_sql with its defaults (``workers`` if given).

    ``finished``: when the database last changed, where it can tell (see ``Engine.run``).
    """
    props: dict[str, Any] = {"Match": "*", "Alias": "sink", "url": url, "table": table}
    if workers:
        props["workers"] = workers
    return eng.run(
        [replay(eng, feed), Section("output", "sql", props)],
        records=rows,
        count="sink",
        plugins=(OUT_SQL,),
        finished=finished,
    )


def _pgsql_run(eng: FluentBit, table: str, feed: pathlib.Path, rows: int) -> Run:
    """The same records through Fluent Bit's own ``pgsql`` output."""
    from flbsql.conn.url import parse_url

    p = parse_url(_pg_url())
    props = {
        "Match": "*",
        "Alias": "sink",
        "Host": p.host or "127.0.0.1",
        "Port": p.port or 5432,
        "User": p.user or "postgres",
        "Database": DBNAME,
        "Table": table,
    }
    return eng.run(
        [replay(eng, feed), Section("output", "pgsql", props)],
        records=rows,
        count="sink",
        plugins=(),
    )


def bench_postgres(
    eng: Engine, feed: pathlib.Path, rows: int, repeat: int, workers: int | None, tmp: pathlib.Path
) -> dict[str, Any]:
    """Plugin, \\copy baseline, Fluent Bit's pgsql output and the null ceiling, alternated."""
    if not _pg(f"SELECT 1 FROM pg_database WHERE datname = '{DBNAME}'", PG_ADMIN):
        _pg(f'CREATE DATABASE "{DBNAME}"', PG_ADMIN)
    url = _pg_url()
    plugin, baseline, native, top, rss = [], [], [], [], []
    dump = tmp / "flbsql_bench_output_copy.txt"
    for n in range(repeat):
        _pg("DROP TABLE IF EXISTS out_bench")
        run = _plugin_run(eng, url, "out_bench", feed, rows, workers)
        got = _pg("SELECT count(*) FROM out_bench")[0][0]
        if got != rows:
            raise RuntimeError(f"PostgreSQL holds {got} rows, expected {rows}")
        plugin.append(rows / run.wall_s)
        rss.append(run.peak_rss_mb)
        if n == 0:
            subprocess.run(["psql", url, "-qc", f"\\copy out_bench TO '{dump}'"], check=True)
        _pg("DROP TABLE IF EXISTS copy_bench")
        _pg("CREATE TABLE copy_bench (LIKE out_bench)")
        secs, _ = timed(
            lambda: subprocess.run(
                ["psql", url, "-qc", f"\\copy copy_bench FROM '{dump}'"], check=True
            )
        )
        baseline.append(rows / secs)
        line = f"  run {n + 1}: out_sql {plugin[-1]:,.0f} rows/s, \\copy {baseline[-1]:,.0f}"
        if isinstance(eng, FluentBit):
            _pg("DROP TABLE IF EXISTS pgsql_bench")
            nat = _pgsql_run(eng, "pgsql_bench", feed, rows)
            got = _pg("SELECT count(*) FROM pgsql_bench")[0][0]
            if got != rows:
                raise RuntimeError(f"pgsql output wrote {got} rows, expected {rows}")
            native.append(rows / nat.wall_s)
            line += f", pgsql output {native[-1]:,.0f}"
        top.append(_ceiling(eng, feed, rows))
        emit(f"{line}, ceiling (-> counter) {top[-1]:,.0f} rows/s")
    dump.unlink(missing_ok=True)
    out = _summary("postgresql", "psql \\copy", plugin, baseline, rss)
    out["ceiling_rows_per_s"] = median(top)
    out["ceiling_ratio"] = out["rows_per_s"] / out["ceiling_rows_per_s"]
    if native:
        out["native_pgsql_rows_per_s"] = median(native)
        out["native_ratio"] = out["rows_per_s"] / out["native_pgsql_rows_per_s"]
        emit(
            f"postgresql: {out['native_ratio']:.2f}x Fluent Bit's pgsql output "
            f"({out['native_pgsql_rows_per_s']:,.0f} rows/s)"
        )
    return {**out, **eng.describe()}


def _mysql_conn() -> Any:
    import pymysql

    from flbsql.conn.url import parse_url

    p = parse_url(MYSQL_URL)
    return pymysql.connect(
        host=p.host,
        port=p.port or 3306,
        user=p.user or "root",
        password=p.password or "",
        autocommit=True,
        charset="utf8mb4",
        local_infile=True,
    )


def bench_mysql(
    eng: Engine, feed: pathlib.Path, rows: int, repeat: int, workers: int | None, tmp: pathlib.Path
) -> dict[str, Any]:
    """Plugin runs into MariaDB/MySQL; baseline ``LOAD DATA LOCAL INFILE`` of the same rows."""
    conn = _mysql_conn()
    cur = conn.cursor()
    cur.execute(f"CREATE DATABASE IF NOT EXISTS `{DBNAME}`")
    cur.execute(f"USE `{DBNAME}`")
    plugin, baseline, rss, top = [], [], [], []
    dump = tmp / "flbsql_bench_output_mysql.tsv"
    for n in range(repeat):
        cur.execute("DROP TABLE IF EXISTS out_bench")
        run = _plugin_run(
            eng, MYSQL_URL.rstrip("/") + "/" + DBNAME, "out_bench", feed, rows, workers
        )
        cur.execute("SELECT count(*) FROM out_bench")
        got = cur.fetchone()[0]
        if got != rows:
            raise RuntimeError(f"MariaDB holds {got} rows, expected {rows}")
        plugin.append(rows / run.wall_s)
        rss.append(run.peak_rss_mb)
        if n == 0:  # the rows as written, as the server's own bulk-load input
            cur.execute("SELECT tag, time, data FROM out_bench")
            with open(dump, "w") as f:
                for tag, when, data in cur.fetchall():
                    f.write(f"{tag}\t{when}\t{data}\n")
        cur.execute("DROP TABLE IF EXISTS load_bench")
        cur.execute("CREATE TABLE load_bench LIKE out_bench")
        secs, _ = timed(
            lambda: cur.execute(
                f"LOAD DATA LOCAL INFILE '{dump}' INTO TABLE load_bench FIELDS ESCAPED BY '' "
                "(tag, time, data)"
            )
        )
        baseline.append(rows / secs)
        top.append(_ceiling(eng, feed, rows))
        emit(
            f"  run {n + 1}: plugin {plugin[-1]:,.0f} rows/s, LOAD DATA {baseline[-1]:,.0f} "
            f"rows/s, ceiling (-> counter) {top[-1]:,.0f} rows/s"
        )
    cur.execute("DROP TABLE IF EXISTS load_bench")
    conn.close()
    dump.unlink(missing_ok=True)
    out = _summary("mariadb", "LOAD DATA LOCAL INFILE", plugin, baseline, rss, top)
    return {**out, **eng.describe()}


def _written(db: pathlib.Path) -> float:
    """When a SQLite database last committed: its file's or its WAL's last write."""
    files = (db, pathlib.Path(f"{db}-wal"))
    return max(f.stat().st_mtime for f in files if f.exists())


def bench_sqlite(
    eng: Engine, feed: pathlib.Path, rows: int, repeat: int, tmp: pathlib.Path
) -> dict[str, Any]:
    """Plugin runs into a SQLite file (one writer); baseline executemany of the same rows."""
    import sqlite3

    db = tmp / "flbsql_bench_output.db"
    plugin, baseline, rss, top = [], [], [], []
    for n in range(repeat):
        for suffix in ("", "-wal", "-shm"):
            pathlib.Path(str(db) + suffix).unlink(missing_ok=True)
        run = _plugin_run(eng, str(db), "out_bench", feed, rows, None, lambda: _written(db))
        conn = sqlite3.connect(db)
        got = conn.execute("SELECT count(*) FROM out_bench").fetchone()[0]
        if got != rows:
            raise RuntimeError(f"SQLite holds {got} rows, expected {rows}")
        plugin.append(rows / run.wall_s)
        rss.append(run.peak_rss_mb)
        data = conn.execute("SELECT tag, time, data FROM out_bench").fetchall()
        conn.execute("CREATE TABLE load_bench AS SELECT * FROM out_bench WHERE 0")
        conn.commit()

        def load(conn: Any = conn, data: Any = data) -> None:
            with conn:  # one transaction, as the plugin's flushes are
                conn.executemany("INSERT INTO load_bench VALUES (?, ?, ?)", data)

        secs, _ = timed(load)
        baseline.append(rows / secs)
        conn.close()
        top.append(_ceiling(eng, feed, rows))
        emit(
            f"  run {n + 1}: plugin {plugin[-1]:,.0f} rows/s, executemany "
            f"{baseline[-1]:,.0f} rows/s, ceiling (-> counter) {top[-1]:,.0f} rows/s"
        )
    for suffix in ("", "-wal", "-shm"):
        pathlib.Path(str(db) + suffix).unlink(missing_ok=True)
    out = _summary("sqlite", "executemany, one transaction", plugin, baseline, rss, top)
    return {**out, **eng.describe()}


def _summary(
    name: str,
    base: str,
    plugin: list[float],
    baseline: list[float],
    rss: list[float],
    top: list[float] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rows_per_s": median(plugin),
        "baseline": base,
        "baseline_rows_per_s": median(baseline),
        "peak_rss_mb": max(rss),
        "runs": plugin,
        "baseline_runs": baseline,
    }
    out["ratio"] = out["rows_per_s"] / out["baseline_rows_per_s"]
    line = (
        f"{name}: {out['rows_per_s']:,.0f} rows/s (median of {len(plugin)}), {base} "
        f"{out['baseline_rows_per_s']:,.0f} rows/s, ratio {out['ratio']:.0%}, "
        f"peak RSS {out['peak_rss_mb']:.0f} MB"
    )
    if top:
        out["ceiling_rows_per_s"] = median(top)
        out["ceiling_ratio"] = out["rows_per_s"] / out["ceiling_rows_per_s"]
        line += f", ceiling {out['ceiling_rows_per_s']:,.0f} rows/s ({out['ceiling_ratio']:.0%})"
    emit(line)
    return out


def run(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Measure; one result row per database (see bench.common.result)."""
    ap = argparse.ArgumentParser(prog="python -m bench output")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, help="out_sql workers (default: the plugin's)")
    ap.add_argument("--only", choices=("postgresql", "mysql", "sqlite"), action="append")
    args = ap.parse_args(argv)
    require_build()
    eng = engine()
    tmp = pathlib.Path(tempfile.gettempdir())
    feed = feed_file(args.rows, tmp)
    size = (feed.stat().st_size - 4 * ((args.rows + CHUNK - 1) // CHUNK)) / args.rows
    emit(
        f"output benchmark in {eng.label}: {args.rows:,} records of {size:.0f} bytes, "
        f"workers {args.workers or 'default'}"
    )
    only = set(args.only or ("postgresql", "mysql", "sqlite"))
    case = f"{args.rows:,} log records ({size:.0f} B, 9 keys) in {eng.label}"
    rows: list[dict[str, Any]] = []
    if "postgresql" in only:
        r = bench_postgres(eng, feed, args.rows, args.repeat, args.workers, tmp)
        row = result("output", "PostgreSQL", case, r, target_ratio=0.65)
        if "native_ratio" in r:  # and >= 2.5x Fluent Bit's own pgsql output, same run
            row["target"] += " and >= 2.5x Fluent Bit's pgsql output"
            row["met"] = bool(row["met"]) and r["native_ratio"] >= 2.5
        rows.append(row)
    if "mysql" in only:
        r = bench_mysql(eng, feed, args.rows, args.repeat, args.workers, tmp)
        rows.append(result("output", "MariaDB", case, r, target_ratio=0.6))
    if "sqlite" in only:
        r = bench_sqlite(eng, feed, args.rows, args.repeat, tmp)
        rows.append(result("output", "SQLite", case, r, target_ratio=0.6))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the output benchmark; the last line is the JSON summary; 1 if a target is missed."""
    rows = run(argv)
    emit(json.dumps(rows))
    return 0 if all(r["met"] is not False for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
