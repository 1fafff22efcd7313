"""Metrics: counters under concurrency, the log line, Prometheus text, the shared server."""

from __future__ import annotations

import logging
import re
import socket
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest

from flbsql import metrics
from flbsql.errors import ConfigError
from flbsql.metrics import Metrics, prometheus_text
from flbsql.settings import parse


@pytest.fixture
def make():
    made: list[Metrics] = []

    def factory(*args: Any, **kwargs: Any) -> Metrics:
        m = Metrics(*args, **kwargs)
        made.append(m)
        return m

    yield factory
    for m in made:
        m.close()
    assert metrics.running_servers() == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int, path: str = "/metrics") -> tuple[int, str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return resp.status, resp.headers["Content-Type"], resp.read().decode()


def test_counters_are_exact_under_concurrent_increments(make):
    m = make("out_sql", "logs")

    def work():
        for _ in range(20000):
            m.inc("rows_out")
            m.inc("rows_in", 2)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = m.snapshot()
    assert snap["rows_out"] == 80000
    assert snap["rows_in"] == 160000


def test_unknown_names_and_negative_increments_are_refused(make):
    m = make("out_sql", "x")
    with pytest.raises(KeyError):
        m.inc("rows")
    with pytest.raises(KeyError):
        m.set("rows_out", 1)
    with pytest.raises(ValueError, match="only grow"):
        m.inc("errors", -1)


def test_log_line_shows_counters_with_deltas_and_only_set_gauges(make):
    m = make("in_sql", "public.events")
    m.inc("rows_in", 100)
    m.inc("errors")
    first = m.log_line()
    assert first.startswith("metrics in_sql public.events: ")
    assert "rows_in=100(+100)" in first
    assert "errors=1(+1)" in first
    assert "rows_out=0 " in first
    assert "lag_rows" not in first
    m.inc("rows_in", 5)
    m.set("lag_rows", 42)
    second = m.log_line()
    assert "rows_in=105(+5)" in second
    assert "errors=1 " in second
    assert second.endswith("lag_rows=42")


def test_cursor_age_grows_from_the_cursor_time(make):
    now = [1000.0]
    m = make("in_sql", "t", clock=lambda: now[0])
    m.set_cursor_time(990.0)
    assert m.snapshot()["cursor_age_seconds"] == 10.0
    now[0] = 1030.5
    assert m.snapshot()["cursor_age_seconds"] == 40.5
    m.set("cursor_age_seconds", 3)
    assert m.snapshot()["cursor_age_seconds"] == 3.0
    m.set("cursor_age_seconds", None)
    assert "cursor_age_seconds" not in m.snapshot()


def test_tick_logs_once_per_interval(make, caplog):
    now = [0.0]
    log = logging.getLogger("test.metrics.tick")
    m = make("out_sql", "t", interval=60, log=log, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="test.metrics.tick"):
        assert m.tick() is False
        now[0] = 59.9
        assert m.tick() is False
        now[0] = 60.0
        m.inc("rows_out", 7)
        assert m.tick() is True
        assert m.tick() is False
        now[0] = 125
        assert m.tick() is True
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "rows_out=7(+7)" in lines[0]
    assert "rows_out=7 " in lines[1]


def test_interval_zero_never_logs(make):
    now = [0.0]
    m = make("out_sql", "t", interval=0, log=logging.getLogger("x"), clock=lambda: now[0])
    now[0] = 1e9
    assert m.tick() is False


def test_prometheus_text_has_one_family_header_and_labels_per_instance(make):
    a = make("in_sql", "public.events")
    b = make("out_sql", 'we"ird\\name')
    a.inc("rows_in", 3)
    a.set("slot_retained_bytes", 1 << 20)
    b.inc("rows_out", 2)
    b.inc("dead_lettered")
    text = prometheus_text([a, b])
    assert text.count("# TYPE flbsql_rows_in_total counter") == 1
    assert 'flbsql_rows_in_total{plugin="in_sql",instance="public.events"} 3' in text
    assert 'flbsql_rows_out_total{plugin="out_sql",instance="we\\"ird\\\\name"} 2' in text
    assert "# TYPE flbsql_slot_retained_bytes gauge" in text
    assert 'flbsql_slot_retained_bytes{plugin="in_sql",instance="public.events"} 1048576' in text
    assert "flbsql_lag_rows" not in text  # never set: no family
    sample = re.compile(r'^flbsql_[a-z_]+\{plugin="[^"]*",instance="(?:[^"\\]|\\.)*"\} [0-9.]+$')
    for line in text.splitlines():
        assert line.startswith("# ") or sample.match(line), line


def test_instance_names_are_made_unique_and_freed_on_close(make):
    a = make("out_sql", "logs")
    b = make("out_sql", "logs")
    assert (a.instance, b.instance) == ("logs", "logs#2")
    a.close()
    assert [m.instance for m in metrics.live_instances() if m.instance.startswith("logs")] == [
        "logs#2"
    ]
    a.close()  # idempotent


def test_one_server_per_port_serves_every_instance_and_stops_with_the_last(make):
    port = free_port()
    a = make("in_sql", "src", port=port)
    b = make("out_sql", "dst", port=port)
    c = make("out_sql", "no-port")
    a.inc("rows_in", 11)
    c.inc("errors", 4)
    assert metrics.running_servers() == [("127.0.0.1", port)]
    status, ctype, body = scrape(port)
    assert status == 200
    assert ctype.startswith("text/plain; version=0.0.4")
    assert 'flbsql_rows_in_total{plugin="in_sql",instance="src"} 11' in body
    assert 'instance="dst"' in body
    assert 'flbsql_errors_total{plugin="out_sql",instance="no-port"} 4' in body
    with pytest.raises(urllib.error.HTTPError) as err:
        scrape(port, "/nope")
    assert err.value.code == 404
    err.value.close()
    a.close()
    assert 'instance="src"' not in scrape(port)[2]
    b.close()
    assert metrics.running_servers() == []
    with pytest.raises(urllib.error.URLError):
        scrape(port)


def test_a_port_in_use_fails_with_the_option_name(make):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ConfigError, match=r"metrics\.port.*cannot serve metrics"):
            make("out_sql", "busy", port=port)
    assert not [m for m in metrics.live_instances() if m.instance == "busy"]


def test_from_config_reads_the_metrics_options(make):
    port = free_port()
    props = {
        "url": "/tmp/x.db",
        "table": "t",
        "metrics.interval": "5s",
        "metrics.port": str(port),
        "metrics.address": "127.0.0.1",
    }
    cfg = parse("output", props.get)
    m = Metrics.from_config(cfg, "out_sql", "t")
    try:
        assert m.interval == 5.0
        assert metrics.running_servers() == [("127.0.0.1", port)]
    finally:
        m.close()
