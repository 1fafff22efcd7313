"""The watchdog with fake connections over loopback TCP sockets: no database."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

import pytest

from flbsql.conn.pool import Pool, PoolSettings
from flbsql.conn.url import ConnectParams
from flbsql.conn.watchdog import Watchdog, grace_for
from flbsql.dialects.base import Dialect
from flbsql.errors import DisconnectError


@pytest.fixture
def tcp_pair():
    """(client, server) sockets of one loopback TCP connection."""
    made: list[socket.socket] = []

    def make() -> tuple[socket.socket, socket.socket]:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            client = socket.create_connection(listener.getsockname())
            server, _ = listener.accept()
        made.extend((client, server))
        return client, server

    yield make
    for s in made:
        s.close()


class FakeConn:
    """A driver connection whose "queries" are reads on a TCP socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.interrupts = 0
        self.closed = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def cancel(self) -> None:  # the base dialect's default interrupt calls it
        self.interrupts += 1

    def query(self) -> bytes:
        """Blocks until the server answers (or the socket is shut down)."""
        data = self.sock.recv(1)
        if not data:
            raise ConnectionResetError("server closed the connection")
        return data

    def cursor(self):
        raise NotImplementedError

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def blocked_read(conn: FakeConn) -> tuple[threading.Thread, list[BaseException | bytes]]:
    out: list[BaseException | bytes] = []

    def run() -> None:
        try:
            out.append(conn.query())
        except BaseException as exc:
            out.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def test_grace_is_a_quarter_between_half_a_second_and_five():
    assert grace_for(60.0) == 5.0
    assert grace_for(10.0) == 2.5
    assert grace_for(2.0) == 0.5
    assert grace_for(0.1) == 0.5


def test_a_deadline_that_passes_interrupts_then_shuts_the_socket_down(tcp_pair):
    client, _server = tcp_pair()
    conn = FakeConn(client)
    dog = Watchdog(close_after=0.1, idle_exit=0.2)
    expired: list[Any] = []
    start = time.monotonic()
    w = dog.watch(conn, 0.3, fileno=conn.fileno(), interrupt=conn.cancel, on_expire=expired.append)
    t, out = blocked_read(conn)  # the server never answers
    t.join(2.0)
    elapsed = time.monotonic() - start
    dog.release(w)
    assert not t.is_alive()
    assert isinstance(out[0], ConnectionResetError)  # the read returned, with an error
    assert 0.3 <= elapsed < 1.0
    assert w.fired and 0.3 <= w.elapsed < 0.5
    assert expired == [w] and conn.interrupts == 1 and dog.fired == 1
    assert client.fileno() >= 0  # the driver's descriptor was not closed, only shut down


def test_a_connection_released_in_time_is_never_touched(tcp_pair):
    client, server = tcp_pair()
    conn = FakeConn(client)
    dog = Watchdog(close_after=0.05, idle_exit=0.2)
    w = dog.watch(conn, 0.3, fileno=conn.fileno(), interrupt=conn.cancel)
    server.sendall(b"x")
    assert conn.query() == b"x"
    dog.release(w)
    dog.release(w)  # idempotent
    time.sleep(0.5)  # well past the deadline
    assert not w.fired and conn.interrupts == 0 and dog.active == 0
    server.sendall(b"y")
    assert conn.query() == b"y"  # still open and usable
    client.sendall(b"z")
    assert server.recv(1) == b"z"


def test_an_operation_that_keeps_moving_bytes_outlives_its_deadline(tcp_pair):
    client, server = tcp_pair()
    conn = FakeConn(client)
    dog = Watchdog(close_after=0.05, idle_exit=0.2)
    w = dog.watch(conn, 0.3, fileno=conn.fileno(), interrupt=conn.cancel)
    start = time.monotonic()
    while time.monotonic() - start < 1.0:  # three deadlines long, never 0.3 s quiet
        server.sendall(b"r")
        assert conn.query() == b"r"
        client.sendall(b"w" * 1000)
        server.recv(65536)
        last = time.monotonic()
        time.sleep(0.05)
    assert not w.fired and conn.interrupts == 0
    # once it stops moving, the deadline is the last transfer + limit
    t, out = blocked_read(conn)
    t.join(2.0)
    dog.release(w)
    assert w.fired and isinstance(out[0], ConnectionResetError)
    assert last + 0.3 - 0.01 <= w.started + w.elapsed < last + 0.3 + 0.3


