"""Per-instance counters and gauges: a periodic log line and Prometheus text.

Each plugin instance owns one :class:`Metrics`. Counters only grow:
``rows_in`` (input: rows handed to Fluent Bit; output: rows received in flushes),
``rows_out`` (input: rows whose position was committed; output: rows committed to the
table), ``errors``, ``retries`` (flushes answered with ``FLB_RETRY``) and
``dead_lettered``. Gauges hold the last value set: ``lag_rows`` (rows behind the
source), ``cursor_age_seconds`` (how far behind the input is in time, from
:meth:`Metrics.set_cursor_time`, so it keeps growing while the input is stuck),
``slot_retained_bytes`` (WAL a CDC slot holds back), ``cdc_lag_bytes`` and
``cdc_lag_seconds`` (how far the CDC input is behind the server). A gauge never set
is not shown.

Output:

- :meth:`Metrics.log_line` (and :meth:`Metrics.tick`, which logs it every
  ``metrics.interval`` seconds when called from the plugin's own callbacks, so the line
  goes through Fluent Bit's logger; docs/fluent-bit-abi.md §7);
- :func:`prometheus_text` for every live instance of the process (input and output
  share one interpreter, docs/fluent-bit-abi.md T10), served at ``/metrics`` by one
  small HTTP server per ``metrics.address:metrics.port``, started by the first
  instance that asks for it and stopped when the last one closes (Python is never
  finalised inside Fluent Bit, so nothing may outlive :meth:`Metrics.close`; T6, T7).

Everything is guarded by locks: flushes run concurrently with ``workers`` (T4).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from flbsql.errors import ConfigError

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterable

    from flbsql.settings import Config

__all__ = [
    "COUNTERS",
    "GAUGES",
    "Metrics",
    "live_instances",
    "prometheus_text",
    "running_servers",
]

COUNTERS: dict[str, str] = {
    "rows_in": "Rows received: read from the database (input) or from Fluent Bit (output).",
    "rows_out": "Rows delivered: committed position (input) or committed to the table (output).",
    "errors": "Errors logged by the instance (failed reads, flushes, commits).",
    "retries": "Flushes answered with FLB_RETRY (the chunk stays with Fluent Bit).",
    "dead_lettered": "Records written to the dead-letter table or log instead of the table.",
    "db_connects": "Database connections opened by the instance's pool.",
    "db_connect_failures": "Failed attempts to open a database connection.",
    "db_recycles": "Connections replaced: max_lifetime, failed ping, new credentials.",
    "db_timeouts": "Operations cut by the watchdog after statement_timeout plus grace.",
}
# pool.stats() keys summed into each db_* counter
_POOL_COUNTERS = {
    "db_connects": ("connects",),
    "db_connect_failures": ("connect_failures",),
    "db_recycles": ("recycles", "pings_failed", "rotations", "discarded"),
    "db_timeouts": ("timeouts",),
}
GAUGES: dict[str, str] = {
    "lag_rows": "Rows the input is behind the source table(s).",
    "cursor_age_seconds": "Seconds the input is behind: every row or change committed "
    "before now minus this was read.",
    "slot_retained_bytes": "WAL bytes the CDC replication slot retains on the server.",
    "cdc_lag_bytes": "WAL bytes between the server's current position and what the "
    "CDC input confirmed.",
    "cdc_lag_seconds": "Seconds from a CDC heartbeat's write to its reading by the input.",
}
PREFIX = "flbsql_"

_registry: dict[str, Metrics] = {}
_registry_lock = threading.Lock()
_servers: dict[tuple[str, int], _Server] = {}


class Metrics:
    """Counters and gauges of one plugin instance.

    Args:
        plugin: ``in_sql`` or ``out_sql`` (the ``plugin`` label).
        instance: a readable instance name (the ``instance`` label), e.g. the table or
            ``position_name``; made unique within the process by appending ``#2``, ...
        interval: seconds between log lines from :meth:`tick` (0: never).
        port: serve Prometheus text on this port (0: no server).
        address: address to bind the server to.
        log: where :meth:`tick` writes; ``None`` disables the line.
        clock: wall-clock time source (tests).

    Raises:
        ConfigError: ``metrics.port`` cannot be bound.
    """

    def __init__(
        self,
        plugin: str,
        instance: str,
        *,
        interval: float = 0.0,
        port: int = 0,
        address: str = "127.0.0.1",
        log: logging.Logger | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.plugin = plugin
        self.interval = interval
        self.log = log
        self._clock = clock
        self._lock = threading.Lock()
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._last_logged = dict(self._counters)
        self._gauges: dict[str, float] = {}
        self._cursor_time: float | None = None
        self._pool_stats: Callable[[], dict[str, int]] | None = None
        self._next_log = clock() + interval if interval > 0 else float("inf")
        self._server_key: tuple[str, int] | None = None
        self._closed = False
        with _registry_lock:
            name, n = instance, 1
            while name in _registry:
                n += 1
                name = f"{instance}#{n}"
            self.instance = name
            _registry[name] = self
        if port:
            try:
                _acquire_server(address, port)
            except OSError as exc:
                self.close()
                raise ConfigError(
                    "metrics.port", f"cannot serve metrics on {address}:{port}: {exc}"
                ) from None
            self._server_key = (address, port)

    @classmethod
    def from_config(
        cls, cfg: Config, plugin: str, instance: str, log: logging.Logger | None = None
    ) -> Metrics:
        """Build from a :class:`~flbsql.settings.Config` (``metrics.*`` options)."""
        return cls(
            plugin,
            instance,
            interval=cfg.metrics_interval,
            port=cfg.metrics_port,
            address=cfg.metrics_address,
            log=log,
        )

    def attach_pool(self, stats: Callable[[], dict[str, int]]) -> None:
        """Report a connection pool's counters (``Pool.stats``) as the db_* counters."""
        self._pool_stats = stats

    def inc(self, name: str, n: int = 1) -> None:
        """Add ``n`` to a counter."""
        if name not in COUNTERS:
            raise KeyError(name)
        if n < 0:
            raise ValueError("counters only grow")
        with self._lock:
            self._counters[name] += n

    def set(self, name: str, value: float | None) -> None:
        """Set a gauge (``None`` hides it again)."""
        if name not in GAUGES:
            raise KeyError(name)
        with self._lock:
            if name == "cursor_age_seconds":
                self._cursor_time = None
            if value is None:
                self._gauges.pop(name, None)
            else:
                self._gauges[name] = float(value)

    def set_cursor_time(self, epoch_seconds: float | None) -> None:
        """The newest row's time; ``cursor_age_seconds`` is then now minus it."""
        with self._lock:
            self._cursor_time = epoch_seconds
            self._gauges.pop("cursor_age_seconds", None)

    def snapshot(self) -> dict[str, float]:
        """Every counter and every gauge that has a value, by name."""
        with self._lock:
            values: dict[str, float] = dict(self._counters)
            values.update(self._gauges)
            if self._cursor_time is not None:
                values["cursor_age_seconds"] = max(0.0, self._clock() - self._cursor_time)
            pool_stats = self._pool_stats
        if pool_stats is not None:
            stats = pool_stats()
            for name, keys in _POOL_COUNTERS.items():
                values[name] = sum(stats.get(k, 0) for k in keys)
        return values

    def log_line(self) -> str:
        """One line: counters with their growth since the previous line, then gauges."""
        snap = self.snapshot()
        with self._lock:
            parts = []
            for name in COUNTERS:
                value = int(snap[name])
                delta = value - self._last_logged[name]
                parts.append(f"{name}={value}" + (f"(+{delta})" if delta else ""))
                self._last_logged[name] = value
        parts += [f"{name}={_number(snap[name])}" for name in GAUGES if name in snap]
        return f"metrics {self.plugin} {self.instance}: " + " ".join(parts)

    def tick(self) -> bool:
        """Log :meth:`log_line` if ``interval`` elapsed; call it from the callbacks.

        Returns:
            True when a line was written.
        """
        now = self._clock()
        with self._lock:
            if now < self._next_log or self.log is None:
                return False
            self._next_log = now + self.interval
        self.log.info("%s", self.log_line())
        return True

    def close(self) -> None:
        """Leave the registry; the last instance on a port stops its server."""
        with _registry_lock:
            if self._closed:
                return
            self._closed = True
            if _registry.get(self.instance) is self:
                del _registry[self.instance]
            key, self._server_key = self._server_key, None
        if key is not None:
            _release_server(*key)

    def __repr__(self) -> str:
        return f"Metrics({self.plugin} {self.instance})"


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.3f}"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def live_instances() -> list[Metrics]:
    """Every instance not yet closed, in creation order."""
    with _registry_lock:
        return list(_registry.values())


