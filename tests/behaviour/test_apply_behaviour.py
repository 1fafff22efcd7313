"""Apply mode on every configured database: changes applied by key, replays are no-ops."""

from __future__ import annotations

import pytest

from flbsql.outcome import Outcome
from tests.behaviour.apply_helpers import TOAST, change
from tests.behaviour.output_helpers import qt
from tests.fix_db import unique_table


def _rows(db, table):
    got = db.query(
        f"SELECT {qt(db, 'a')}, {qt(db, 'b')}, {qt(db, 'v')}, {qt(db, 'big')} "
        f"FROM {qt(db, table)} ORDER BY 1, 2"
    )
    return [tuple(r) for r in got]


def _create(db, table):
    text = "LONGTEXT" if db.dialect == "mysql" else "TEXT"
    db.execute(
        f"CREATE TABLE {qt(db, table)} ({qt(db, 'a')} INT NOT NULL, "
        f"{qt(db, 'b')} VARCHAR(40) NOT NULL, {qt(db, 'v')} VARCHAR(100), {qt(db, 'big')} {text}, "
        f"PRIMARY KEY ({qt(db, 'a')}, {qt(db, 'b')}))"
    )


def _workload(src):
    """Snapshot rows, then inserts, a TOAST update, a key change, deletes: one chunk."""
    return b"".join(
        [
            change("r", src, None, {"a": 1, "b": "x", "v": "s1", "big": "B1"}, "0/100", 0, True),
            change("r", src, None, {"a": 2, "b": "y", "v": "s2", "big": "B2"}, "0/100", 1, True),
            change("c", None or src, None, {"a": 3, "b": "z", "v": "n3", "big": "B3"}, "0/200", 0),
            change("u", src, None, {"a": 2, "b": "y", "v": "u2", "big": TOAST}, "0/200", 1),
            change(
                "u", src, {"a": 1, "b": "x"}, {"a": 1, "b": "x2", "v": "k1", "big": "B1"}, "0/300"
            ),
            change("d", src, {"a": 3, "b": "z"}, None, "0/400", 0),
            change("c", src, None, {"a": 4, "b": "w", "v": "n4", "big": "B4"}, "0/400", 1),
            change("u", src, None, {"a": 4, "b": "w", "v": "n4b", "big": "B4b"}, "0/400", 2),
        ]
    )


EXPECTED = [(1, "x2", "k1", "B1"), (2, "y", "u2", "B2"), (4, "w", "n4b", "B4b")]


def test_changes_are_applied_by_key_and_a_replay_changes_nothing(any_db, make_applier):
    table = unique_table("ap")
    _create(any_db, table)
    w = make_applier(any_db, apply_position_table=unique_table("pos"))
    src = f"public.{table}"
    assert w.write(_workload(src), "cdc.x") is Outcome.OK
    assert _rows(any_db, table) == EXPECTED
    assert w.write(change("d", src, {"a": 4, "b": "w"}, None, "0/500"), "cdc.x") is Outcome.OK
    assert _rows(any_db, table) == EXPECTED[:2]
    # Fluent Bit flushes the first chunk again (its acknowledgement was lost): no change
    assert w.write(_workload(src), "cdc.x") is Outcome.OK
    assert _rows(any_db, table) == EXPECTED[:2]
    assert w.write(change("t", src, None, None, "0/600"), "cdc.x") is Outcome.OK
    assert _rows(any_db, table) == []


def test_without_the_position_table_a_replay_is_applied_again(any_db, make_applier):
    """Shows what the position check protects against (the replayed insert comes back)."""
    table = unique_table("ap")
    _create(any_db, table)
    w = make_applier(any_db, apply_position_table="none")
    src = f"public.{table}"
    assert w.write(_workload(src), "cdc.y") is Outcome.OK
    assert w.write(change("d", src, {"a": 4, "b": "w"}, None, "0/500"), "cdc.y") is Outcome.OK
    assert w.write(_workload(src), "cdc.y") is Outcome.OK
    assert (4, "w", "n4b", "B4b") in _rows(any_db, table)


