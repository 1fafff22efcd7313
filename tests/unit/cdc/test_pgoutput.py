"""pgoutput messages -> record bodies (no database; messages built by hand)."""

from __future__ import annotations

import struct
from typing import Any

from flbsql.cdc import format_lsn, parse_lsn
from flbsql.cdc.pgoutput import PgOutputDecoder, pg_time
from flbsql.cdc.types import TypeInfo


def cstr(s: str) -> bytes:
    return s.encode() + b"\x00"


def relation(
    oid: int,
    cols: list[tuple[str, int, bool]],
    schema: str = "public",
    name: str = "t",
    ident: bytes = b"d",
) -> bytes:
    out = b"R" + struct.pack(">I", oid) + cstr(schema) + cstr(name) + ident
    out += struct.pack(">h", len(cols))
    for col, typ, key in cols:
        out += bytes([1 if key else 0]) + cstr(col) + struct.pack(">Ii", typ, -1)
    return out


def tup(*values: Any) -> bytes:
    out = struct.pack(">h", len(values))
    for v in values:
        if v is None:
            out += b"n"
        elif v == "<u>":
            out += b"u"
        else:
            raw = str(v).encode()
            out += b"t" + struct.pack(">I", len(raw)) + raw
    return out


def begin(final: int, micros: int, xid: int) -> bytes:
    return b"B" + struct.pack(">QqI", final, micros, xid)


def decoder(**kw: Any) -> PgOutputDecoder:
    catalog = {25: TypeInfo(25, "b", 0, 0, ",", "S")}
    dec = PgOutputDecoder(lambda oids: catalog, **kw)
    dec.relation(relation(16384, [("id", 23, True), ("v", 25, False), ("big", 25, False)]))
    dec.begin(begin(0x16B3748, 0, 99))
    return dec


def test_insert_update_delete_truncate() -> None:
    dec = decoder()
    ins = dec.change(b"I" + struct.pack(">I", 16384) + b"N" + tup(1, "a", None))
    assert ins == [
        {
            "op": "c",
            "table": "public.t",
            "lsn": "0/16B3748",
            "xid": 99,
            "commit_time": "2000-01-01T00:00:00+00:00",
            "snapshot": False,
            "overlap": False,
            "pos": 0,
            "before": None,
            "after": {"id": 1, "v": "a", "big": None},
        }
    ]
    upd = dec.change(
        b"U" + struct.pack(">I", 16384) + b"K" + tup(1, None, None) + b"N" + tup(2, "b", "<u>")
    )[0]
    assert (upd["op"], upd["pos"], upd["before"]) == ("u", 1, {"id": 1})
    assert upd["after"] == {"id": 2, "v": "b", "big": "__unchanged_toast__"}
    full = dec.change(
        b"U" + struct.pack(">I", 16384) + b"O" + tup(2, "b", "LONG") + b"N" + tup(2, "c", "<u>")
    )[0]
    assert full["before"] == {"id": 2, "v": "b", "big": "LONG"}
    assert full["after"] == {"id": 2, "v": "c", "big": "LONG"}
    dele = dec.change(b"D" + struct.pack(">I", 16384) + b"K" + tup(2, None, None))[0]
    assert (dele["op"], dele["before"], dele["after"]) == ("d", {"id": 2}, None)
    trunc = dec.change(b"T" + struct.pack(">IB", 2, 0) + struct.pack(">II", 16384, 777))
    assert [(t["op"], t["table"], t["pos"]) for t in trunc] == [("t", "public.t", 4)]


def test_marker_and_filter_and_relation_change() -> None:
    dec = decoder(toast_marker="<T>", tables=frozenset({"public.t"}))
    dec.relation(relation(5, [("x", 23, True)], name="other"))
    assert dec.change(b"I" + struct.pack(">I", 5) + b"N" + tup(1)) == []
    upd = dec.change(b"U" + struct.pack(">I", 16384) + b"N" + tup(1, "v", "<u>"))[0]
    assert upd["after"]["big"] == "<T>" and upd["pos"] == 1  # filtered change kept its pos
    dec.relation(relation(16384, [("id", 23, True), ("n", 23, False)]))  # after DDL
    ins = dec.change(b"I" + struct.pack(">I", 16384) + b"N" + tup(5, 6))[0]
    assert ins["after"] == {"id": 5, "n": 6}


def test_commit_message_and_time() -> None:
    commit = b"C" + struct.pack(">BQQq", 0, 100, 200, 0)
    assert PgOutputDecoder.commit(commit) == 200
    msg = (
        b"M"
        + b"\x00"
        + struct.pack(">Q", 300)
        + cstr("flbsql_heartbeat")
        + struct.pack(">I", 3)
        + b"1.5"
    )
    assert PgOutputDecoder.message(msg) == (False, 300, "flbsql_heartbeat", b"1.5")
    assert pg_time(86_400_000_000 + 1) == "2000-01-02T00:00:00.000001+00:00"
    assert parse_lsn(format_lsn(0x16_B374D848)) == 0x16_B374D848
    assert format_lsn(0x16_B374D848) == "16/B374D848"
