"""Every metric docs/metrics.md lists is set by a real instance and scraped over HTTP.

The poll input (PostgreSQL), the CDC input (a logical-decoding cluster) and the output
(SQLite: a dead letter; an unreachable server: a retry) run as the plugins run them,
each serving ``/metrics`` on its ``metrics.port``; the test reads the text exposition
like Prometheus and finds each documented metric with a value that shows it was set.
"""

from __future__ import annotations

import logging
import pathlib
import re
import socket
import sqlite3
import time
import urllib.request
from typing import Any

import pytest
from tests.fix_db import unique_table
from tests.fix_host import event_v2

from flbsql import metrics
from flbsql.plugin.input import InputPlugin
from flbsql.plugin.output import OutputPlugin
from flbsql.settings import parse

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
LOG = logging.getLogger("test.metrics")


def documented() -> dict[str, str]:
    """name -> kind of the 'What is counted' table."""
    text = DOC.read_text()
    table = text.split("## What is counted", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `(\w+)` \| (counter|gauge) \|", table, re.M))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[tuple[str, str], float]:
    """(metric name without prefix and _total, instance label) -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    sample = re.compile(
        r'^flbsql_(\w+?)(?:_total)?\{plugin="\w+",instance="([^"]*)"\} (\S+)$', re.M
    )
    return {(m.group(1), m.group(2)): float(m.group(3)) for m in sample.finditer(text)}


def test_the_documented_metrics_are_exactly_the_ones_the_code_has():
    doc = documented()
    assert {n for n, k in doc.items() if k == "counter"} == set(metrics.COUNTERS)
    assert {n for n, k in doc.items() if k == "gauge"} == set(metrics.GAUGES)


def _wait(
    port: int, instance: str, names: set[str], step: Any, timeout: float = 60
) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        step()
        got = {n: v for (n, i), v in scrape(port).items() if i == instance}
        if names <= set(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


@pytest.mark.postgres
def test_poll_input_metrics_are_scraped(pg_db, tmp_path):
    t = unique_table("metrics")
    pg_db.execute(f"CREATE TABLE {t} (id bigint PRIMARY KEY, v text)")
    pg_db.execute(f"INSERT INTO {t} SELECT g, 'v' FROM generate_series(1, 20000) g")
    port = free_port()
    props = {
        "url": pg_db.url,
        "table": t,
        "db": str(tmp_path / "pos.db"),
        "rows_per_collect": "1000",
        "fetch_size": "1000",
        "progress_interval": "0.1s",
        "poll_interval": "0.05s",
        "metrics.port": str(port),
    }
    plugin = InputPlugin(parse("input", props.get), LOG)
    try:

        def step() -> None:
            if plugin.collect():
                plugin.commit()

        want = {"rows_in", "rows_out", "db_connects", "lag_rows", "cursor_age_seconds"}
        got = _wait(port, t, want, step)
        assert want <= set(got), got
        assert got["rows_in"] > 0 and got["rows_out"] > 0 and got["db_connects"] >= 1
        assert 0 < got["lag_rows"] < 20000
        assert got["cursor_age_seconds"] >= 0
        # caught up: the age stays near zero while idle reads find nothing new...
        got = _wait(port, t, set(), step, timeout=0)
        deadline = time.monotonic() + 60
        while got["rows_out"] < 20000 and time.monotonic() < deadline:
            got = _wait(port, t, set(), step, timeout=0)
        assert got["rows_out"] == 20000
        for _ in range(10):
            got = _wait(port, t, set(), step, timeout=0)
        assert got["cursor_age_seconds"] < 1.5, got
        # ...and grows while the input reads nothing (Fluent Bit paused it)
        plugin.pause()
        time.sleep(2.5)
        assert scrape(port)[("cursor_age_seconds", t)] >= 2.0
    finally:
        plugin.close()
        pg_db.execute(f"DROP TABLE {t}")


@pytest.mark.postgres
@pytest.mark.cdc
def test_cdc_input_metrics_are_scraped(cdc_db, tmp_path):
    cdc_db.execute("CREATE TABLE m (id int PRIMARY KEY, v text)")
    port = free_port()
    props = cdc_db.props(
        tmp_path, tables="public.m", heartbeat_interval="0.5s", **{"metrics.port": str(port)}
    )
    plugin = InputPlugin(parse("input", props.get), LOG)
    inserted = 0
    try:

        def step() -> None:
            nonlocal inserted
            inserted += 1
            cdc_db.execute(f"INSERT INTO m VALUES ({inserted}, 'x')")
            if plugin.collect():
                plugin.commit()

        want = {
            "rows_in",
            "rows_out",
            "db_connects",
            "cursor_age_seconds",
            "slot_retained_bytes",
            "cdc_lag_bytes",
            "cdc_lag_seconds",
        }
        got = _wait(port, cdc_db.slot, want, step)
        assert want <= set(got), got
        deadline = time.monotonic() + 30  # the slot retains WAL once changes were read
        while not (got["rows_in"] > 0 and got["slot_retained_bytes"] > 0):
            assert time.monotonic() < deadline, got
            got = _wait(port, cdc_db.slot, want, step)
        assert got["rows_in"] > 0 and got["slot_retained_bytes"] > 0
        assert got["cdc_lag_bytes"] >= 0 and 0 <= got["cdc_lag_seconds"] < 30
        assert got["cursor_age_seconds"] < 30
    finally:
        plugin.close()


def test_output_metrics_are_scraped(tmp_path):
    port = free_port()
    db = tmp_path / "out.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE logs (n INTEGER NOT NULL CHECK (n > 0))")
    conn.close()
    props = {
        "url": str(db),
        "table": "logs",
        "columns": "n=n",
        "tag_column": "none",
        "time_column": "none",
        "json_column": "none",
        "dead_letter_table": "logs_dead",
        "metrics.port": str(port),
    }
    out = OutputPlugin(parse("output", props.get), LOG)
    down = OutputPlugin(
        parse(
            "output",
            {
                "url": f"postgresql://nobody@127.0.0.1:{free_port()}/x",
                "table": "logs",
                "connect_timeout": "1s",
                "pool.backoff_initial": "0.05s",
                "pool.backoff_max": "0.1s",
                "metrics.port": str(port),
            }.get,
        ),
        LOG,
    )
    try:
        chunk = event_v2({"n": 1}) + event_v2({"n": -1})
        out.flush(chunk, "t")
        down.flush(event_v2({"n": 1}), "t")
        got = scrape(port)
        assert got[("rows_in", "logs")] == 2 and got[("rows_out", "logs")] == 1
        assert got[("dead_lettered", "logs")] == 1
        assert got[("retries", "logs#2")] == 1 and got[("errors", "logs#2")] == 1
        assert got[("db_connect_failures", "logs#2")] >= 1
        # counters are shown from the start, set or not yet
        assert set(metrics.COUNTERS) <= {name for name, i in got if i == "logs"}
    finally:
        out.close()
        down.close()
