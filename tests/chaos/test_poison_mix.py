"""Poison records mixed with good ones, through the test host, on every local dialect.

``CHUNKS`` chunks of ``PER_CHUNK`` records; in each chunk ``len(KINDS)`` records
are poison, one of each kind, at positions that shift from chunk to chunk:

* a wrong type for a typed column (``status`` is an int column, the value "abc");
* a value longer than its VARCHAR (``host`` is ``string(16)``): refused by the
  server on PostgreSQL and MariaDB, by the mapper on SQLite;
* a NUL in a text column (poison on PostgreSQL only; the others store it);
* invalid UTF-8 in a text column, and in a key that goes to the JSON column;
* a body that is not a map;
* bad timestamps: past year 9999, a string, a negative number.

The output runs in idempotent mode (``unique_key id``) with a ``dead_letter_table``.
Every flush must return FLB_OK (host stats), every good record must be in the
table exactly once, every poison record in the dead-letter table with an error
naming its column (or saying why the entry is not an event). Then the whole feed
is delivered again: the table gains no row. The dead-letter table has no key, so
the replay dead-letters every poison record a second time; the test pins that.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

import msgpack
import pytest

from flbsql.dialects import get_dialect
from tests.behaviour.output_helpers import qt
from tests.fix_db import unique_table
from tests.fix_host import event_classic, event_time, event_v2, props, write_frames

pytestmark = [pytest.mark.chaos, pytest.mark.shim]

CHUNKS = 12
PER_CHUNK = 150
MAPPING = "id=id:string(64),status=status:int,host=host:string(16),message=message:text"
_BAD_UTF8 = b"\xffbad\xfe"


def _body(rid: str) -> dict[str, Any]:
    return {"id": rid, "status": 200, "host": "web-1", "message": f"line {rid}", "n": 1}


def _with(key: str, value: Any) -> Callable[[str], bytes]:
    def build(rid: str) -> bytes:
        return event_v2({**_body(rid), key: value}, sec=1_700_000_000)

    return build


def _bad_utf8(key: str) -> Callable[[str], bytes]:
    def build(rid: str) -> bytes:
        packed = event_v2({**_body(rid), key: "PLACEHOLDER"}, sec=1_700_000_000)
        return packed.replace(b"\xabPLACEHOLDER", bytes([0xA0 | len(_BAD_UTF8)]) + _BAD_UTF8)

    return build


# kind -> (builder, what the error must name: a column, or the text of a bad entry)
KINDS: dict[str, tuple[Callable[[str], bytes], str]] = {
    "wrong_type": (_with("status", "abc"), "'status'"),
    "over_long": (_with("host", "h" * 40), "column 'host'"),
    "nul_text": (_with("message", "nul \x00 inside"), "'message'"),
    "bad_utf8_text": (_bad_utf8("message"), "'message'"),
    "bad_utf8_json": (_bad_utf8("extra"), "'data'"),
    "non_map": (
        lambda rid: msgpack.packb([[event_time(1_700_000_000), {}], f"poison {rid}"]),
        "not a Fluent Bit event",
    ),
    "ts_past_9999": (lambda rid: event_classic(_body(rid), ts=10**12), "'time'"),
    "ts_string": (lambda rid: msgpack.packb(["yesterday", _body(rid)]), "not a Fluent Bit event"),
    "ts_negative": (lambda rid: event_classic(_body(rid), ts=-5), "not a Fluent Bit event"),
}


def _poison_kinds(dialect: str) -> set[str]:
    """Records the dialect refuses: U+0000 in text only where text cannot hold it."""
    return set(KINDS) - (set() if not get_dialect(dialect).caps.text_nul else {"nul_text"})


def _feed(tmp_path: Any) -> tuple[Any, dict[str, str]]:
    """The frames file, and id -> kind ("good" or a poison kind) of every record."""
    kinds = list(KINDS)
    expected: dict[str, str] = {}
    chunks = []
    for c in range(CHUNKS):
        slots = {(7 + 13 * j + c) % PER_CHUNK: kinds[j] for j in range(len(kinds))}
        parts = []
        for i in range(PER_CHUNK):
            rid = f"r{c:03d}-{i:03d}"
            kind = slots.get(i, "good")
            expected[rid] = kind
            if kind == "good":
                parts.append(event_v2(_body(rid), sec=1_700_000_000 + i, nsec=1000 * c))
            else:
                parts.append(KINDS[kind][0](rid))
        chunks.append(b"".join(parts))
    return write_frames(tmp_path / "frames.bin", chunks), expected


def _dead_id(record: str) -> str:
    """The id of a dead-lettered record (JSON, or base64 msgpack of a non-event)."""
    doc = json.loads(record)
    if "msgpack_base64" in doc:
        entry = msgpack.unpackb(
            base64.b64decode(doc["msgpack_base64"]), raw=False, strict_map_key=False
        )
        body = entry[1]
        return str(body["id"]) if isinstance(body, dict) else str(body).removeprefix("poison ")
    return str(doc["id"])


def _names(error: str, what: str) -> bool:
    """``what`` is in the error; ``column 'c'`` also matches PostgreSQL's COPY context."""
    m = re.fullmatch(r"column '(\w+)'", what)
    return what in error or (
        m is not None and re.search(rf"CONTEXT: .*, column {m.group(1)}\b", error) is not None
    )


