"""Runs of inserts encoded in C (``TuplePacker.inserts``) give the Python path's chunks.

A peek of pgoutput messages (built by hand) goes through :meth:`Stream.step` twice,
with the C run and without it: every hand-over (bytes, rows, marker) must be the
same, whatever ends a run: a chunk bound, another relation, a value C does not
take, an update, a filtered table, the changes of a split transaction to skip.
"""

from __future__ import annotations

import logging
import struct
from typing import Any

import pytest

from flbsql.cdc import packtuple, stream
from flbsql.cdc.pgoutput import PgOutputDecoder
from flbsql.cdc.stream import Stream
from flbsql.cdc.types import TypeInfo
from tests.unit.cdc.test_pgoutput import begin, relation, tup

pytestmark = pytest.mark.skipif(not packtuple.accelerated(), reason="make build")

CATALOG = {25: TypeInfo(25, "b", 0, 0, ",", "S"), 114: TypeInfo(114, "b", 0, 0, ",", "U")}
T = relation(1, [("id", 20, True), ("n", 23, False), ("s", 25, False), ("ts", 1184, False)])
OTHER = relation(2, [("id", 23, True), ("v", 25, False)], name="other")
JSONREL = relation(3, [("id", 23, True), ("doc", 114, False)], name="docs")


def ins(oid: int, *values: Any) -> bytes:
    return b"I" + struct.pack(">I", oid) + b"N" + tup(*values)


def row(i: int, s: str = "x") -> bytes:
    return ins(1, i, i, s * (i % 7 + 1), "2026-12-02 14:00:00.123456+00")


def commit(lsn: int) -> bytes:
    return b"C" + struct.pack(">BQQq", 0, lsn, lsn + 8, 0)


def txn(lsn: int, body: list[bytes]) -> list[bytes]:
    return [begin(lsn, 1_000_000 * lsn, lsn), *body, commit(lsn)]


class PG:
    reader = "r"

    def __init__(self, msgs: list[bytes]) -> None:
        self.msgs = msgs

    def current_lsn(self) -> int:
        return 1 << 40

    def read_changes(self, *_: Any) -> Any:
        yield from self.msgs

    def reopen_reader(self) -> None:
        pass


def hand_overs(
    msgs: list[bytes], monkeypatch: pytest.MonkeyPatch, fast: bool, **kw: Any
) -> tuple[list[tuple[bytes, int, Any]], int, dict[str, int]]:
    monkeypatch.setattr(stream, "accelerated", lambda: fast)
    out: list[tuple[bytes, int, Any]] = []
    dec = PgOutputDecoder(lambda oids: CATALOG, tables=kw.pop("tables", None))
    s = Stream(
        PG(msgs),  # type: ignore[arg-type]
        dec,
        "p",
        1000,
        kw.pop("chunk_rows", 20_000),
        kw.pop("chunk_bytes", 12 << 20),
        lambda data, rows, marker=None: out.append((bytes(data), rows, marker)),
        {"peeks": 0, "changes": 0},
        logging.getLogger("test"),
    )
    s.partial = kw.pop("partial", None)
    s.done_lsn = kw.pop("done_lsn", 0)
    try:
        s.step(0)
    finally:
        s.ahead.close()
    return out, dec.pos, dict(s.seqs or {})


CASES: dict[str, tuple[list[bytes], dict[str, Any]]] = {
    "runs split by chunk rows": ([T, *txn(100, [row(i) for i in range(50)])], {"chunk_rows": 7}),
    "runs split by chunk bytes": (
        [T, *txn(100, [row(i) for i in range(50)]), *txn(200, [row(i) for i in range(50, 60)])],
        {"chunk_bytes": 1000},
    ),
    "a TOAST value ends a run": (
        [T, *txn(100, [row(1), row(2), ins(1, 3, 3, "<u>", None), row(4), row(5)])],
        {},
    ),
    "relations, updates, deletes interleaved": (
        [
            T,
            OTHER,
            *txn(
                100,
                [
                    row(1),
                    row(2),
                    ins(2, 1, "a"),
                    row(3),
                    b"U" + struct.pack(">I", 1) + b"N" + tup(3, 4, "y", None),
                    row(4),
                    b"D" + struct.pack(">I", 1) + b"K" + tup(1, None, None, None),
                    row(5),
                    row(6),
                ],
            ),
        ],
        {"chunk_rows": 4},
    ),
    "a filtered table": (
        [T, OTHER, *txn(100, [row(1), ins(2, 1, "a"), ins(2, 2, "b"), row(2), row(3)])],
        {"tables": frozenset({"public.t"})},
    ),
    "a relation C does not take": (
        [JSONREL, T, *txn(100, [ins(3, 1, '{"a": 1}'), row(1), ins(3, 2, "[]"), row(2)])],
        {},
    ),
    "a split transaction resumes past what was handed over": (
        [T, *txn(100, [row(i) for i in range(20)]), *txn(200, [row(i) for i in range(5)])],
        {"partial": (100, 12), "chunk_rows": 5},
    ),
    "transactions handed over before are skipped": (
        [T, *txn(100, [row(i) for i in range(5)]), *txn(200, [row(i) for i in range(5)])],
        {"done_lsn": 150},
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_c_runs_hand_over_what_python_does(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    msgs, kw = CASES[name]
    slow = hand_overs(msgs, monkeypatch, False, **dict(kw))
    fast = hand_overs(msgs, monkeypatch, True, **dict(kw))
    assert sum(rows for _, rows, _ in slow[0]) > 0
    assert [(rows, marker) for _, rows, marker in fast[0]] == [
        (rows, marker) for _, rows, marker in slow[0]
    ]
    assert fast == slow


def test_runs_are_taken_in_c(monkeypatch: pytest.MonkeyPatch) -> None:
    """The C run does the work: the Python decoder sees no insert of a plain run."""
    seen: list[int] = []
    real = PgOutputDecoder.changes

    def spy(self: PgOutputDecoder, buf: bytes) -> Any:
        seen.append(buf[0])
        return real(self, buf)

    monkeypatch.setattr(PgOutputDecoder, "changes", spy)
    out, pos, seqs = hand_overs([T, *txn(100, [row(i) for i in range(30)])], monkeypatch, True)
    assert (sum(r for _, r, _ in out), pos, seqs, seen) == (30, 30, {"public.t": 30}, [])
