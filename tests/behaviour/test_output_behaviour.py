"""Output behaviour, one body per behaviour, on every configured database."""

from __future__ import annotations

import datetime as dt

import pytest

from flbsql.dialects import get_dialect
from flbsql.outcome import Outcome
from tests.behaviour.output_helpers import (
    as_json,
    count,
    mixed_chunk,
    poison_chunk,
    qt,
)
from tests.fix_db import unique_table
from tests.fix_host import event_v2


def _utc(value):
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value


def test_default_shape_both_formats(any_db, make_writer):
    table = unique_table("out")
    w = make_writer(any_db, table)
    assert w.write(mixed_chunk(), "app.log") is Outcome.OK
    rows = any_db.query(
        f"SELECT {qt(any_db, 'tag')}, {qt(any_db, 'time')}, "
        f"{qt(any_db, 'data')} FROM {qt(any_db, table)}"
    )
    assert len(rows) == 4  # the group markers are not records
    by_msg = {as_json(r[2])["m"]: r for r in rows}
    assert set(by_msg) == {"v2", "classic-int", "classic-float", "classic-eventtime"}
    assert all(r[0] == "app.log" for r in rows)
    v2 = by_msg["v2"]
    assert as_json(v2[2]) == {"m": "v2", "nested": {"a": [1, {"b": None}]}, "raw": "AAE="}
    assert _utc(v2[1]) == dt.datetime(2023, 11, 14, 22, 13, 20, 250000, dt.timezone.utc)
    assert _utc(by_msg["classic-float"][1]).microsecond == 500000
    assert as_json(by_msg["classic-eventtime"][2])["ext"] == {"ext": 5, "data": "eHk="}


def test_column_mapping_overflow_and_zone(any_db, make_writer):
    table = unique_table("map")
    w = make_writer(
        any_db,
        table,
        columns="uid=user.id:int,level=level:string(16),ok=ok:bool,lat=latency:float",
        time_zone="Europe/Paris",
        time_column="ts",
        tag_column="none",
        json_column="rest",
    )
    body = {
        "user": {"id": "42", "name": "ann"},
        "level": "warn",
        "ok": 1,
        "latency": 1.5,
        "msg": "hi",
    }
    assert w.write(event_v2(body, sec=1_700_000_000), "t") is Outcome.OK
    (row,) = any_db.query(
        f"SELECT {qt(any_db, 'uid')}, {qt(any_db, 'level')}, "
        f"{qt(any_db, 'ok')}, {qt(any_db, 'lat')}, {qt(any_db, 'rest')}, "
        f"{qt(any_db, 'ts')} FROM {qt(any_db, table)}"
    )
    assert row[0] == 42 and row[1] == "warn" and bool(row[2]) is True and row[3] == 1.5
    assert as_json(row[4]) == {"user": {"name": "ann"}, "msg": "hi"}
    ts = row[5]
    if isinstance(ts, str):
        ts = dt.datetime.fromisoformat(ts)
    if ts.tzinfo is None:  # columns without a zone hold Paris wall time
        assert ts == dt.datetime(2023, 11, 14, 23, 13, 20)
    else:
        assert ts == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.timezone.utc)


@pytest.mark.chaos
def test_poison_chunk_dead_letters_and_idempotent_replay(any_db, make_writer):
    chunk, poison_ids = poison_chunk()
    nul_is_poison = not get_dialect(any_db.dialect).caps.text_nul  # PostgreSQL's text
    expected_bad = 7 if nul_is_poison else 6
    mapping = "id=id:string(64),status=status:int,host=host:string,message=message:text"
    for idempotent in (False, True):
        table, dead = unique_table("poison"), unique_table("dlq")
        props = {"columns": mapping, "dead_letter_table": dead}
        if idempotent:
            props["unique_key"] = "id"
        w = make_writer(any_db, table, **props)
        assert w.write(chunk, "app") is Outcome.OK
        assert count(any_db, table) == 10_000 - expected_bad
        errors = any_db.query(
            f"SELECT {qt(any_db, 'error')}, {qt(any_db, 'record')} FROM {qt(any_db, dead)}"
        )
        assert len(errors) == expected_bad
        stored = {r[0] for r in any_db.query(f"SELECT {qt(any_db, 'id')} FROM {qt(any_db, table)}")}
        assert not stored & poison_ids - ({"id-06666"} if not nul_is_poison else set())
        assert all(err for err, _ in errors)
        assert any("status" in err for err, _ in errors)
        if idempotent:  # a Fluent Bit retry of the same chunk adds no row, no dead letter
            again = make_writer(any_db, table, **props)
            assert again.write(chunk, "app") is Outcome.OK
            assert count(any_db, table) == 10_000 - expected_bad
            assert count(any_db, dead) == expected_bad


def test_auto_add_columns(any_db, make_writer):
    table = unique_table("grow")
    make_writer(any_db, table).write(event_v2({"a": 1}), "t")
    w = make_writer(any_db, table, columns="a=a:int", auto_add_columns=True)
    assert w.write(event_v2({"a": 7, "b": 2}), "t") is Outcome.OK
    assert any_db.query(
        f"SELECT {qt(any_db, 'a')} FROM {qt(any_db, table)} WHERE {qt(any_db, 'a')} IS NOT NULL"
    ) == [(7,)]


def test_missing_column_without_auto_add_fails_the_flush(any_db, make_writer):
    table = unique_table("fixed")
    make_writer(any_db, table).write(event_v2({"a": 1}), "t")
    w = make_writer(any_db, table, columns="a=a:int")
    with pytest.raises(Exception, match="no column a"):
        w.write(event_v2({"a": 7}), "t")


def test_auto_created_text_columns_are_never_narrower_than_the_data(any_db, make_writer):
    # tag and unique_key columns used to be VARCHAR(255) everywhere: every longer
    # value was rejected. Now: the dialect's text, and key_text in a key index.
    table = unique_table("wide")
    tag = "t." + "x" * 400
    w = make_writer(any_db, table, columns="id=id", unique_key="id")
    key_max = {"mysql": 768, "mssql": 450, "oracle": 1000}.get(any_db.dialect, 5000)
    ids = ["a" * 300, "b" * key_max]
    chunk = b"".join(event_v2({"id": i, "n": 1}) for i in ids)
    assert w.write(chunk, tag) is Outcome.OK
    assert w.write(chunk, tag) is Outcome.OK  # replayed: upserted, not duplicated
    got = any_db.query(f"SELECT {qt(any_db, 'id')}, {qt(any_db, 'tag')} FROM {qt(any_db, table)}")
    assert sorted(r[0] for r in got) == ids
    assert {r[1] for r in got} == {tag}


def test_a_dead_letter_line_names_the_table_the_record_and_its_key(any_db, make_writer, caplog):
    chunk, _ = poison_chunk()
    table, dead = unique_table("named"), unique_table("dlq")
    w = make_writer(
        any_db,
        table,
        columns="id=id:string(64),status=status:int,host=host:string,message=message:text",
        dead_letter_table=dead,
        unique_key="id",
    )
    assert w.write(chunk, "app") is Outcome.OK
    lines = [r.getMessage() for r in caplog.records if "dead-lettered to" in r.getMessage()]
    # poison record 11 is the 12th of 10,000: its line says so, once, with its key
    [line] = [x for x in lines if "id='id-00011'" in x]
    assert line.startswith(f"record 12 of 10000 (tag app, id='id-00011') rejected by table {table}")
    assert f"dead-lettered to {dead}: " in line and "status" in line
    assert "\n" not in line and " line " not in line and "stage" not in line.lower()
