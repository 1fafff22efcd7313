"""SQL text from the config (`where`, `query`) reaches the server as written."""

from __future__ import annotations

import pytest
from tests.fix_db import unique_table
from tests.integration.input_helpers import INTKEY, TEXT, drain, ph, q, source


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def db(request):
    name = {"sqlite": "sqlite_db", "postgresql": "pg_db", "mysql": "mysql_db"}[request.param]
    return request.getfixturevalue(name)


def test_a_percent_sign_in_where_and_query_is_not_a_placeholder(db, tmp_path):
    t = unique_table("pct")
    db.execute(f"CREATE TABLE {q(db, t)} (id {INTKEY[db.dialect]}, msg {TEXT[db.dialect]})")
    try:
        for msg in ("error: disk", "err%literal", "info", "errand 100%"):
            db.execute(f"INSERT INTO {q(db, t)} (msg) VALUES ({ph(db)})", (msg,))
        src = source(db, tmp_path / "w", table=t, where="msg LIKE 'err%'")
        try:
            got = sorted(e.body["msg"] for e in drain(src, 3))
        finally:
            src.close()
        assert got == ["err%literal", "errand 100%", "error: disk"]
        src = source(
            db,
            tmp_path / "q",
            key="id",
            position_name="q",
            query=f"SELECT id, msg FROM {q(db, t)} WHERE msg LIKE '%100%%' AND {{position}}",
        )
        try:
            assert [e.body["msg"] for e in drain(src, 1)] == ["errand 100%"]
        finally:
            src.close()
    finally:
        db.execute(f"DROP TABLE {q(db, t)}")
