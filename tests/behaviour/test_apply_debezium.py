"""A file of Debezium change events (PostgreSQL connector, JSON converter with schemas)
applied by out_sql gives the same table as the same changes in in_sql's CDC format."""

from __future__ import annotations

import decimal
import json
import pathlib

from flbsql.outcome import Outcome
from tests.behaviour.apply_helpers import TOAST, change
from tests.behaviour.output_helpers import qt
from tests.fix_db import unique_table
from tests.fix_host import event_v2

EVENTS = pathlib.Path(__file__).parent.parent / "data" / "debezium_customers.jsonl"


def _create(db, table):
    ts = "DATETIME(6)" if db.dialect == "mysql" else "TIMESTAMP"
    db.execute(
        f"CREATE TABLE {qt(db, table)} ({qt(db, 'id')} INT PRIMARY KEY, "
        f"{qt(db, 'first_name')} VARCHAR(100), {qt(db, 'email')} VARCHAR(200), "
        f"{qt(db, 'balance')} DECIMAL(10, 2), {qt(db, 'created')} {ts}, {qt(db, 'profile')} TEXT)"
    )


def _rows(db, table):
    cols = ", ".join(
        qt(db, c) for c in ("id", "first_name", "email", "balance", "created", "profile")
    )
    out = []
    for r in db.query(f"SELECT {cols} FROM {qt(db, table)} ORDER BY 1"):
        created = str(r[4]).replace("T", " ")[:19]
        out.append((r[0], r[1], r[2], decimal.Decimal(str(r[3])), created, json.loads(r[5])))
    return out


EXPECTED = [
    (
        1001,
        "Sally",
        "sally@acme.com",
        decimal.Decimal("20.00"),
        "2024-03-01 10:00:00",
        {"tier": "gold"},
    ),
    (
        1004,
        "Anne Marie",
        "annek@noanswer.org",
        decimal.Decimal("99.99"),
        "2024-03-01 11:00:00",
        {"tier": "gold", "tags": ["new"]},
    ),
    (
        1012,
        "George",
        "gbailey@foobar.com",
        decimal.Decimal("0.00"),
        "2024-03-01 10:05:00",
        {"tier": "silver"},
    ),
]


def _cdc_chunk(src):
    """The same changes as in_sql CDC records (what in_sql emits for that history)."""

    def row(i, name, email, bal, created, profile):
        return {
            "id": i,
            "first_name": name,
            "email": email,
            "balance": bal,
            "created": created,
            "profile": profile,
        }

    a = row(
        1001, "Sally", "sally.thomas@acme.com", "12.50", "2024-03-01T10:00:00", {"tier": "gold"}
    )
    b = row(1002, "George", "gbailey@foobar.com", "0.00", "2024-03-01T10:05:00", {"tier": "silver"})
    c = row(1003, "Edward", "ed@walker.com", "-3.75", "2024-03-01T10:10:00", {})
    d = row(
        1004,
        "Anne",
        "annek@noanswer.org",
        "99.99",
        "2024-03-01T11:00:00",
        {"tier": "gold", "tags": ["new"]},
    )
    return b"".join(
        [
            change("r", src, None, a, "0/16E8E18", 0, True),
            change("r", src, None, b, "0/16E8E18", 1, True),
            change("r", src, None, c, "0/16E8E18", 2, True),
            change("c", src, None, d, "0/16E9138", 0),
            change(
                "u", src, None, {**a, "email": "sally@acme.com", "balance": "20.00"}, "0/16E9238"
            ),
            change("u", src, {"id": 1002}, {**b, "id": 1012}, "0/16E93D0"),
            change("d", src, {"id": 1003}, None, "0/16E9560"),
            change(
                "u", src, None, {**d, "first_name": "Anne Marie", "profile": TOAST}, "0/16E9880"
            ),
        ]
    )


def test_a_debezium_event_file_gives_the_same_table_as_cdc_records(any_db, make_applier):
    dbz_table, cdc_table = unique_table("dbz"), unique_table("cdc")
    _create(any_db, dbz_table)
    _create(any_db, cdc_table)
    lines = EVENTS.read_text().splitlines()
    chunk = b"".join(event_v2(json.loads(line)) for line in lines)  # what a json parser gives
    w = make_applier(
        any_db,
        apply="debezium",
        apply_position_table=unique_table("pos"),
        table_map=f"inventory.customers={dbz_table}",
    )
    assert w.write(chunk, "kafka.dbserver1.inventory.customers") is Outcome.OK
    assert _rows(any_db, dbz_table) == EXPECTED
    assert w.write(chunk, "kafka.dbserver1.inventory.customers") is Outcome.OK  # replayed
    assert _rows(any_db, dbz_table) == EXPECTED
    positions = any_db.query(f"SELECT * FROM {qt(any_db, w.cfg.apply_position_table)}")
    assert [(p[0], p[1]) for p in positions] == [("dbserver1", "inventory.customers")]
    c = make_applier(any_db, apply_position_table=unique_table("pos"))
    assert c.write(_cdc_chunk(f"public.{cdc_table}"), "cdc") is Outcome.OK
    assert _rows(any_db, cdc_table) == _rows(any_db, dbz_table)


def test_unwrapped_and_string_payload_events(any_db, make_applier):
    """Without the schema part (schemas.enable=false), and a payload that is JSON text."""
    table = unique_table("dbz")
    _create(any_db, table)
    src = {
        "name": "srv",
        "schema": "inventory",
        "table": "customers",
        "lsn": 10,
        "snapshot": "false",
    }
    plain = {
        "id": 1,
        "first_name": "A",
        "email": None,
        "balance": "1.50",
        "created": None,
        "profile": "{}",
    }
    events = [
        event_v2({"op": "c", "before": None, "after": plain, "source": src}),
        event_v2(
            {
                "payload": json.dumps(
                    {
                        "op": "u",
                        "before": None,
                        "after": {**plain, "first_name": "B"},
                        "source": {**src, "lsn": 11},
                    }
                )
            }
        ),
        event_v2(
            {"op": "c", "before": None, "after": {**plain, "id": 2}, "source": {**src, "lsn": 12}}
        ),
        event_v2({"op": "d", "before": {"id": 2}, "after": None, "source": {**src, "lsn": 13}}),
    ]
    w = make_applier(
        any_db,
        apply="auto",
        apply_position_table=unique_table("pos"),
        table_map=f"inventory.customers={table}",
    )
    assert w.write(b"".join(events), "dbz") is Outcome.OK
    got = any_db.query(
        f"SELECT {qt(any_db, 'id')}, {qt(any_db, 'first_name')} FROM {qt(any_db, table)}"
    )
    assert [tuple(r) for r in got] == [(1, "B")]
