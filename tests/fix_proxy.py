"""A TCP proxy between a client and a database, to cut and restore connectivity.

As psycopg's ``tests/fix_proxy.py``: the plugin connects to the proxy, the proxy to
the server. A test can then

- ``cut()``: reset every open connection now (mid-flush, mid-read, idle);
- ``refuse()`` / ``restore()``: stop accepting (new connects are refused, like a
  server that is down) and start again on the same port;
- ``cut_after(n, "down")``: reset a connection once ``n`` more bytes went from the
  server to the client (``"up"``: client to server), which cuts a large read or a
  large write half-way, deterministically;
- ``blackhole()``: accept connections but never answer (a silent peer, for read and
  connect timeouts) until ``restore()``;
- ``stall()``: keep the open connections but forward nothing (a hung server).

Everything runs on daemon threads that end with ``stop()`` (the fixture does it).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["Proxy"]


@dataclass(eq=False)
class _Pair:
    client: socket.socket
    server: socket.socket | None
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for s in (self.client, self.server):
            if s is None:
                continue
            with contextlib.suppress(OSError):
                # RST instead of FIN: the client sees "connection reset", like a cut cable
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RD)  # wakes the pump blocked in recv(), sends nothing
            with contextlib.suppress(OSError):
                s.close()


class Proxy:
    """Forwards 127.0.0.1:<port> to ``target``."""

    def __init__(self, target_host: str, target_port: int, port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.host = "127.0.0.1"
        self.port = port
        self._listener: socket.socket | None = None
        self._pairs: set[_Pair] = set()
        self._lock = threading.Lock()
        self._blackhole = False
        self._stalled = False
        self._cut_after: dict[str, int | None] = {"up": None, "down": None}
        self.accepted = 0
        self.cuts = 0

    # -- control ---------------------------------------------------------------------

    def start(self) -> Proxy:
        """Listen (on the same port again after ``refuse()``)."""
        if self._listener is not None:
            return self
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(64)
        self.port = sock.getsockname()[1]
        self._listener = sock
        threading.Thread(
            target=self._accept_loop, args=(sock,), daemon=True, name=f"proxy-accept-{self.port}"
        ).start()
        return self

    def cut(self) -> int:
        """Reset every open connection; returns how many were cut."""
        with self._lock:
            pairs = list(self._pairs)
            self._pairs.clear()
        for pair in pairs:
            pair.close()
        self.cuts += 1
        return len(pairs)

    def refuse(self) -> None:
        """Cut everything and stop listening: connects are refused."""
        sock, self._listener = self._listener, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.cut()

    def restore(self) -> None:
        """Accept and forward again (undoes ``refuse()``, ``blackhole()``, ``stall()``)."""
        self._blackhole = False
        self._stalled = False
        self.start()

    def blackhole(self) -> None:
        """Accept connections but never forward or answer (a silent peer)."""
        self._blackhole = True
        self.cut()

    def stall(self, on: bool = True) -> None:
        """Keep every connection open but forward nothing (a hung server whose kernel
        still acknowledges): only a client-side read timeout ends a call."""
        self._stalled = on

    def cut_after(self, nbytes: int, direction: str = "down") -> None:
        """Reset the connection that carries the next ``nbytes`` in ``direction``."""
        assert direction in ("up", "down")
        with self._lock:
            self._cut_after[direction] = nbytes

    def stop(self) -> None:
        """Stop listening and close everything."""
        self.refuse()

    @property
    def open_connections(self) -> int:
        """Connections currently forwarded."""
        with self._lock:
            return len(self._pairs)

    def url(self, url: str) -> str:
        """``url`` with its host:port replaced by the proxy's."""
        parts = urlsplit(url)
        netloc = parts.netloc.rsplit("@", 1)
        auth = netloc[0] + "@" if len(netloc) == 2 else ""
        return urlunsplit(parts._replace(netloc=f"{auth}{self.host}:{self.port}"))

    # -- threads ---------------------------------------------------------------------

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self._blackhole:
                pair = _Pair(client, None)
                with self._lock:
                    self._pairs.add(pair)
                continue
            try:
                server = socket.create_connection(self.target, timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            pair = _Pair(client, server)
            with self._lock:
                self._pairs.add(pair)
            for src, dst, direction in ((client, server, "up"), (server, client, "down")):
                threading.Thread(
                    target=self._pump, args=(pair, src, dst, direction), daemon=True
                ).start()

    def _pump(self, pair: _Pair, src: socket.socket, dst: socket.socket, direction: str) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                while self._stalled and not pair.closed:
                    time.sleep(0.05)
                dst.sendall(data)
                if self._count(direction, len(data)):
                    break
        except OSError:
            pass
        with self._lock:
            self._pairs.discard(pair)
        pair.close()

    def _count(self, direction: str, n: int) -> bool:
        """True when an armed ``cut_after`` fires on this chunk."""
        with self._lock:
            left = self._cut_after[direction]
            if left is None:
                return False
            left -= n
            if left > 0:
                self._cut_after[direction] = left
                return False
            self._cut_after[direction] = None
            self.cuts += 1
            return True


@pytest.fixture
def proxy_factory() -> Iterator[type[Proxy]]:
    """``proxy_factory(host, port)`` -> a started :class:`Proxy`, stopped after the test."""
    made: list[Proxy] = []

    def make(host: str, port: int) -> Proxy:
        p = Proxy(host, port).start()
        made.append(p)
        return p

    yield make  # type: ignore[misc]
    for p in made:
        p.stop()


@pytest.fixture
def pg_proxy(pg_db, proxy_factory):
    """A proxy in front of the session PostgreSQL; ``pg_proxy.url(pg_db.url)``."""
    parts = urlsplit(pg_db.url)
    return proxy_factory(parts.hostname or "127.0.0.1", parts.port or 5432)


@pytest.fixture
def mysql_proxy(mysql_db, proxy_factory):
    """A proxy in front of the session MariaDB."""
    parts = urlsplit(mysql_db.url)
    return proxy_factory(parts.hostname or "127.0.0.1", parts.port or 3306)
