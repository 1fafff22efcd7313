"""The same .so files in a real Fluent Bit (outside CI: there is no binary in CI).

Runs when ``FLBSQL_FLUENT_BIT`` names a fluent-bit binary (or one is on PATH);
skipped otherwise. Checked by hand on v4.1.0 and v5.1.1 builds.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import time

import pytest

pytestmark = [pytest.mark.shim, pytest.mark.fluentbit]

FLUENT_BIT = os.environ.get("FLBSQL_FLUENT_BIT") or shutil.which("fluent-bit")


@pytest.fixture
def fluent_bit():
    if not FLUENT_BIT:
        pytest.skip("no Fluent Bit binary: set FLBSQL_FLUENT_BIT=/path/to/fluent-bit")
    return FLUENT_BIT


def _count(db, sql="SELECT count(*) FROM logs"):
    try:
        conn = sqlite3.connect(db)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return None


def test_dummy_to_table_and_table_to_table_with_workers_and_hot_reload(fluent_bit, host, tmp_path):
    src = tmp_path / "src.db"
    conn = sqlite3.connect(src)
    conn.execute("CREATE TABLE ev (id INTEGER PRIMARY KEY, msg TEXT)")
    conn.executemany("INSERT INTO ev (msg) VALUES (?)", [(f"m{i}",) for i in range(100)])
    conn.commit()
    conn.close()
    out = tmp_path / "out.db"
    (tmp_path / "plugins.conf").write_text(
        f"[PLUGINS]\n    Path {host.in_sql}\n    Path {host.out_sql}\n"
    )
    conf = tmp_path / "fluent-bit.conf"
    conf.write_text(f"""
[SERVICE]
    flush        1
    plugins_file {tmp_path}/plugins.conf
[INPUT]
    Name  dummy
    Tag   d
    rate  20
[INPUT]
    Name  sql
    Tag   s
    url   {src}
    table ev
    db    {tmp_path}/pos.db
[OUTPUT]
    Name  sql
    Match *
    url   {out}
    table logs
    workers 2
""")
    proc = subprocess.Popen(
        [fluent_bit, "-Y", "-c", str(conf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(3)
        proc.send_signal(signal.SIGHUP)  # hot reload: Register again, new instances
        time.sleep(4)
    finally:
        proc.terminate()
        log, _ = proc.communicate(timeout=20)
    # after the reload the same interpreter initialises new instances (3 and 4)
    assert "instance 4 of this process" in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    counts = dict(_count(out, "SELECT tag, count(*) FROM logs GROUP BY tag") or [])
    assert counts.get("d", 0) > 50, log[-3000:]
    # the position survived the reload: every source row exactly once
    assert _count(out, "SELECT count(*), count(DISTINCT data) FROM logs WHERE tag = 's'") == [
        (100, 100)
    ], log[-3000:]