def test_unappliable_changes_are_dead_lettered_and_the_rest_applied(any_db, make_applier):
    table = unique_table("ap")
    dead = unique_table("dl")
    _create(any_db, table)
    w = make_applier(any_db, apply_position_table=unique_table("pos"), dead_letter_table=dead)
    src = f"public.{table}"
    chunk = b"".join(
        [
            change("c", src, None, {"a": 1, "b": "x", "v": "ok", "big": "B"}, "0/10", 0),
            change("d", src, None, None, "0/10", 1),  # no before: key unknown
            change("c", "public.bad\x00name", None, {"a": 1}, "0/10", 2),  # unquotable table
            change("c", src, None, {"a": 2, "b": "y", "nope": 1}, "0/10", 3),  # unknown column
            change("c", src, None, {"a": "abc", "b": "z"}, "0/10", 4),  # not an int
            change("c", src, None, {"a": 5, "b": "q", "v": "ok5", "big": None}, "0/10", 5),
            change("u", src, None, {"a": 9, "b": "none", "v": "t", "big": TOAST}, "0/10", 6),
        ]
    )
    assert w.write(chunk, "cdc.z") is Outcome.OK
    assert _rows(any_db, table) == [(1, "x", "ok", "B"), (5, "q", "ok5", None)]
    errors = sorted(
        r[0] for r in any_db.query(f"SELECT {qt(any_db, 'error')} FROM {qt(any_db, dead)}")
    )
    assert len(errors) == 5, errors
    text = " | ".join(errors)
    assert "lacks key column(s) a, b" in text
    assert "bad\\x00name" in text or "bad\x00name" in text
    assert "has no column nope" in text
    assert "is not in table" in text and "unchanged TOAST" in text


def test_a_missing_table_is_created_from_the_first_change(any_db, make_applier):
    table = unique_table("ac")
    w = make_applier(any_db, apply_position_table=unique_table("pos"), unique_key="id")
    src = f"public.{table}"
    chunk = b"".join(
        [
            change("c", src, None, {"id": 1, "name": "one", "n": 1.5, "ok": True}, "0/10", 0),
            change("c", src, None, {"id": 2, "name": "two", "n": 2.5, "ok": False}, "0/10", 1),
            change("u", src, {"id": 1}, {"id": 3, "name": "three", "n": 3.5, "ok": True}, "0/20"),
        ]
    )
    assert w.write(chunk, "cdc.c") is Outcome.OK
    got = any_db.query(
        f"SELECT {qt(any_db, 'id')}, {qt(any_db, 'name')} FROM {qt(any_db, table)} ORDER BY 1"
    )
    assert [tuple(r) for r in got] == [(2, "two"), (3, "three")]


def test_without_a_key_the_table_is_not_created_and_its_changes_are_dead_lettered(
    any_db, make_applier
):
    table = unique_table("nk")
    dead = unique_table("dl")
    w = make_applier(any_db, apply_position_table=unique_table("pos"), dead_letter_table=dead)
    assert w.write(change("c", f"public.{table}", None, {"id": 1}, "0/1"), "t") is Outcome.OK
    (error,) = any_db.query(f"SELECT {qt(any_db, 'error')} FROM {qt(any_db, dead)}")[0]
    assert "does not exist and cannot be created: set unique_key" in error


@pytest.mark.parametrize("tag", ["app.orders"])
def test_table_per_tag_with_prefix_and_map(any_db, make_applier, tag):
    table = unique_table("tm")
    w = make_applier(
        any_db,
        apply_position_table=unique_table("pos"),
        table="$TAG[1]",
        table_map=f"orders={table}",
        unique_key="id",
    )
    assert w.write(change("c", "public.x", None, {"id": 7}, "0/1"), tag) is Outcome.OK
    assert any_db.query(f"SELECT {qt(any_db, 'id')} FROM {qt(any_db, table)}") == [(7,)]
