"""The C chunk encoders write what the Python paths write: COPY, LOAD DATA, SQLite rows."""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flbsql.dialects import mysqlload, pgbinary
from flbsql.dialects.sqlite import DIALECT as SQLITE
from flbsql.output.convert import dumps
from flbsql.timestamps import EpochMicros
from tests.fix_hypothesis import examples

TYPES = ["text", "timestamp with time zone", "jsonb"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.floats(width=32)
    | st.sampled_from([1e16, 1e15, 9999999999999998.0, 1e-5, 1e-6, 0.1, -0.0, 5e-324, 1e300])
    | st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8).filter(lambda k: "\x00" not in k), inner, max_size=4)
    ),
    max_leaves=12,
)
bodies = st.dictionaries(st.text(max_size=10).filter(lambda k: "\x00" not in k), values, max_size=9)
# a chunk: (sec, nsec, body, v2 or v1 framing) per record; and its tag
records = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=0xFFFFFFFD),
        st.integers(min_value=0, max_value=999_999_999),
        bodies,
        st.booleans(),
    ),
    min_size=1,
    max_size=20,
)
tags = st.text(max_size=20).filter(lambda t: "\x00" not in t)


def event(sec: int, nsec: int, body: Any, v2: bool = True) -> bytes:
    ts = msgpack.ExtType(0, struct.pack(">II", sec, nsec))
    packed: bytes = msgpack.packb([[ts, {}], body] if v2 else [ts, body], use_bin_type=True)
    return packed


