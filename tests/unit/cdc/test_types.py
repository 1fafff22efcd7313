"""Text -> value decoders by type OID (no database)."""

from __future__ import annotations

import math

import pytest

from flbsql.cdc.types import TypeInfo, build_decoder, iso_timestamp, parse_array

CATALOG = {
    1007: TypeInfo(1007, "b", 23, 0, ",", "A"),  # int4[]
    1009: TypeInfo(1009, "b", 25, 0, ",", "A"),  # text[]
    1231: TypeInfo(1231, "b", 1700, 0, ",", "A"),  # numeric[]
    1020: TypeInfo(1020, "b", 603, 0, ",", "A"),  # box[]
    603: TypeInfo(603, "b", 600, 0, ";", "G"),  # box: has a typelem, is not an array
    25: TypeInfo(25, "b", 0, 0, ",", "S"),
    23: TypeInfo(23, "b", 0, 0, ",", "N"),
    90001: TypeInfo(90001, "d", 0, 1007, ",", "A"),  # a domain over int4[]
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{}", []),
        ("{1,2,3}", ["1", "2", "3"]),
        ('{NULL,"NULL",null}', [None, "NULL", "null"]),
        ('{"a,b","c\\"d","e\\\\f"," sp "}', ["a,b", 'c"d', "e\\f", " sp "]),
        ("{{1,2},{3,NULL}}", [["1", "2"], ["3", None]]),
        ("[0:1]={7,8}", ["7", "8"]),
        ("[1:1][1:2]={{a,b}}", [["a", "b"]]),
        ("{{{x}}}", [[["x"]]]),
    ],
)
def test_parse_array(text: str, expected: list[object]) -> None:
    assert parse_array(text, str) == expected


def test_parse_array_with_other_delimiter() -> None:
    assert parse_array("{(1,1),(0,0);(3,3),(2,2)}", str, ";") == ["(1,1),(0,0)", "(3,3),(2,2)"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02 03:04:05", "2024-01-02T03:04:05"),
        ("2024-01-02 03:04:05.5+00", "2024-01-02T03:04:05.5+00:00"),
        ("2024-01-02 03:04:05-03:30", "2024-01-02T03:04:05-03:30"),
        ("infinity", "infinity"),
        ("-infinity", "-infinity"),
        ("0044-03-15 00:00:00 BC", "0044-03-15 00:00:00 BC"),
    ],
)
def test_iso_timestamp(text: str, expected: str) -> None:
    assert iso_timestamp(text) == expected


def test_scalar_decoders() -> None:
    assert build_decoder(16, CATALOG)("t") is True
    assert build_decoder(16, CATALOG)("f") is False
    assert build_decoder(20, CATALOG)("-9223372036854775808") == -(2**63)
    assert math.isnan(build_decoder(701, CATALOG)("NaN"))
    assert build_decoder(700, CATALOG)("-Infinity") == -math.inf
    assert build_decoder(1700, CATALOG)("1.10") == "1.10"
    assert build_decoder(1700, CATALOG, "float")("1.5") == 1.5
    assert build_decoder(17, CATALOG)("\\x00ff") == b"\x00\xff"
    assert build_decoder(3802, CATALOG)('{"a": [1, null]}') == {"a": [1, None]}
    assert build_decoder(2950, CATALOG)("a0ee-...") == "a0ee-..."  # uuid: text


def test_arrays_domains_and_lookalikes() -> None:
    assert build_decoder(1007, CATALOG)("{1,NULL,-3}") == [1, None, -3]
    assert build_decoder(1231, CATALOG)("{1.5,NaN}") == ["1.5", "NaN"]
    assert build_decoder(90001, CATALOG)("{{1},{2}}") == [[1], [2]]
    assert build_decoder(603, CATALOG)("(1,1),(0,0)") == "(1,1),(0,0)"
    assert build_decoder(1020, CATALOG)("{(1,1),(0,0);(2,2),(1,1)}") == [
        "(1,1),(0,0)",
        "(2,2),(1,1)",
    ]
    assert build_decoder(1007, CATALOG)("not an array") == "not an array"
    assert build_decoder(123456, CATALOG)("anything") == "anything"
