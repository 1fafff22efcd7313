"""Retry or drop: a failed login is retried, a statement the user may not run is final.

A login can start working again without a restart (a rotated secret file, Vault, an
operator who fixes the grant), so a refused login keeps the chunk (FLB_RETRY, bounded
by ``retry_limit``). A statement the user has no privilege for cannot succeed by
retrying: the chunk is dropped (FLB_ERROR), as docs/position-semantics.md says.
"""

from __future__ import annotations

import secrets

import pytest
from tests import fix_db
from tests.behaviour.output_helpers import make_writer as _make_writer
from tests.fix_db import unique_table
from tests.fix_host import event_v2

from flbsql.conn.url import parse_url
from flbsql.outcome import Outcome, to_outcome


def _outcome(db: fix_db.TestDB, url: str, table: str) -> Outcome:
    w = _make_writer(fix_db.TestDB(db.dialect, url), table, auto_create_table=False)
    try:
        return w.write(event_v2({"a": 1}), "t")
    except Exception as exc:
        return to_outcome(exc)
    finally:
        w.pool.close()


@pytest.mark.mysql
def test_mariadb_refused_login_is_retried_and_a_missing_privilege_is_final(mysql_db):
    table = unique_table("perm")
    mysql_db.execute(f"CREATE TABLE `{table}` (tag TEXT, time DATETIME(6), data JSON)")
    user, pw = f"ro_{secrets.token_hex(4)}", secrets.token_hex(8)
    mysql_db.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY '{pw}'")
    mysql_db.execute(f"GRANT SELECT ON `{parse_url(mysql_db.url).database}`.* TO '{user}'@'%%'")
    try:
        p = parse_url(mysql_db.url)
        base = f"mysql://{user}:{{pw}}@{p.host}:{p.port or 3306}/{p.database}"
        assert _outcome(mysql_db, base.format(pw="wrong"), table) is Outcome.RETRY  # 1045
        assert _outcome(mysql_db, base.format(pw=pw), table) is Outcome.ERROR  # 1142
    finally:
        mysql_db.execute(f"DROP USER '{user}'@'%%'")


@pytest.mark.postgres
def test_postgresql_missing_privilege_is_final(pg_db):
    table = unique_table("perm")
    pg_db.execute(f"CREATE TABLE {table} (tag text, time timestamptz, data jsonb)")
    user = f"ro_{secrets.token_hex(4)}"
    pg_db.execute(f"CREATE ROLE {user} LOGIN")
    try:
        p = parse_url(pg_db.url)
        url = f"postgresql://{user}@{p.host}:{p.port or 5432}/{p.database}"
        assert _outcome(pg_db, url, table) is Outcome.ERROR  # 42501 permission denied
    finally:
        pg_db.execute(f"DROP OWNED BY {user}")
        pg_db.execute(f"DROP ROLE {user}")
