"""Apply mode keeps each table's order when Fluent Bit flushes a newer chunk first.

in_sql numbers each table's changes (``seq``); a change that skips a number is parked
(flbsql.output.order) until the older ones are applied. Without that, the older chunk
would be skipped as a replay: with ``Order._early`` returning False every test here
that carries numbers fails (seen: 9 of the first 12 cases, on all three databases);
with ``Applier.write`` reading once, the test of more than one read fails.
"""

from __future__ import annotations

import logging
import time

from flbsql.outcome import Outcome
from tests.behaviour.apply_helpers import change
from tests.behaviour.output_helpers import qt
from tests.fix_db import unique_table


def _create(db, table):
    db.execute(
        f"CREATE TABLE {qt(db, table)} ({qt(db, 'a')} INT NOT NULL PRIMARY KEY, "
        f"{qt(db, 'v')} VARCHAR(40))"
    )


def _rows(db, table):
    return [tuple(r) for r in db.query(f"SELECT * FROM {qt(db, table)} ORDER BY 1")]


def _parked(db, parked):
    return db.query(f"SELECT COUNT(*) FROM {qt(db, parked)}")[0][0]


def _chunks(src):
    """Four chunks of one table, in the order in_sql made them (seq 1, 2-4, 5-7, 8)."""
    first = change("c", src, None, {"a": 1, "v": "v0"}, "0/50", 0, seq=1)
    older = b"".join(
        [
            change("u", src, None, {"a": 1, "v": "v1"}, "0/100", 0, seq=2),
            change("c", src, None, {"a": 2, "v": "w1"}, "0/100", 1, seq=3),
            change("c", src, None, {"a": 3, "v": "x1"}, "0/110", 0, seq=4),
        ]
    )
    newer = b"".join(
        [
            change("u", src, None, {"a": 1, "v": "v2"}, "0/200", 0, seq=5),
            change("d", src, {"a": 2}, None, "0/200", 1, seq=6),
            change("c", src, None, {"a": 4, "v": "y2"}, "0/210", 0, seq=7),
        ]
    )
    last = change("u", src, None, {"a": 3, "v": "x3"}, "0/300", 0, seq=8)
    return first, older, newer, last


IN_ORDER = [(1, "v2"), (3, "x3"), (4, "y2")]


def test_a_newer_chunk_waits_for_the_older_one_and_the_target_ends_as_in_order(
    any_db, make_applier
):
    table, parked, pos = unique_table("ord"), unique_table("park"), unique_table("pos")
    _create(any_db, table)
    w = make_applier(any_db, apply_position_table=pos, apply_parked_table=parked)
    first, older, newer, last = _chunks(f"public.{table}")
    assert w.write(first, "cdc") is Outcome.OK
    assert w.write(newer, "cdc") is Outcome.OK  # Fluent Bit flushed it before `older`
    assert _rows(any_db, table) == [(1, "v0")]  # nothing of it applied yet
    assert _parked(any_db, parked) == 3
    assert w.write(last, "cdc") is Outcome.OK  # still behind the gap: parked too
    assert _parked(any_db, parked) == 4
    assert w.write(newer + last, "cdc") is Outcome.OK  # flushed again: parked once
    assert _parked(any_db, parked) == 4
    assert w.write(older, "cdc") is Outcome.OK  # fills the gap: all four apply, in order
    assert _rows(any_db, table) == IN_ORDER
    assert _parked(any_db, parked) == 0
    assert w.write(newer, "cdc") is Outcome.OK  # a replay of it changes nothing
    assert w.write(older, "cdc") is Outcome.OK
    assert _rows(any_db, table) == IN_ORDER
    assert _parked(any_db, parked) == 0


def test_parked_changes_wait_across_a_restart(any_db, make_applier):
    table, parked, pos = unique_table("ord"), unique_table("park"), unique_table("pos")
    _create(any_db, table)
    first, older, newer, last = _chunks(f"public.{table}")
    before = make_applier(any_db, apply_position_table=pos, apply_parked_table=parked)
    assert before.write(first + newer, "cdc") is Outcome.OK
    assert before.write(last, "cdc") is Outcome.OK
    assert _parked(any_db, parked) == 4
    after = make_applier(any_db, apply_position_table=pos, apply_parked_table=parked)
    assert after.write(older, "cdc") is Outcome.OK
    assert _rows(any_db, table) == IN_ORDER
    assert _parked(any_db, parked) == 0


