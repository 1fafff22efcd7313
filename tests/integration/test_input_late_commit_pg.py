"""Gap-free polling on PostgreSQL for the commit orders ORMs produce every day.

The horizon must hold the reader back for every transaction that was in progress when
a signpost was sampled, not only for those that already hold a lock on the table:

(a) a key taken from the sequence before the INSERT (``SELECT nextval(...)`` first,
    as ORMs do to know the id), while other sessions insert and commit higher keys;
(b) ``updated_at DEFAULT now()`` in a transaction that touches the table only after
    others committed later timestamps.
"""

from __future__ import annotations

import time

import pytest
from tests.fix_db import unique_table
from tests.integration.input_helpers import drain, settle_quietly, source

pytestmark = pytest.mark.postgres


def _tx(db):
    conn = db.connect()
    conn.autocommit = False
    return conn


def test_a_key_taken_from_the_sequence_before_the_insert_is_not_skipped(pg_db, tmp_path):
    t = unique_table("seq")
    pg_db.execute(f"CREATE SEQUENCE {t}_seq")
    pg_db.execute(f"CREATE TABLE {t} (id bigint PRIMARY KEY DEFAULT nextval('{t}_seq'), who text)")
    pg_db.query(f"SELECT nextval('{t}_seq')")  # the sequence logged a block: no xid below
    src = source(pg_db, tmp_path, table=t)
    orm = _tx(pg_db)
    try:
        cur = orm.cursor()
        cur.execute(f"SELECT nextval('{t}_seq')")  # the ORM learns its id first
        early_id = cur.fetchone()[0]
        for _ in range(50):  # other sessions insert and commit higher keys
            pg_db.execute(f"INSERT INTO {t} (who) VALUES ('other')")
        early = settle_quietly(src, 1.5)
        cur.execute(f"INSERT INTO {t} (id, who) VALUES (%s, 'orm')", (early_id,))
        orm.commit()
        late = drain(src, 51 - len(early), timeout=20)
        ids = [e.body["id"] for e in early + late]
        assert early_id < min(i for i in ids if i != early_id)
        assert sorted(ids) == sorted(r[0] for r in pg_db.query(f"SELECT id FROM {t}"))
        assert len(ids) == 51 == len(set(ids))
    finally:
        orm.close()
        src.close()


def test_updated_at_of_a_transaction_that_wrote_late_is_not_skipped(pg_db, tmp_path):
    t = unique_table("upd")
    pg_db.execute(
        f"CREATE TABLE {t} (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL "
        "DEFAULT now(), who text)"
    )
    src = source(pg_db, tmp_path, table=t, tracking_column="updated_at")
    slow = _tx(pg_db)
    try:
        cur = slow.cursor()
        cur.execute("SELECT 1")  # its now() is fixed here, before the others write
        time.sleep(0.05)
        for i in range(1, 51):
            pg_db.execute(f"INSERT INTO {t} (id, who) VALUES ({i}, 'other')")
        early = settle_quietly(src, 1.5)
        cur.execute(f"INSERT INTO {t} (id, who) VALUES (1000, 'slow')")
        slow.commit()
        late = drain(src, 51 - len(early), timeout=20)
        ids = [e.body["id"] for e in early + late]
        first = pg_db.query(f"SELECT id FROM {t} ORDER BY updated_at, id LIMIT 1")[0][0]
        assert first == 1000, "the slow transaction really holds the earliest updated_at"
        assert sorted(ids) == sorted(r[0] for r in pg_db.query(f"SELECT id FROM {t}"))
        assert len(ids) == 51 == len(set(ids))
    finally:
        slow.close()
        src.close()


def test_a_transaction_left_open_holds_the_reader_back_only_up_to_horizon_timeout(
    pg_db, tmp_path, caplog
):
    t = unique_table("idle")
    pg_db.execute(f"CREATE TABLE {t} (id bigint PRIMARY KEY)")
    idle = _tx(pg_db)
    try:
        idle.cursor().execute("SELECT 1")  # idle in transaction, as a forgotten session is
        pid = idle.info.backend_pid
        pg_db.execute(f"INSERT INTO {t} SELECT generate_series(1, 10)")
        src = source(pg_db, tmp_path, table=t, horizon_timeout="2s")
        try:
            assert settle_quietly(src, 1.0) == []  # held back while it may still commit
            got = drain(src, 10, timeout=10)
            assert sorted(e.body["id"] for e in got) == list(range(1, 11))
        finally:
            src.close()
        named = [r.getMessage() for r in caplog.records if f"pid {pid} " in r.getMessage()]
        assert len(named) == 1 and "horizon_timeout 2s" in named[0], named
        assert "idle in transaction" in named[0]
    finally:
        idle.close()
