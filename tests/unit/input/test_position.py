"""Position record, its storage and its boundary rules (no database server)."""

from __future__ import annotations

import datetime as dt
import decimal
import sqlite3
import uuid

import pytest

from flbsql.errors import ConfigError
from flbsql.input.position import Position, decode_value, encode_value
from flbsql.input.store import PositionStore

VALUES = [
    None,
    True,
    0,
    -(2**63),
    2**70,
    1.5,
    float("inf"),
    decimal.Decimal("12345678901234567890.000001"),
    "Ünïcode 'q'",
    dt.datetime(2024, 5, 1, 12, 0, 0, 123456),
    dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    dt.date(2024, 5, 1),
    dt.time(23, 59, 59, 999999),
    uuid.uuid4(),
    b"\x00\xffbin",
]


IDS = [f"{type(v).__name__}{i}" for i, v in enumerate(VALUES)]


@pytest.mark.parametrize("value", VALUES, ids=IDS)
def test_values_round_trip_with_their_type(value):
    back = decode_value(encode_value(value))
    assert back == value
    assert type(back) is type(value)


def test_unsupported_type_is_refused():
    with pytest.raises(TypeError):
        encode_value(object())


def test_position_json_round_trip():
    pos = Position(
        ("updated_at", "id"),
        tracked=True,
        last=(dt.datetime(2024, 1, 1), 7),
        boundary=frozenset({(5,), (7,)}),
        rows=9,
    )
    assert Position.from_json(pos.to_json()) == pos


def test_advance_collects_boundary_keys_at_the_last_tracking_value():
    t1, t2 = dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2)
    pos = Position(("ts", "id"), tracked=True)
    pos = pos.advance((t2, 4), [(t1, 1), (t2, 3), (t2, 4)], 4)
    assert pos.last == (t2, 4)
    assert pos.boundary == {(3,), (4,)}
    assert pos.rows == 4
    # same tracking value continues: boundary grows
    pos2 = pos.advance((t2, 6), [(t2, 6)], 1)
    assert pos2.boundary == {(3,), (4,), (6,)}
    assert pos2.is_boundary_row((t2, 3))
    assert not pos2.is_boundary_row((t2, 5))
    assert not pos2.is_boundary_row((t1, 3))


def test_untracked_position_keeps_no_boundary():
    pos = Position(("a", "b")).advance(("x", 2), [("x", 1), ("x", 2)], 2)
    assert pos.boundary == frozenset()
    assert not pos.is_boundary_row(("x", 2))


def test_store_save_load_and_migrations_are_idempotent(tmp_path):
    path = str(tmp_path / "sub" / "pos.db")
    store = PositionStore(path, "full")
    pos = Position(("id",), last=(42,), rows=42)
    store.save("db/t", "table:t", pos)
    store.close()
    store = PositionStore(path, "normal")  # re-open: migrations run again, harmlessly
    assert store.load("db/t", "table:t", ("id",)) == pos
    assert store.load("other", "table:t", ("id",)) is None
    store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2  # positions, then in_sql_cdc


def test_store_refuses_a_position_of_another_source(tmp_path):
    store = PositionStore(str(tmp_path / "p.db"))
    store.save("n", "table:a", Position(("id",), last=(1,)))
    with pytest.raises(ConfigError, match="belongs to table:a"):
        store.load("n", "table:b", ("id",))
    with pytest.raises(ConfigError, match="ordered by id"):
        store.load("n", "table:a", ("other_id",))
