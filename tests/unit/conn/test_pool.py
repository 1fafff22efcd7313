"""Pool behaviour with a fake dialect: no database, exact timing through a fake clock."""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time

import pytest

from flbsql.conn.pool import Pool, PoolSettings
from flbsql.conn.url import ConnectParams
from flbsql.dialects.base import Dialect
from flbsql.errors import DisconnectError, RecordError, SecretError, TerminalError, TransientError


class LostError(Exception):
    pass


class BadError(Exception):
    pass


class SlowError(Exception):
    pass


class FakeConn:
    ids = itertools.count(1)

    def __init__(self, params):
        self.id = next(self.ids)
        self.params = params
        self.closed = False
        self.pings = 0

    def cursor(self):
        raise NotImplementedError

    def commit(self):
        pass

    def rollback(self):
        pass

    def close(self):
        self.closed = True


class FakeDialect(Dialect):
    name = "fake"

    def __init__(self):
        self.down = False
        self.ping_fails = False
        self.connects: list[FakeConn] = []

    def connect(self, params):
        if self.down:
            raise LostError("connection refused")
        conn = FakeConn(params)
        self.connects.append(conn)
        return conn

    def ping(self, conn):
        conn.pings += 1
        if self.ping_fails or conn.closed:
            raise LostError("server closed the connection")

    def classify(self, exc):
        if isinstance(exc, LostError):
            return DisconnectError(str(exc))
        if isinstance(exc, SlowError):
            return TransientError(str(exc))
        if isinstance(exc, BadError):
            return RecordError(str(exc))
        return TerminalError(str(exc))


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(time, "monotonic", c)
    monkeypatch.setattr(random, "uniform", lambda a, b: 0.0)
    return c


class Source:
    """A credential source around a plain function (release counted)."""

    def __init__(self, fn):
        self.fn, self.released = fn, 0

    def __call__(self):
        return self.fn()

    def release(self):
        self.released += 1


def make(dialect=None, credentials=None, **settings):
    s = PoolSettings(
        **{
            "max_lifetime": 100.0,
            "check_idle": 10.0,
            "backoff_initial": 1.0,
            "backoff_max": 8.0,
            **settings,
        }
    )
    log = logging.getLogger("test.pool")
    d = dialect or FakeDialect()
    params = ConnectParams("postgresql", host="db", user="app", password="s3cret-pw")
    source = Source(credentials) if credentials is not None else None
    return Pool(d, params, s, log, source), d


def test_lazy_then_one_connection_per_thread(clock):
    p, d = make()
    assert d.connects == []  # nothing at construction
    with p.connection() as c1:
        pass
    with p.connection() as c2:
        pass
    assert c1 is c2
    seen = []

    def other():
        with p.connection() as c:
            seen.append(c)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen[0] is not c1
    assert p.stats()["connects"] == 2
    assert p.stats()["open"] == 2


def test_backoff_doubles_and_heals_on_the_first_attempt_after_it(clock):
    p, d = make()
    d.down = True
    delays = []
    for _ in range(5):
        with pytest.raises(TransientError, match="cannot connect"), p.connection():
            pass
        delays.append(p._backoff.due_at - clock.now)
        # fail fast until the delay has passed: no connect attempt
        with pytest.raises(TransientError, match="next attempt in"), p.connection():
            pass
        clock.now = p._backoff.due_at
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]  # jitter pinned to 0, capped at backoff_max
    assert p.stats()["connect_failures"] == 5
    d.down = False
    with p.connection():  # exactly one backoff step after the database is back
        pass
    assert p.stats()["connects"] == 1
    assert p._backoff.failures == 0  # reset: the next outage starts at backoff_initial again


def test_backoff_jitter_is_within_ten_percent(monkeypatch):
    p, d = make()
    d.down = True
    seen = set()
    for _ in range(50):
        p._backoff.success()
        with pytest.raises(TransientError), p.connection():
            pass
        delay = p._backoff.due_at - time.monotonic()
        assert 0.89 <= delay <= 1.11
        seen.add(round(delay, 3))
    assert len(seen) > 5  # really jittered


def test_disconnect_invalidates_every_connection_and_raises_classified(clock):
    p, _d = make()
    other_conn = []

    def other():
        with p.connection() as c:
            other_conn.append(c)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    with pytest.raises(DisconnectError) as info, p.connection():
        raise LostError("server closed the connection unexpectedly")
    assert isinstance(info.value.__cause__, LostError)
    assert other_conn[0].closed  # the idle connection of the other worker is retired too
    assert p.stats()["open"] == 0
    assert p.stats()["invalidations"] == 1
    with p.connection() as c:
        assert not c.closed


