"""The one backoff policy, and its probe that ends a backoff when the server is back."""

from __future__ import annotations

import socket
import time

from flbsql.conn.backoff import PROBE_EVERY, Backoff


def test_delays_double_to_the_cap_and_start_over_after_a_success():
    b = Backoff(1.0, 8.0)
    delays = [b.failure() for _ in range(6)]
    assert all(0.9 <= d / e <= 1.1 for d, e in zip(delays, [1, 2, 4, 8, 8, 8], strict=True))
    assert all(d <= 8.0 for d in delays)
    b.success()
    assert b.failures == 0 and b.remaining() == 0.0 and round(b.failure()) == 1


def test_a_server_that_is_back_ends_the_backoff_at_once():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        b = Backoff(30.0, 30.0, ("127.0.0.1", port))
        b.failure()
        assert b.remaining() > 25  # nothing listens yet
        server.listen()
        time.sleep(PROBE_EVERY)  # one probe every 0.5 s at most
        assert b.remaining() == 0.0  # the port answers: try now


def test_no_probe_without_a_host_or_for_a_unix_socket():
    assert Backoff(1, 2, (None, None)).probe is None
    assert Backoff(1, 2, ("/var/run/postgresql", 5432)).probe is None
    assert Backoff(1, 2, ("db", None)).probe is None
    assert Backoff(1, 2, ("db", 5432)).probe == ("db", 5432)
