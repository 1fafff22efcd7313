"""``flbsql``: paths of the plugin libraries, a config checker, and the demo.

- ``flbsql paths``: where ``in_sql.so``/``out_sql.so`` are, with a plugins-file snippet.
- ``flbsql check -c fluent-bit.conf``: validates every ``sql`` section (unknown keys,
  bad values) and connects to each database, naming every problem found.
- ``flbsql demo``: a SQLite pipeline (table -> Fluent Bit -> table) through
  ``fluent-bit`` when it is on PATH, else through the project's test host.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import sqlite3
import subprocess
import sys
import time

from flbsql import __version__

__all__ = ["library_paths", "main"]

ROOT = pathlib.Path(__file__).resolve().parent.parent  # the flbsql package


def library_paths() -> dict[str, pathlib.Path]:
    """The built plugin libraries of this installation."""
    lib = ROOT / "lib"
    return {"input": lib / "in_sql.so", "output": lib / "out_sql.so"}


def _cmd_paths(_: argparse.Namespace) -> int:
    libs = library_paths()
    missing = [str(p) for p in libs.values() if not p.exists()]
    for kind, path in libs.items():
        print(f"{kind:6} {path}")
    print("\n# plugins file (classic), referenced by [SERVICE] plugins_file")
    print("[PLUGINS]")
    for path in libs.values():
        print(f"    Path {path}")
    print("\n# YAML")
    print("plugins:")
    for path in libs.values():
        print(f"  - {path}")
    print(f"\n# or: fluent-bit -e {libs['input']} -e {libs['output']} -c fluent-bit.conf")
    if missing:
        print(f"\nnot built yet: {', '.join(missing)} (run `make shim`)", file=sys.stderr)
        return 1
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from flbsql.tools.check import check_file

    notes: list[str] = []
    problems = check_file(args.config, connect=not args.no_connect, notes=notes)
    for line in problems:
        print(line)
    for line in notes:
        print(line)
    if not problems:
        print(f"{args.config}: ok")
    return 1 if problems else 0


# --- demo ---------------------------------------------------------------------------------

_DEMO_ROWS = 1000
_DEMO_CONF = """\
# flbsql demo: a SQLite table streamed through Fluent Bit into another SQLite table.
[SERVICE]
    flush        1
    log_level    info

[INPUT]
    Name         sql
    Tag          demo.access
    url          {dir}/source.db
    table        access_log
    # the event time comes from the row, not from the moment it was read
    time_column  ts
    # the position file: a restart resumes after the last row Fluent Bit took
    db           {dir}/in_sql.positions.db

[OUTPUT]
    Name         sql
    Match        demo.*
    url          {dir}/warehouse.db
    table        events
    # typed columns from record keys; everything else goes to the JSON column
    columns      level=level, status=status:int, path=path, latency_ms=latency_ms:float
    json_column  extra
    dead_letter_table  events_rejected
"""


def _make_source(path: pathlib.Path, rows: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE IF EXISTS access_log")
    conn.execute(
        "CREATE TABLE access_log (id INTEGER PRIMARY KEY, ts TEXT NOT NULL, level TEXT, "
        "method TEXT, path TEXT, status INTEGER, latency_ms REAL, client TEXT)"
    )
    base = time.time() - rows
    conn.executemany(
        "INSERT INTO access_log (ts, level, method, path, status, latency_ms, client) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + i)),
                "error" if i % 50 == 0 else "info",
                ("GET", "POST", "PUT")[i % 3],
                f"/api/items/{i % 97}",
                500 if i % 50 == 0 else 200,
                round(3 + (i * 7) % 120 / 3, 2),
                f"10.0.{i % 8}.{i % 250}",
            )
            for i in range(rows)
        ],
    )
    conn.commit()
    conn.close()


def _count(path: pathlib.Path) -> int:
    try:
        conn = sqlite3.connect(path)
        try:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from flbsql.tools import fbconfig

    work = pathlib.Path(args.dir).resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    _make_source(work / "source.db", args.rows)
    conf = work / "fluent-bit.conf"
    conf.write_text(_DEMO_CONF.format(dir=work))
    libs = library_paths()
    if not all(p.exists() for p in libs.values()):
        print("plugin libraries not built: run `make shim`", file=sys.stderr)
        return 1
    fluent_bit = shutil.which("fluent-bit")
    plugin_args = ["-e", str(libs["input"]), "-e", str(libs["output"])]
    if fluent_bit:
        print(f"running the pipeline in Fluent Bit: {fluent_bit}")
        cmd = [fluent_bit, *plugin_args, "-c", str(conf)]
    else:
        host = ROOT.parent.parent / "build" / "flbhost"
        if not host.exists():
            print(
                f"no fluent-bit on PATH and no test host at {host} (run `make host`)",
                file=sys.stderr,
            )
            return 1
        print(
            "no fluent-bit on PATH: running the pipeline in the project's test host "
            f"({host}), which loads the plugins as Fluent Bit's proxy loader does"
        )
        cmd = [str(host), *plugin_args, *fbconfig.to_host_args(fbconfig.load(conf))]
    print("config:", conf)
    log_path = work / "fluent-bit.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline and _count(work / "warehouse.db") < args.rows:
            if proc.poll() is not None:
                break
            time.sleep(0.25)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    got = _count(work / "warehouse.db")
    print(f"{got} of {args.rows} rows of access_log arrived in warehouse.db table events")
    if got:
        conn = sqlite3.connect(work / "warehouse.db")
        for row in conn.execute("SELECT * FROM events ORDER BY rowid LIMIT 3"):
            print("  ", row)
        conn.close()
    print(f"log: {log_path}")
    return 0 if got == args.rows else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``flbsql`` command."""
    parser = argparse.ArgumentParser(prog="flbsql", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"flbsql {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("paths", help="print the plugin library paths and a plugins-file snippet")
    p = sub.add_parser("check", help="validate the sql sections of a Fluent Bit config")
    p.add_argument("-c", "--config", required=True, help="fluent-bit.conf or .yaml")
    p.add_argument("--no-connect", action="store_true", help="do not connect to databases")
    p = sub.add_parser("demo", help="run the SQLite demo pipeline")
    p.add_argument("--dir", default=os.environ.get("FLBSQL_DEMO_DIR", ".demo"))
    p.add_argument("--rows", type=int, default=_DEMO_ROWS)
    p.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    handler = {"paths": _cmd_paths, "check": _cmd_check, "demo": _cmd_demo}[args.command]
    return handler(args)
