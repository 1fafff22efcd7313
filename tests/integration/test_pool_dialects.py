"""The pool over the real drivers, through the TCP proxy: cuts mid-read and mid-write,
silent peers, server-side idle timeouts. One body per behaviour, run on PostgreSQL
and MariaDB."""

from __future__ import annotations

import logging
import time

import pytest

from flbsql.conn.pool import Pool, PoolSettings
from flbsql.conn.url import parse_url
from flbsql.dialects import get_dialect
from flbsql.errors import DisconnectError, TransientError

pytestmark = [pytest.mark.chaos]

ROWS = 20000


@pytest.fixture(params=["postgresql", "mysql"], ids=["postgresql", "mysql"])
def target(request):
    """(TestDB, proxy) for each dialect."""
    if request.param == "postgresql":
        request.applymarker(pytest.mark.postgres)
        db = request.getfixturevalue("pg_db")
        proxy = request.getfixturevalue("pg_proxy")
    else:
        request.applymarker(pytest.mark.mysql)
        db = request.getfixturevalue("mysql_db")
        proxy = request.getfixturevalue("mysql_proxy")
    db.execute("DROP TABLE IF EXISTS pool_big")
    db.execute("CREATE TABLE pool_big (id INT PRIMARY KEY, pad VARCHAR(200))")
    db.execute("DROP TABLE IF EXISTS pool_w")
    db.execute("CREATE TABLE pool_w (id INT, pad TEXT)")
    conn = db.connect()
    cur = conn.cursor()
    cur.executemany("INSERT INTO pool_big VALUES (%s, %s)", [(i, "x" * 100) for i in range(ROWS)])
    conn.close()
    return db, proxy


_POOLS: list[Pool] = []


@pytest.fixture(autouse=True)
def _close_pools():
    yield
    while _POOLS:
        _POOLS.pop().close()


def make_pool(db, proxy, **settings):
    params = parse_url(proxy.url(db.url)).with_(connect_timeout=2.0, statement_timeout=2.0)
    s = PoolSettings(
        **{
            "max_lifetime": 600.0,
            "check_idle": 30.0,
            "backoff_initial": 0.05,
            "backoff_max": 0.2,
            **settings,
        }
    )
    pool = Pool(get_dialect(params.dialect), params, s, logging.getLogger("test.pool"))
    _POOLS.append(pool)
    return pool


def read_all(pool):
    with pool.connection() as conn:
        cur = conn.cursor()
        cur.execute("SELECT id, pad FROM pool_big ORDER BY id")
        rows = cur.fetchall()
        conn.rollback()
        return rows


def test_cut_mid_read_invalidates_and_the_next_read_is_whole(target):
    db, proxy = target
    pool = make_pool(db, proxy)
    assert len(read_all(pool)) == ROWS
    proxy.cut_after(256 << 10, "down")  # the result is ~2.5 MB: cut a tenth of the way in
    with pytest.raises(DisconnectError):
        read_all(pool)
    assert pool.stats()["invalidations"] == 1 and pool.stats()["open"] == 0
    time.sleep(0.1)
    assert len(read_all(pool)) == ROWS  # healed on the next checkout
    assert pool.stats()["connects"] == 2


def test_cut_mid_write_commits_nothing_then_heals(target):
    db, proxy = target
    pool = make_pool(db, proxy)
    rows = [(i, "y" * 1000) for i in range(2000)]

    def write():
        with pool.connection() as conn:
            cur = conn.cursor()
            try:
                cur.executemany("INSERT INTO pool_w VALUES (%s, %s)", rows)
                conn.commit()
            except BaseException:
                conn.rollback()
                raise

    with pool.connection():
        pass  # connected before the trigger is armed
    proxy.cut_after(200 << 10, "up")
    with pytest.raises(DisconnectError):
        write()
    assert db.query("SELECT count(*) FROM pool_w")[0][0] == 0  # the transaction is all or nothing
    time.sleep(0.1)
    write()
    assert db.query("SELECT count(*) FROM pool_w")[0][0] == 2000


