"""The CDC record encoder: byte-identical to msgpack.packb of the same record."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from flbsql.cdc.record import FIELDS, ChangeEncoder, record
from flbsql.events.codec import header

TXN: dict[str, Any] = {
    "lsn": "16/B374D848",
    "xid": 1234,
    "commit_time": "2024-05-01T12:00:00.123456+00:00",
}


def _expected(sec, nsec, op, table, overlap, pos, seq, before, after):
    body = record(
        op,
        table,
        TXN["lsn"],
        TXN["xid"],
        TXN["commit_time"],
        False,
        overlap,
        pos,
        seq,
        before,
        after,
    )
    return header(sec, nsec) + msgpack.packb(body, use_bin_type=True)


@pytest.mark.parametrize("overlap", [False, True])
def test_changes_are_byte_identical_to_packb(overlap):
    enc = ChangeEncoder()
    enc.begin(1_714_564_800, 123_456_000, TXN["lsn"], TXN["xid"], TXN["commit_time"], overlap)
    changes: list[tuple[str, str, int, Any, Any]] = [
        ("c", "public.t", 0, None, {"id": 1, "v": "a", "b": b"\x00\xff", "f": 1.5}),
        ("u", "public.t", 1, {"id": 1}, {"id": 1, "v": "é" * 40, "n": None}),
        ("c", "public.t", 2, None, {"id": 2, "j": {"x": [1, 2, {"y": True}]}}),
        ("d", "public.t", 3, {"id": 2}, None),
        ("c", "s.other", 70000, None, {"big": 2**40, "neg": -5}),
        ("t", "public.t", 2**33, None, None),
    ]
    for seq, (op, table, pos, before, after) in enumerate(changes, 1):
        got = enc.change(op, table, pos, seq * 1000, before, after)
        expected = _expected(
            1_714_564_800, 123_456_000, op, table, overlap, pos, seq * 1000, before, after
        )
        assert got == expected
        assert msgpack.unpackb(got[len(header(0, 0)) :]) == record(
            op,
            table,
            TXN["lsn"],
            TXN["xid"],
            TXN["commit_time"],
            False,
            overlap,
            pos,
            seq * 1000,
            before,
            after,
        )


def test_a_new_transaction_replaces_what_the_last_one_shared():
    enc = ChangeEncoder()
    enc.begin(1, 2, "0/1", 7, "t1", True)
    enc.change("c", "public.t", 0, 1, None, {"id": 1})
    enc.begin(3, 4, "0/2", 8, "t2", False)
    got = enc.change("c", "public.t", 0, 2, None, {"id": 2})
    body = record("c", "public.t", "0/2", 8, "t2", False, False, 0, 2, None, {"id": 2})
    assert got == header(3, 4) + msgpack.packb(body)


def test_record_keys_follow_fields():
    assert tuple(record("r", "t", "0/1", None, None, True, False, 0, None, None, {})) == FIELDS