def test_invalidate_does_not_close_a_connection_in_use(clock):
    p, _d = make()
    inside, release = threading.Event(), threading.Event()
    held = []

    def worker():
        with p.connection() as c:
            held.append(c)
            inside.set()
            release.wait(5)
            assert not c.closed  # still usable until given back

    t = threading.Thread(target=worker)
    t.start()
    inside.wait(5)
    p.invalidate("test")
    release.set()
    t.join()
    assert held[0].closed  # closed at check-in
    assert p.stats()["open"] == 0


def test_transient_error_replaces_only_this_connection(clock):
    p, _d = make()
    with pytest.raises(TransientError), p.connection() as c1:
        raise SlowError("read timeout")
    assert c1.closed
    assert p.stats()["invalidations"] == 0
    with p.connection() as c2:
        assert c2 is not c1


def test_record_error_keeps_the_connection(clock):
    p, _d = make()
    with pytest.raises(RecordError), p.connection() as c1:
        raise BadError("value too long")
    with p.connection() as c2:
        assert c2 is c1


def test_an_error_on_a_connection_the_driver_reports_closed_is_a_disconnect(clock):
    p, _d = make()
    with pytest.raises(DisconnectError), p.connection() as c:
        c.closed = True
        raise ValueError("some unclassified driver error")


def test_idle_connection_is_pinged_and_a_failed_ping_reconnects(clock):
    p, d = make()
    with p.connection() as c1:
        pass
    clock.now += 5
    with p.connection():
        pass
    assert c1.pings == 0  # not idle long enough
    clock.now += 11
    with p.connection() as c:
        assert c is c1
    assert c1.pings == 1
    clock.now += 11
    d.ping_fails = True  # e.g. the server's idle timeout closed it
    with p.connection() as c2:
        pass
    assert c2 is not c1 and c1.closed
    assert p.stats()["pings_failed"] == 1


def test_max_lifetime_recycles_with_jitter(clock, monkeypatch):
    p, _d = make()
    monkeypatch.setattr(random, "uniform", lambda a, b: b)  # the most jitter: 10 %
    with p.connection() as c1:
        pass
    clock.now += 89
    with p.connection() as c:
        assert c is c1
    clock.now += 2  # 91 s > 100 s - 10 %
    with p.connection() as c2:
        pass
    assert c2 is not c1 and c1.closed
    assert p.stats()["recycles"] == 1


def test_rotated_credentials_retire_old_connections_at_next_checkout(clock):
    creds = {"v": ("user1", "pw1")}
    p, _d = make(credentials=lambda: creds["v"])
    with p.connection() as c1:
        assert (c1.params.user, c1.params.password) == ("user1", "pw1")
        creds["v"] = ("user2", "pw2")  # rotation while a transaction runs: it finishes
        assert not c1.closed
    with p.connection() as c2:
        assert (c2.params.user, c2.params.password) == ("user2", "pw2")
    assert c1.closed
    assert p.stats()["rotations"] == 1


def test_credentials_failure_without_connection_is_retried_with_backoff(clock):
    def broken():
        raise SecretError("vault unreachable")

    p, d = make(credentials=broken)
    with pytest.raises(SecretError), p.connection():
        pass
    assert p.stats()["connect_failures"] == 1
    assert d.connects == []


def test_credentials_failure_keeps_an_open_connection(clock):
    state = {"fail": False}

    def creds():
        if state["fail"]:
            raise SecretError("vault unreachable")
        return ("u", "p")

    p, _d = make(credentials=creds)
    with p.connection() as c1:
        pass
    state["fail"] = True
    with p.connection() as c2:
        assert c2 is c1


def test_secrets_never_in_errors_or_repr(clock, caplog):
    p, d = make()
    d.down = True
    caplog.set_level(logging.DEBUG, "test.pool")
    with pytest.raises(TransientError) as info, p.connection():
        pass
    assert "s3cret-pw" not in str(info.value)
    assert "s3cret-pw" not in repr(p)
    assert "s3cret-pw" not in caplog.text
    assert "db" in caplog.text  # but the log does say where it failed to connect


def test_close_then_use_raises_transient(clock):
    p, _d = make()
    with p.connection() as c:
        pass
    p.close()
    assert c.closed
    with pytest.raises(TransientError), p.connection():
        pass


def test_closing_the_pool_releases_its_credential_source():
    p, _d = make(credentials=lambda: ("app", "pw"))
    source = p._credentials
    with p.connection():
        pass
    p.close()
    assert source.released == 1
