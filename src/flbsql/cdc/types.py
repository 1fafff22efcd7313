"""PostgreSQL text form -> record value, one decoder per type OID.

The snapshot reads every column as ``col::text`` and pgoutput sends the same text
(the output functions run in our own session, with the same ``DateStyle``,
``IntervalStyle``, ``TimeZone``, ``extra_float_digits`` and ``bytea_output``: see
:data:`SESSION_SETTINGS`). Both paths go through the decoder built here, so a value
is identical whichever path delivered it.

Mapping:

- ``bool`` -> bool; ``int2/int4/int8/oid/xid/cid`` -> int; ``float4/float8`` -> float
  (``NaN``, ``Infinity`` and ``-Infinity`` included);
- ``numeric`` -> lossless string by default (``decimal float`` gives float);
- ``json``/``jsonb`` -> the parsed value; ``bytea`` -> bytes;
- ``timestamp``/``timestamptz`` -> ISO 8601 (``T`` separator, ``+HH:MM`` offset;
  ``infinity``/``-infinity`` and BC dates stay as PostgreSQL writes them);
- ``interval`` -> ISO 8601 duration (``IntervalStyle iso_8601``);
- arrays (any dimension, NULL elements) -> nested lists of decoded elements;
- domains -> the base type's decoder;
- everything else (text types, uuid, xml, money, network, bit, geometric, ranges,
  multiranges, enums, composites, tsvector, date, time, ...) -> the text itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "C_KINDS",
    "SESSION_SETTINGS",
    "Decoder",
    "TypeInfo",
    "build_decoder",
    "iso_timestamp",
    "parse_array",
]

Decoder = Callable[[str], Any]

SESSION_SETTINGS: dict[str, str] = {
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "iso_8601",
    "TimeZone": "UTC",
    "extra_float_digits": "1",
    "bytea_output": "hex",
}

_TRUE = "t"


def _bool(text: str) -> bool:
    return text == _TRUE


def _bytea(text: str) -> bytes:
    return bytes.fromhex(text[2:]) if text.startswith("\\x") else text.encode()


def iso_timestamp(text: str) -> str:
    """``2024-01-02 03:04:05.5+00`` -> ``2024-01-02T03:04:05.5+00:00``."""
    if len(text) < 11 or text[10] != " " or text.endswith(" BC"):
        return text  # infinity, -infinity, BC dates: as PostgreSQL writes them
    out = text[:10] + "T" + text[11:]
    if out[-3] in "+-":  # +HH -> +HH:MM
        out += ":00"
    return out


_JSON_LOADS = json.loads

# OID -> decoder for the built-in scalar types that are not plain text.
_BASE: dict[int, Decoder] = {
    16: _bool,  # bool
    17: _bytea,  # bytea
    20: int,
    21: int,
    23: int,  # int8, int2, int4
    26: int,
    28: int,
    29: int,  # oid, xid, cid
    700: float,
    701: float,  # float4, float8
    114: _JSON_LOADS,
    3802: _JSON_LOADS,  # json, jsonb
    1114: iso_timestamp,
    1184: iso_timestamp,  # timestamp, timestamptz
}
_NUMERIC = 1700


def text(value: str) -> str:
    """The identity decoder (types kept as PostgreSQL's text)."""
    return value


_text = text


def _numeric_float(text: str) -> float:
    return float(text)


class TypeInfo:
    """What the catalog says about one type (``pg_type``)."""

    __slots__ = ("basetype", "category", "delim", "elem", "oid", "typtype")

    def __init__(
        self, oid: int, typtype: str, elem: int, basetype: int, delim: str, category: str = "A"
    ) -> None:
        """From ``pg_type``: oid, typtype, typelem, typbasetype, typdelim, typcategory.

        Arrays have category "A" (point and box have a typelem too, but are not arrays).
        """
        self.oid = oid
        self.typtype = typtype
        self.elem = elem
        self.basetype = basetype
        self.delim = delim
        self.category = category


#: The decoders csrc/pgtuple.c does in C, by its KIND_* number (see cdc/packtuple.py).
C_KINDS: dict[Decoder, int] = {
    text: 0,
    int: 1,
    float: 2,
    _numeric_float: 2,
    _bool: 3,
    iso_timestamp: 4,
    _bytea: 5,
}


def build_decoder(oid: int, catalog: Mapping[int, TypeInfo], decimal: str = "string") -> Decoder:
    """The decoder for a type, resolving arrays and domains through ``catalog``.

    Args:
        oid: the column's type OID (from pgoutput's relation message or pg_attribute).
        catalog: type information for ``oid`` and the types it refers to.
        decimal: "string" (lossless) or "float" for numeric.
    """
    if oid == _NUMERIC:
        return _numeric_float if decimal == "float" else _text
    base = _BASE.get(oid)
    if base is not None:
        return base
    info = catalog.get(oid)
    if info is None:
        return _text
    if info.typtype == "d" and info.basetype:
        return build_decoder(info.basetype, catalog, decimal)
    if info.elem and info.category == "A":
        elem_info = catalog.get(info.elem)
        delim = elem_info.delim if elem_info is not None else ","
        element = build_decoder(info.elem, catalog, decimal)

        def array(text: str) -> Any:
            try:
                return parse_array(text, element, delim)
            except (ValueError, IndexError):  # unexpected literal: the text, not a crash
                return text

        return array
    return _text


def parse_array(text: str, element: Decoder, delim: str = ",") -> Any:
    """PostgreSQL array text (``{1,NULL,"a b"}``, ``[0:1]={...}``, nested) -> lists."""
    if text.startswith("["):  # explicit bounds: [1:2][0:1]={...}
        text = text[text.index("=") + 1 :]
    pos = 0
    n = len(text)

    def parse_level() -> list[Any]:  # noqa: PLR0912 - a small state machine
        nonlocal pos
        if text[pos] != "{":
            raise ValueError(f"bad array literal {text[:40]!r}")
        pos += 1
        items: list[Any] = []
        if text[pos] == "}":
            pos += 1
            return items
        while True:
            ch = text[pos]
            if ch == "{":
                items.append(parse_level())
            elif ch == '"':
                pos += 1
                buf = []
                while True:
                    c = text[pos]
                    if c == "\\":
                        buf.append(text[pos + 1])
                        pos += 2
                    elif c == '"':
                        pos += 1
                        break
                    else:
                        buf.append(c)
                        pos += 1
                items.append(element("".join(buf)))
            else:
                start = pos
                while pos < n and text[pos] != delim and text[pos] != "}":
                    pos += 1
                raw = text[start:pos].strip()
                items.append(None if raw == "NULL" else element(raw))
            if text[pos] == delim:
                pos += 1
                continue
            if text[pos] == "}":
                pos += 1
                return items
            raise ValueError(f"bad array literal near {text[pos : pos + 20]!r}")

    return parse_level()