def test_a_gap_never_filled_is_given_up_after_apply_gap_wait_with_one_error(
    any_db, make_applier, caplog
):
    table, parked, pos = unique_table("ord"), unique_table("park"), unique_table("pos")
    other = unique_table("ord")
    _create(any_db, table)
    _create(any_db, other)
    first, _, newer, _ = _chunks(f"public.{table}")
    w = make_applier(any_db, apply_position_table=pos, apply_parked_table=parked, apply_gap_wait=1)
    assert w.write(first + newer, "cdc") is Outcome.OK
    assert _parked(any_db, parked) == 3
    time.sleep(1.2)
    with caplog.at_level(logging.ERROR):  # a flush of another table applies the expired ones
        assert w.write(change("c", f"public.{other}", None, {"a": 9}, "0/400", seq=1), "cdc") is (
            Outcome.OK
        )
    assert _rows(any_db, table) == [(1, "v2"), (4, "y2")]
    assert _parked(any_db, parked) == 0
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(lines) == 1
    assert f"table public.{table} (source cdc): changes 2 to 4 never arrived" in lines[0]


def test_changes_without_seq_keep_the_position_check_only(any_db, make_applier):
    """Debezium events and an older in_sql carry no seq: applied as they come."""
    table, parked, pos = unique_table("ord"), unique_table("park"), unique_table("pos")
    _create(any_db, table)
    src = f"public.{table}"
    w = make_applier(any_db, apply_position_table=pos, apply_parked_table=parked)
    assert w.write(change("c", src, None, {"a": 1, "v": "a"}, "0/50"), "cdc") is Outcome.OK
    assert w.write(change("u", src, None, {"a": 1, "v": "c"}, "0/300"), "cdc") is Outcome.OK
    assert w.write(change("u", src, None, {"a": 1, "v": "b"}, "0/200"), "cdc") is Outcome.OK
    assert _rows(any_db, table) == [(1, "c")]  # the older one is taken for a replay
    assert _parked(any_db, parked) == 0


def test_more_parked_changes_than_one_read_takes_are_all_applied(any_db, make_applier, monkeypatch):
    """The flush that fills the gap goes on reading, so nothing waits for another flush."""
    import flbsql.output.order
    import flbsql.output.parked

    monkeypatch.setattr(flbsql.output.parked, "TAKE", 2)
    monkeypatch.setattr(flbsql.output.order, "TAKE", 2)
    table, parked, pos = unique_table("ord"), unique_table("park"), unique_table("pos")
    _create(any_db, table)
    w = make_applier(any_db, apply_position_table=pos, apply_parked_table=parked)
    first, older, newer, last = _chunks(f"public.{table}")
    assert w.write(first + newer, "cdc") is Outcome.OK
    assert w.write(last, "cdc") is Outcome.OK
    assert _parked(any_db, parked) == 4
    assert w.write(older, "cdc") is Outcome.OK
    assert _rows(any_db, table) == IN_ORDER
    assert _parked(any_db, parked) == 0


def test_a_table_with_nothing_applied_waits_for_its_first_change(any_db, make_applier):
    """Snapshot rows carry no number; the first change of the stream is number 1."""
    table, parked, pos = unique_table("ord"), unique_table("park"), unique_table("pos")
    _create(any_db, table)
    src = f"public.{table}"
    rows = b"".join(
        change("r", src, None, {"a": a, "v": "s"}, "0/10", a - 1, True) for a in (1, 2, 3)
    )
    one = change("u", src, None, {"a": 1, "v": "one"}, "0/20", 0, seq=1)
    two = change("u", src, None, {"a": 1, "v": "two"}, "0/30", 0, seq=2)
    w = make_applier(any_db, apply_position_table=pos, apply_parked_table=parked)
    assert w.write(rows, "cdc") is Outcome.OK
    assert w.write(two, "cdc") is Outcome.OK  # before number 1: waits
    assert _rows(any_db, table) == [(1, "s"), (2, "s"), (3, "s")]
    assert _parked(any_db, parked) == 1
    assert w.write(one, "cdc") is Outcome.OK
    assert _rows(any_db, table) == [(1, "two"), (2, "s"), (3, "s")]
    assert _parked(any_db, parked) == 0
    assert w.write(rows + one, "cdc") is Outcome.OK  # replayed: nothing changes
    assert _rows(any_db, table) == [(1, "two"), (2, "s"), (3, "s")]