def python_rows(tag: str, events: list[tuple[int, int, Any]]) -> bytes:
    """What the Python path writes for these records."""
    encs = pgbinary.encoders(TYPES)
    assert encs is not None
    out: list[bytes | memoryview] = []
    rows = [(tag, EpochMicros(s * 1_000_000 + n // 1000), dumps(b)) for s, n, b in events]
    pgbinary.encode_rows(encs, rows, out.append)
    return b"".join(out)


@pytest.mark.parametrize(
    "body",
    [
        {"b": b"\x00\x01"},  # binary: base64 in Python
        {"e": msgpack.ExtType(5, b"x")},
        {1: "non-string key"},
        {"nul": "a\x00b"},  # jsonb cannot hold it: Python dead-letters it
    ],
)
def test_what_c_leaves_to_python(body: dict[Any, Any]) -> None:
    data = event(1, 0, {"ok": 1}) + event(2, 0, body)
    assert pgbinary.encode_chunk(data, "t", TYPES) is None


def test_invalid_utf8_group_markers_and_other_shapes_go_to_python() -> None:
    bad_utf8 = b"\x92\x92\xd7\x00" + b"\x00" * 8 + b"\x80\x81\xa1k\xa2\xff\xfe"
    group = event(0xFFFFFFFF, 0, {})
    int_time = msgpack.packb([1700000000, {"a": 1}])
    for data in (bad_utf8, group, int_time, event(1, 0, {"a": 1})[:-1]):
        assert pgbinary.encode_chunk(data, "t", TYPES) is None


def test_only_the_default_table_shape() -> None:
    data = event(1, 0, {"a": 1})
    assert pgbinary.encode_chunk(data, "t", ["text", "timestamp with time zone", "json"]) is None
    assert pgbinary.encode_chunk(data, "t", ["text", "timestamp", "jsonb"]) is None
    assert pgbinary.encode_chunk(data, "t", None) is None


@settings(max_examples=examples(3000), deadline=None)
@given(
    st.floats()
    | st.integers(min_value=0, max_value=2**64 - 1).map(
        lambda b: struct.unpack(">d", b.to_bytes(8, "big"))[0]
    )
)
def test_every_double_is_written_as_orjson_writes_it(value: float) -> None:
    encoded = pgbinary.encode_chunk(event(1, 0, {"f": value}), "t", TYPES)
    assert encoded is not None
    assert encoded[0].payload == python_rows("t", [(1, 0, {"f": value})])


# -- MySQL/MariaDB: LOAD DATA text -------------------------------------------------------

MYSQL_TYPES = ["varchar(255)", "datetime(6)", "longtext"]


def python_tsv(tag: str, events: list[tuple[int, int, Any]]) -> bytes:
    """What the Python path sends for these records (the mapper's rows, then tsv)."""
    import datetime as dt

    import orjson

    from flbsql.dialects import mysqlload
    from flbsql.output.convert import TimeConverter

    tconv = TimeConverter("naive_text", dt.timezone.utc)
    rows = [(tag, tconv(s, n), orjson.dumps(b).decode()) for s, n, b in events]
    return mysqlload.tsv(rows, [False, False, False])


def test_load_data_text_only_for_the_default_shape():
    from flbsql.dialects import mysqlload

    data = event(1, 0, {"a": 1})
    assert mysqlload.encode_chunk(data, "t", ["varchar(255)", "int", "longtext"]) is None
    assert mysqlload.encode_chunk(data, "t", ["varchar(255)", "datetime(6)", "blob"]) is None
    assert mysqlload.encode_chunk(data, "t", None) is None
    got = mysqlload.encode_chunk(data, "a\tb\\c", ["text", "timestamp", "json"])
    assert got is not None
    assert bytes(got[0].payload) == b'a\\tb\\\\c\t1970-01-01 00:00:01\t{"a":1}\n'


# -- SQLite: time and JSON lines for executemany -----------------------------------------


def python_sqlite(tag: str, events: list[tuple[int, int, Any]]) -> list[tuple[str, str, str]]:
    """What the Python path binds for these records (time text, JSON text)."""
    import datetime as dt

    import orjson

    from flbsql.output.convert import TimeConverter

    tconv = TimeConverter("text", dt.timezone.utc)
    return [(tag, tconv(s, n), orjson.dumps(b).decode()) for s, n, b in events]


def test_sqlite_rows_from_c_only_for_text_columns_in_utc():
    from flbsql.dialects.sqlite import DIALECT

    data = event(1, 0, {"a": "x\ny"})
    assert DIALECT.encode_chunk(data, "t", ["text", "integer", "text"]) is None
    assert DIALECT.encode_chunk(data, "t", ["text", "text", "text"], utc=False) is None
    assert DIALECT.encode_chunk(data, "t", None) is None
    assert DIALECT.encode_chunk(event(1, 0, {"a": b"\x00"}), "t", ["text"] * 3) is None
    got = DIALECT.encode_chunk(data, "t", ["text"] * 3)
    assert got is not None
    assert list(got[0]) == [("t", "1970-01-01T00:00:01+00:00", '{"a":"x\\ny"}')]


# -- all three, from one draw ------------------------------------------------------------


@settings(max_examples=examples(300), deadline=None)
@given(records, tags)
def test_each_c_encoder_writes_what_its_python_path_writes(
    records: list[tuple[int, int, dict[str, Any], bool]], tag: str
) -> None:
    """PostgreSQL COPY binary, MySQL LOAD DATA text and SQLite rows, from one draw each.

    Drawing a chunk costs more than encoding it three times: one draw checks all three.
    """
    data = b"".join(event(s, n, b, v2) for s, n, b, v2 in records)
    events = [(s, n, b) for s, n, b, _ in records]
    encoded = pgbinary.encode_chunk(data, tag, TYPES)
    assert encoded is not None
    assert encoded[1] == len(records)
    assert encoded[0].payload == python_rows(tag, events), "PostgreSQL COPY binary"
    loaded = mysqlload.encode_chunk(data, tag, MYSQL_TYPES)
    assert loaded is not None
    assert loaded[1] == len(records)
    assert loaded[0].payload == python_tsv(tag, events), "MySQL LOAD DATA text"
    rows = SQLITE.encode_chunk(data, tag, ["TEXT", "text", "text"])
    assert rows is not None
    assert rows[1] == len(records)
    assert list(rows[0]) == python_sqlite(tag, events), "SQLite rows"