def test_a_refused_server_is_not_hammered_and_is_used_as_soon_as_it_is_back(target):
    db, proxy = target
    pool = make_pool(db, proxy, backoff_initial=30.0, backoff_max=30.0)
    proxy.refuse()
    with pytest.raises(TransientError):
        read_all(pool)
    with pytest.raises(TransientError, match="next attempt"):
        read_all(pool)  # inside the backoff, the port still closed: no connection attempt
    assert pool.stats()["connect_failures"] == 1
    proxy.restore()
    time.sleep(0.5)  # one reachability probe every 0.5 s at most
    assert len(read_all(pool)) == ROWS  # long before the 30 s backoff ends
    assert pool.stats()["connect_failures"] == 1


def test_a_hung_server_does_not_hang_a_read_past_statement_timeout(target, caplog):
    # libpq has no client-side read timeout and the proxy's kernel still acknowledges
    # (tcp_user_timeout cannot fire): the pool's watchdog breaks the connection;
    # PyMySQL's read_timeout usually fires first
    db, proxy = target
    pool = make_pool(db, proxy)
    assert len(read_all(pool)) == ROWS
    proxy.stall()
    start = time.monotonic()
    with pytest.raises(DisconnectError):
        read_all(pool)
    assert time.monotonic() - start < 2.0 + 1.5  # statement_timeout 2 s, not forever
    assert pool.stats()["invalidations"] == 1 and pool.stats()["open"] == 0
    if db.dialect == "postgresql":
        assert pool.stats()["timeouts"] == 1
        warned = [r.getMessage() for r in caplog.records if "no answer from" in r.getMessage()]
        assert len(warned) == 1 and "statement_timeout 2s" in warned[0]
    proxy.restore()
    assert len(read_all(pool)) == ROWS


def test_a_long_flush_that_keeps_data_flowing_is_not_cut(target):
    # the watchdog's deadline follows the traffic: a checkout longer than
    # statement_timeout + grace (each statement well under it) survives while bytes move
    db, proxy = target
    pool = make_pool(db, proxy)
    start = time.monotonic()
    batches = 0
    with pool.connection() as conn:
        cur = conn.cursor()
        while time.monotonic() - start < 3.5:  # past the 2.5 s deadline
            cur.executemany(
                "INSERT INTO pool_w VALUES (%s, %s)",
                [(batches * 20 + i, "z" * 100) for i in range(20)],
            )
            batches += 1
            time.sleep(0.05)
        conn.commit()
    assert pool.stats()["timeouts"] == 0 and pool.stats()["invalidations"] == 0
    assert db.query("SELECT count(*) FROM pool_w")[0][0] == batches * 20


def test_silent_peer_at_connect_is_bounded_by_connect_timeout(target):
    db, proxy = target
    pool = make_pool(db, proxy)
    proxy.blackhole()  # accepts TCP, never says hello
    start = time.monotonic()
    with pytest.raises(TransientError, match="cannot connect"):
        read_all(pool)
    assert time.monotonic() - start < 2.0 + 1.5


def test_server_side_idle_timeout_is_survived(target):
    db, proxy = target
    pool = make_pool(db, proxy, check_idle=0.2)
    with pool.connection() as conn:
        cur = conn.cursor()
        if db.dialect == "postgresql":
            cur.execute("SET idle_session_timeout = '300ms'")
        else:
            cur.execute("SET SESSION wait_timeout = 1")
        conn.commit()
    time.sleep(1.6)  # the server closes the idle session
    assert len(read_all(pool)) == ROWS  # the ping before use noticed: no error surfaced
    assert pool.stats()["pings_failed"] == 1
    assert pool.stats()["connects"] == 2


def test_max_lifetime_replaces_connections(target):
    db, proxy = target
    pool = make_pool(db, proxy, max_lifetime=1.0)
    read_all(pool)
    time.sleep(1.1)
    read_all(pool)
    assert pool.stats()["recycles"] == 1
    assert pool.stats()["connects"] == 2
