"""Shared helpers for the output tests: a Writer on a test database, poison chunks."""

from __future__ import annotations

import json
import logging
from typing import Any

import msgpack

from flbsql.conn.connect import open_pool
from flbsql.output.writer import Writer
from flbsql.settings import parse
from tests.fix_host import event_classic, event_time, event_v2

LOG = logging.getLogger("test.output")


def make_writer(db: Any, table: str, **props: Any) -> Writer:
    """A Writer as the plugin builds it, on ``db``."""
    raw = {"url": db.url, "table": table}
    for k, v in props.items():
        raw[k] = ("on" if v else "off") if isinstance(v, bool) else str(v)
    cfg = parse("output", raw.get)
    return Writer(cfg, open_pool(cfg, LOG), LOG)


def as_json(value: Any) -> Any:
    """A JSON column value as Python (jsonb comes back decoded)."""
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def qt(db: Any, name: str) -> str:
    """Quote a name for a direct query in the test."""
    return f"`{name}`" if db.dialect == "mysql" else f'"{name}"'


def count(db: Any, table: str) -> int:
    """Rows in ``table``."""
    return int(db.query(f"SELECT COUNT(*) FROM {qt(db, table)}")[0][0])


def _bad_utf8_event(i: int) -> bytes:
    packed = event_v2({"id": f"id-{i:05d}", "status": 200, "bad": "PLACEHOLDER"})
    return packed.replace(b"PLACEHOLDER", b"\xffbad\xfe-json!")


POISON = {
    11: ("status", "abc"),  # wrong type for an int column
    2222: ("status", 2**64 - 1),  # outside BIGINT
    3333: ("status", 4.5),  # not an integer
    4444: ("host", "x" * 300),  # longer than VARCHAR(255)
    5555: ("host", "y" * 256),  # longer than VARCHAR(255)
    6666: ("message", "nul \x00 inside"),  # NUL in text (PostgreSQL cannot store it)
}
BAD_JSON = 7777  # invalid UTF-8 in a string: the record is not valid JSON


def poison_chunk(n: int = 10_000) -> tuple[bytes, set[str]]:
    """``n`` records with the poison ones; returns the chunk and the ids of the poison."""
    parts = []
    for i in range(n):
        if i == BAD_JSON:
            parts.append(_bad_utf8_event(i))
            continue
        body: dict[str, Any] = {
            "id": f"id-{i:05d}",
            "status": 200,
            "host": f"h{i % 7}",
            "message": f"line {i}",
            "extra": {"n": i, "tags": ["a", "b"]},
        }
        if i in POISON:
            key, value = POISON[i]
            body[key] = value
        parts.append(event_v2(body, sec=1_700_000_000 + i, nsec=1000 * i))
    ids = {f"id-{i:05d}" for i in [*POISON, BAD_JSON]}
    return b"".join(parts), ids


def mixed_chunk() -> bytes:
    """Both event formats, every timestamp kind, a group, nested data, bytes and ext."""
    return b"".join(
        [
            event_v2(
                {"m": "v2", "nested": {"a": [1, {"b": None}]}, "raw": b"\x00\x01"},
                sec=1_700_000_000,
                nsec=250_000_000,
                meta={"k": "v"},
            ),
            msgpack.packb([[event_time(0xFFFFFFFF, 0), {}], {"resource": {}}]),  # group start
            event_classic({"m": "classic-int"}, ts=1_700_000_001),
            event_classic({"m": "classic-float"}, ts=1_700_000_002.5),
            event_classic(
                {"m": "classic-eventtime", "ext": msgpack.ExtType(5, b"xy")},
                ts=event_time(1_700_000_003, 0),
            ),
            msgpack.packb([[event_time(0xFFFFFFFE, 0), {}], {}]),  # group end
        ]
    )