def test_without_a_socket_the_deadline_is_the_whole_checkout():
    class Local:  # SQLite: no socket, only the driver's interrupt()
        def __init__(self) -> None:
            self.interrupted = threading.Event()

        def interrupt(self) -> None:
            self.interrupted.set()

    conn = Local()
    dog = Watchdog(close_after=0.05, idle_exit=0.2)
    w = dog.watch(conn, 0.2, fileno=None, interrupt=lambda: Dialect().interrupt(conn))  # type: ignore[arg-type]
    assert conn.interrupted.wait(2.0)
    dog.release(w)
    assert w.fired and 0.2 <= w.elapsed < 0.4


def test_one_thread_for_all_watches_and_it_exits_when_idle(tcp_pair):
    dog = Watchdog(close_after=0.05, idle_exit=0.2)
    assert dog.thread is None  # lazy
    watches = [dog.watch(FakeConn(tcp_pair()[0]), 0.3)]
    thread = dog.thread
    assert thread is not None and thread.daemon
    watches += [dog.watch(FakeConn(tcp_pair()[0]), 0.3) for _ in range(2)]
    assert dog.thread is thread and dog.active == 3
    for w in watches:
        dog.release(w)
    thread.join(2.0)
    assert not thread.is_alive() and dog.thread is None
    w = dog.watch(FakeConn(tcp_pair()[0]), 0.3)  # starts again on demand
    assert dog.thread is not None and dog.thread is not thread
    dog.release(w)
    dog.thread.join(2.0)


def test_an_interrupt_that_hangs_does_not_hold_up_the_shutdown(tcp_pair):
    client, _server = tcp_pair()
    conn = FakeConn(client)
    release = threading.Event()
    dog = Watchdog(close_after=0.05, idle_exit=0.2)
    w = dog.watch(conn, 0.2, fileno=conn.fileno(), interrupt=lambda: release.wait(5.0))
    t, out = blocked_read(conn)
    t.join(2.0)
    dog.release(w)
    release.set()
    assert w.fired and isinstance(out[0], ConnectionResetError)


# -- through the pool ----------------------------------------------------------------------


class SocketDialect(Dialect):
    name = "fake"

    def __init__(self, make_pair: Any) -> None:
        self.make_pair = make_pair
        self.conns: list[FakeConn] = []

    def connect(self, params):
        conn = FakeConn(self.make_pair()[0])
        self.conns.append(conn)
        return conn

    def is_disconnect(self, exc):
        return isinstance(exc, ConnectionResetError)


def make_pool(tcp_pair: Any, dog: Watchdog) -> tuple[Pool, SocketDialect]:
    d = SocketDialect(tcp_pair)
    params = ConnectParams(
        "postgresql", host="db", user="app", password="s3cret-pw", statement_timeout=0.3
    )
    s = PoolSettings(max_lifetime=100.0, check_idle=10.0, backoff_initial=0.1, backoff_max=0.1)
    return Pool(d, params, s, logging.getLogger("test.pool"), watchdog=dog), d


def test_pool_turns_a_hung_operation_into_a_disconnect(tcp_pair, caplog):
    dog = Watchdog(close_after=0.1, idle_exit=0.2)
    pool, d = make_pool(tcp_pair, dog)
    start = time.monotonic()
    with (
        pytest.raises(DisconnectError, match=r"no answer from .* for 0\.8s") as info,
        pool.connection() as conn,
    ):
        conn.query()  # type: ignore[attr-defined]  # FakeConn's; statement_timeout 0.3 s + 0.5 s grace
    assert time.monotonic() - start < 0.8 + 0.5
    assert isinstance(info.value.__cause__, ConnectionResetError)
    assert "s3cret-pw" not in str(info.value)
    stats = pool.stats()
    assert stats["timeouts"] == 1 and stats["invalidations"] == 1 and stats["open"] == 0
    assert d.conns[0].interrupts == 1 and d.conns[0].closed
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "statement_timeout 0.3s + 0.5s grace" in warnings[0].getMessage()
    assert "s3cret-pw" not in warnings[0].getMessage()
    assert dog.active == 0
    with pool.connection() as conn:  # heals: a new connection
        assert conn is d.conns[1]


def test_pool_leaves_a_timely_operation_alone(tcp_pair):
    dog = Watchdog(close_after=0.1, idle_exit=0.2)
    pool, d = make_pool(tcp_pair, dog)
    for _ in range(3):
        with pool.connection():
            pass
    time.sleep(1.0)
    assert pool.stats()["timeouts"] == 0 and d.conns[0].interrupts == 0
    assert len(d.conns) == 1 and dog.active == 0
    pool.close()
