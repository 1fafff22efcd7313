"""The re-framer gives exactly the bytes of packing a dict per row, in C and in Python."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flbsql.events import frame
from flbsql.events.codec import header
from flbsql.events.frame import Framer, frame_py
from tests.fix_hypothesis import examples

HEAD = header(1_700_000_000, 123_456_789)

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.binary(max_size=40)
    | st.builds(lambda n: "x" * n, st.sampled_from([31, 32, 255, 256, 65535, 65536])),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


def oracle(names: list[str], emit: list[bool], rows: Sequence[tuple[object, ...]]) -> bytes:
    """What the input packed before the re-framer: a dict per row."""
    pack = msgpack.Packer(use_bin_type=True).pack
    return b"".join(
        HEAD + pack({n: v for n, v, e in zip(names, r, emit, strict=True) if e}) for r in rows
    )


@st.composite
def pages(draw: st.DrawFn) -> tuple[list[str], list[bool], list[tuple[object, ...]]]:
    ncols = draw(st.integers(min_value=1, max_value=20))  # 16+ emitted: a map16 header
    names = [f"c{i}" for i in range(ncols)]
    emit = draw(st.lists(st.booleans(), min_size=ncols, max_size=ncols))
    rows = draw(
        st.lists(st.tuples(*[values] * ncols), max_size=20)
        if ncols <= 6
        else st.lists(st.lists(values, min_size=ncols, max_size=ncols).map(tuple), max_size=5)
    )
    return names, emit, rows


@settings(max_examples=examples(120), deadline=None)
@given(pages())
def test_the_c_and_the_python_framer_give_the_bytes_of_a_dict_per_row(
    page: tuple[list[str], list[bool], list[tuple[object, ...]]],
) -> None:
    names, emit, rows = page
    keys = [n for n, e in zip(names, emit, strict=True) if e]
    packed = msgpack.packb(rows, use_bin_type=True)
    expected = oracle(names, emit, rows)
    assert frame_py(packed, HEAD, [msgpack.packb(k) for k in keys], emit) == expected
    assert Framer(keys, emit).frame(packed, len(rows), HEAD) == expected


def test_the_extension_is_built() -> None:
    """`make build` builds it; the input would silently fall back to Python otherwise."""
    assert frame.accelerated()


def test_an_event_time_and_big_rows_pass_through() -> None:
    names = ["t", "blob", "n"]
    rows = [(msgpack.ExtType(0, b"\x00" * 8), b"\xff" * 70_000, -1)] * 3
    packed = msgpack.packb(rows, use_bin_type=True)
    assert Framer(names, [True] * 3).frame(packed, 3, HEAD) == oracle(names, [True] * 3, rows)


@pytest.mark.parametrize(
    "packed",
    [
        msgpack.packb([(1, 2)])[:-1],  # truncated
        msgpack.packb([(1, 2, 3)]),  # another number of columns
        msgpack.packb({"a": 1}),  # not an array of rows
        msgpack.packb([(1, "abc")])[:-2],  # a string cut short
        msgpack.packb([(1, 2)]) + b"\x01",  # trailing bytes
        b"\x91\x92\x01\xc1",  # the reserved byte
        b"\x91\x92\x01\xdd\xff\xff\xff\xff",  # an array claiming 4G elements
    ],
)
def test_malformed_pages_are_refused_not_read_past_their_end(packed: bytes) -> None:
    with pytest.raises(ValueError, match="cannot frame the page: malformed rows"):
        Framer(["a", "b"], [True, True]).frame(packed, 1, HEAD)


PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
UNIX_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
EDGES = [  # microseconds since 2000: 1970 and the last EventTime second, each side
    -946_684_800_000_001,
    -946_684_800_000_000,
    (0xFFFFFFFD - 946_684_800) * 1_000_000,
    (0xFFFFFFFD - 946_684_800) * 1_000_000 + 1,
    2**63 - 1,  # infinity
    -(2**63),  # -infinity
]


def own_head(micros: int | None) -> bytes:
    """The oracle, by calendar arithmetic: the row's header, or HEAD out of range."""
    if micros is None:
        return HEAD
    try:
        when = PG_EPOCH + dt.timedelta(microseconds=micros)
    except OverflowError:
        return HEAD
    since = when - UNIX_EPOCH
    if since < dt.timedelta(0) or since > dt.timedelta(seconds=0xFFFFFFFD):
        return HEAD
    return header(since // dt.timedelta(seconds=1), since.microseconds * 1000)


@settings(max_examples=examples(100), deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=-(2**31), max_value=2**31),
            st.text(max_size=20),
            st.none()
            | st.sampled_from(EDGES)
            | st.integers(min_value=-(2**63), max_value=2**63 - 1)
            | st.integers(min_value=-946_684_800_000_000, max_value=3_348_000_000_000_000),
        ),
        max_size=20,
    )
)
def test_a_row_may_bring_its_own_time_in_a_hidden_column(
    rows: list[tuple[int, str, int | None]],
) -> None:
    """The time column as a binary timestamp (input_time_binary_expr); NULL: the page's."""
    pack = msgpack.Packer(use_bin_type=True).pack
    expected = b"".join(own_head(t) + pack({"n": n, "s": s}) for n, s, t in rows)
    sent = [(n, s, None if t is None else t.to_bytes(8, "big", signed=True)) for n, s, t in rows]
    packed = msgpack.packb(sent, use_bin_type=True)
    emit = [True, True, False]
    keys = [msgpack.packb(k) for k in ("n", "s")]
    assert frame_py(packed, HEAD, keys, emit, head_col=2) == expected
    assert Framer(["n", "s"], emit, head_col=2).frame(packed, len(rows), HEAD) == expected


