"""Hot reload (SIGHUP with ``-Y``): new instances, and the source rows still exactly once.

Moved from tests/shim/test_real_fluent_bit.py. ``workers 2`` on the output so the
reload also tears down and recreates output worker threads.
"""

from __future__ import annotations

import sqlite3
import time

import pytest

from tests.fluentbit.common import needs_fluent_bit

pytestmark = [needs_fluent_bit, pytest.mark.fluentbit, pytest.mark.sqlite]


def _rows(db, sql):
    try:
        conn = sqlite3.connect(db)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return None


def test_hot_reload_makes_new_instances_and_keeps_the_position(fluent_bit, tmp_path):
    src = tmp_path / "src.db"
    conn = sqlite3.connect(src)
    conn.execute("CREATE TABLE ev (id INTEGER PRIMARY KEY, msg TEXT)")
    conn.executemany("INSERT INTO ev (msg) VALUES (?)", [(f"m{i}",) for i in range(100)])
    conn.commit()
    conn.close()
    out = tmp_path / "out.db"
    conf = fluent_bit.config(
        inputs=[
            {"name": "dummy", "tag": "d", "rate": 20},
            {"name": "sql", "tag": "s", "url": src, "table": "ev", "db": tmp_path / "pos.db"},
        ],
        outputs=[{"name": "sql", "match": "*", "url": out, "table": "logs", "workers": 2}],
    )
    run = fluent_bit.start(conf, "-Y")
    try:
        time.sleep(3)
        run.reload()  # hot reload: Register again, new instances
        time.sleep(4)
    finally:
        assert run.stop() == 0, run.log()[-3000:]
    log = run.log()
    # after the reload the same interpreter initialises new instances (3 and 4)
    assert "instance 4 of this process" in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    counts = dict(_rows(out, "SELECT tag, count(*) FROM logs GROUP BY tag") or [])
    assert counts.get("d", 0) > 50, log[-3000:]
    # the position survived the reload: every source row exactly once
    assert _rows(out, "SELECT count(*), count(DISTINCT data) FROM logs WHERE tag = 's'") == [
        (100, 100)
    ], log[-3000:]
    print(f"\n{fluent_bit.version()}: after reload {counts}")