def _run(host: Any, db: Any, frames: Any, table: str, dead: str) -> dict[str, Any]:
    r = host.run(
        "-i",
        "feed",
        *props(file=frames),
        "-o",
        "sql",
        *props(
            url=db.url,
            table=table,
            columns=MAPPING,
            unique_key="id",
            dead_letter_table=dead,
            retry_limit=1,
        ),
    )
    assert r.returncode == 0, r.log[-3000:]
    stats: dict[str, Any] = r.stats
    return stats


def test_poison_is_dead_lettered_good_rows_land_once_and_replay_adds_nothing(
    host, any_db, tmp_path
):
    frames, expected = _feed(tmp_path)
    poison = _poison_kinds(any_db.dialect)
    good = {rid for rid, kind in expected.items() if kind not in poison}
    bad = {rid: kind for rid, kind in expected.items() if kind in poison}
    table, dead = unique_table("mix"), unique_table("dlq")

    stats = _run(host, any_db, frames, table, dead)
    assert stats["flush_ok"] == CHUNKS, stats
    assert stats["flush_retry"] == 0 and stats["flush_error"] == 0, stats
    assert stats["chunks_dropped"] == 0, stats

    ids = [r[0] for r in any_db.query(f"SELECT {qt(any_db, 'id')} FROM {qt(any_db, table)}")]
    assert len(ids) == len(set(ids)), "a good record was written twice"
    assert set(ids) == good, (
        f"missing {sorted(good - set(ids))[:5]}, unexpected {sorted(set(ids) - good)[:5]}"
    )

    letters = any_db.query(
        f"SELECT {qt(any_db, 'error')}, {qt(any_db, 'record')}, {qt(any_db, 'time')} "
        f"FROM {qt(any_db, dead)}"
    )
    by_id = {_dead_id(record): error for error, record, _ in letters}
    assert len(letters) == len(bad) == len(by_id)
    assert set(by_id) == set(bad)
    unnamed = {
        rid: (bad[rid], err)
        for rid, err in by_id.items()
        if not err or not _names(err, KINDS[bad[rid]][1])
    }
    assert not unnamed, f"dead letters whose error does not name the column: {unnamed}"
    # a time past 9999 cannot go to the dead letter's time column either: NULL there,
    # not a failed flush (that dropped the whole chunk, good rows included)
    null_time = {_dead_id(record) for _, record, when in letters if when is None}
    assert null_time == {
        rid
        for rid, kind in bad.items()
        if kind in ("ts_past_9999", "non_map", "ts_string", "ts_negative")
    }
    print(
        f"\n{any_db.dialect}: {len(good)} good rows, {len(bad)} dead letters "
        f"({len(poison)} kinds x {CHUNKS} chunks); e.g. "
        + "; ".join(sorted({f"{bad[r]}: {e[:90]}" for r, e in by_id.items()})[: len(poison)])
    )

    # Fluent Bit re-delivers the same chunks (a retry, or storage after a crash)
    again = _run(host, any_db, frames, table, dead)
    assert again["flush_ok"] == CHUNKS and again["flush_error"] == 0, again
    ids2 = [r[0] for r in any_db.query(f"SELECT {qt(any_db, 'id')} FROM {qt(any_db, table)}")]
    assert len(ids2) == len(good) and set(ids2) == good, "the replay added rows"
    (n_dead,) = any_db.query(f"SELECT COUNT(*) FROM {qt(any_db, dead)}")[0]
    assert n_dead == len(bad), "the replay added dead letters: each poison record once in all"