def test_fields_added_to_every_record_follow_the_columns() -> None:
    """``table_key``: the table's name in every record of a many-tables input."""
    rows = [(1, "a"), (2, None)]
    pack = msgpack.Packer(use_bin_type=True).pack
    expected = b"".join(HEAD + pack({"n": n, "s": s, "_table": "public.t"}) for n, s in rows)
    framer = Framer(["n", "s"], [True, True], extra={"_table": "public.t"})
    assert framer.frame(msgpack.packb(rows), 2, HEAD) == expected
    assert (
        frame_py(msgpack.packb(rows), HEAD, framer.keys, framer.emit, -1, framer.tail) == expected
    )


quoted_values = (
    st.none()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.binary(max_size=40)  # bin is never unquoted, quotes or not
    | st.text(max_size=40)
    | st.text(max_size=300).map(lambda s: f'"{s}"')  # str 8 / str 16 headers shrink
    | st.builds(lambda n: '"' + "x" * n + '"', st.sampled_from([0, 29, 30, 31, 253, 254, 65534]))
    | st.just('"').map(lambda q: q)  # one quote: too short to be a literal
)


def unquoted(v: object) -> object:
    """What the server's JSON string literal means: its text (escapes: left as sent)."""
    if isinstance(v, str) and len(v) >= 2 and v[0] == v[-1] == '"' and "\\" not in v:
        return v[1:-1]
    return v


@settings(max_examples=examples(150), deadline=None)
@given(
    st.lists(st.tuples(st.integers(-(2**63), 2**63 - 1), quoted_values, quoted_values), max_size=20)
)
def test_a_column_of_json_string_literals_is_framed_without_its_quotes(
    rows: list[tuple[int, object, object]],
) -> None:
    """PostgreSQL renders timestamptz with to_json(ts)::text; the framer drops the quotes."""
    pack = msgpack.Packer(use_bin_type=True).pack
    expected = b"".join(HEAD + pack({"n": n, "ts": unquoted(ts), "s": s}) for n, ts, s in rows)
    packed = msgpack.packb(rows, use_bin_type=True)
    emit = [1, frame.UNQUOTE, 1]
    keys = [msgpack.packb(k) for k in ("n", "ts", "s")]
    assert frame_py(packed, HEAD, keys, emit) == expected
    assert Framer(["n", "ts", "s"], emit).frame(packed, len(rows), HEAD) == expected
