"""The C tuple packer gives exactly the bytes of the Python decoders' dict, packed."""

from __future__ import annotations

import datetime as dt
import math
import struct

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flbsql.cdc import packtuple
from flbsql.cdc.packtuple import TuplePacker
from flbsql.cdc.types import C_KINDS, Decoder, build_decoder
from tests.fix_hypothesis import examples


def decoder(oid: int, decimal: str = "string") -> Decoder:
    return build_decoder(oid, {}, decimal)


TEXT, INT8, FLOAT8, BOOL, TSTZ, BYTEA = 25, 20, 701, 16, 1184, 17


def _float_text(f: float) -> str:
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "Infinity" if f > 0 else "-Infinity"
    return repr(f)


def _ts_text(t: dt.datetime, offset_minutes: int, bc: bool) -> str:
    text = t.strftime("%Y-%m-%d %H:%M:%S") + (
        f".{t.microsecond:06d}".rstrip("0") if t.microsecond else ""
    )
    sign = "+" if offset_minutes >= 0 else "-"
    h, m = divmod(abs(offset_minutes), 60)
    text += f"{sign}{h:02d}" + (f":{m:02d}" if m else "")
    return text + (" BC" if bc else "")


# where msgpack changes integer format
EDGES = [0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1]
EDGES += [-1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**63)]

VALUE_TEXT = {
    TEXT: st.text(max_size=300)
    | st.sampled_from([31, 32, 255, 256, 65535, 65536]).map("é".__mul__),
    INT8: (st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.sampled_from(EDGES)).map(str),
    FLOAT8: st.floats(allow_nan=True).map(_float_text),
    BOOL: st.sampled_from(["t", "f"]),
    TSTZ: st.one_of(
        st.builds(
            _ts_text,
            st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)),
            st.integers(min_value=-15 * 60, max_value=15 * 60).map(lambda m: m - m % 15),
            st.booleans(),
        ),
        st.sampled_from(["infinity", "-infinity"]),
    ),
    BYTEA: st.one_of(st.binary(max_size=300).map(lambda b: "\\x" + b.hex()), st.text(max_size=5)),
}


def tuple_data(values: list[str | None]) -> bytes:
    out = struct.pack(">h", len(values))
    for v in values:
        if v is None:
            out += b"n"
        else:
            raw = v.encode()
            out += b"t" + struct.pack(">I", len(raw)) + raw
    return out


@st.composite
def rows(draw: st.DrawFn) -> tuple[list[int], list[str | None]]:
    oids = draw(st.lists(st.sampled_from(sorted(VALUE_TEXT)), min_size=1, max_size=20))
    values = [draw(st.none() | VALUE_TEXT[o]) for o in oids]
    return oids, values


@settings(max_examples=examples(300), deadline=None)
@given(rows())
def test_c_packs_what_the_python_decoders_give(row: tuple[list[int], list[str | None]]) -> None:
    oids, values = row
    names = [f"col{i}" for i in range(len(oids))]
    decoders = [decoder(o) for o in oids]
    packer = TuplePacker.for_relation(names, decoders)
    assert packer is not None
    buf = b"I\x00\x00\x40\x00N" + tuple_data(values)
    expected = msgpack.packb(
        {n: None if v is None else d(v) for n, v, d in zip(names, values, decoders, strict=True)},
        use_bin_type=True,
    )
    assert packer.pack(buf, 6) == expected


def test_the_extension_is_built() -> None:
    assert packtuple.accelerated()


def test_numeric_as_float_is_done_in_c_and_json_is_left_to_python() -> None:
    assert TuplePacker.for_relation(["n"], [decoder(1700, "float")]) is not None
    assert TuplePacker.for_relation(["n", "j"], [decoder(1700), decoder(3802)]) is None
    assert set(C_KINDS.values()) == {0, 1, 2, 3, 4, 5}


@pytest.mark.parametrize(
    ("oid", "value", "data"),
    [
        (INT8, "1", b"\x00\x01u"),  # an unchanged TOAST value: the old row is in Python
        (INT8, "12x", None),  # not a number
        (INT8, "99999999999999999999", None),  # beyond int64
        (FLOAT8, "1.5abc", None),
        (BYTEA, "\\x0", None),  # odd hex
        (BYTEA, "\\xzz", None),
        (INT8, "1", b"\x00\x02t\x00\x00\x00\x011"),  # the relation has one column
        (INT8, "1", b"\x00\x01t\x00\x00\x00\x09"),  # a value cut short
    ],
)
def test_what_c_does_not_handle_falls_back_to_python(
    oid: int, value: str, data: bytes | None
) -> None:
    packer = TuplePacker.for_relation(["c"], [decoder(oid)])
    assert packer is not None
    buf = b"I\x00\x00\x40\x00N" + (data if data is not None else tuple_data([value]))
    assert packer.pack(buf, 6) is None


@pytest.mark.parametrize("value", EDGES)
def test_every_integer_format_edge(value: int) -> None:
    packer = TuplePacker.for_relation(["c"], [decoder(INT8)])
    assert packer is not None
    buf = b"I\x00\x00\x40\x00N" + tuple_data([str(value)])
    assert packer.pack(buf, 6) == msgpack.packb({"c": value})