def prometheus_text(instances: Iterable[Metrics] | None = None) -> str:
    """Prometheus text exposition (format 0.0.4) of every live instance."""
    snaps = [(m, m.snapshot()) for m in (live_instances() if instances is None else instances)]
    out: list[str] = []
    families = [(f"{PREFIX}{n}_total", "counter", n, h) for n, h in COUNTERS.items()]
    families += [(f"{PREFIX}{n}", "gauge", n, h) for n, h in GAUGES.items()]
    for metric, kind, name, helptext in families:
        samples = [
            f'{metric}{{plugin="{_label(m.plugin)}",instance="{_label(m.instance)}"}} '
            f"{_number(snap[name])}"
            for m, snap in snaps
            if name in snap
        ]
        if samples:
            out += [f"# HELP {metric} {helptext}", f"# TYPE {metric} {kind}", *samples]
    return "\n".join(out) + "\n" if out else ""


def _handler() -> Any:
    """The request handler class.

    http.server is imported only when a port is served: 60 ms of every start otherwise.
    """
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "flbsql-metrics"

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] not in ("/metrics", "/"):
                self.send_error(404)
                return
            body = prometheus_text().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Silence the default per-request stderr line."""

    return Handler


class _Server:
    """A ThreadingHTTPServer in a daemon thread, shared by every instance on one port."""

    def __init__(self, address: str, port: int) -> None:
        import http.server

        self.httpd = http.server.ThreadingHTTPServer((address, port), _handler())
        self.httpd.daemon_threads = True
        self.users = 0
        self.thread = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"flbsql-metrics-{port}",
            daemon=True,
        )
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def _acquire_server(address: str, port: int) -> None:
    with _registry_lock:
        server = _servers.get((address, port))
        if server is None:
            server = _servers[(address, port)] = _Server(address, port)
        server.users += 1


def _release_server(address: str, port: int) -> None:
    with _registry_lock:
        server = _servers.get((address, port))
        if server is None:
            return
        server.users -= 1
        if server.users > 0:
            return
        del _servers[(address, port)]
    server.stop()


def running_servers() -> list[tuple[str, int]]:
    """(address, port) of the metrics servers running in this process."""
    with _registry_lock:
        return list(_servers)
