"""Every built-in type: the snapshot path and the change path give identical values."""

from __future__ import annotations

import math
from typing import Any

import msgpack
import pytest
from tests.fix_pglogical import drain, open_source

pytestmark = [pytest.mark.cdc, pytest.mark.postgres]

SETUP = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TYPE pair AS (x integer, label text);
"""

# column -> (type, literal for row 1, literal for row 3: edge values)
TYPES: dict[str, tuple[str, str, str]] = {
    "c_int2": ("smallint", "-32768", "32767"),
    "c_int4": ("integer", "42", "-2147483648"),
    "c_int8": ("bigint", "9223372036854775807", "-1"),
    "c_num": ("numeric", "12345678901234567890.123456789", "'NaN'"),
    "c_num_inf": ("numeric", "3.10", "'-Infinity'"),
    "c_num_scale": ("numeric(10,2)", "3.1", "-0.5"),
    "c_real": ("real", "1.5", "'-Infinity'"),
    "c_double": ("double precision", "0.1", "'NaN'"),
    "c_double_inf": ("double precision", "1e308", "'Infinity'"),
    "c_money": ("money", "1234.56", "-0.01"),
    "c_date": ("date", "'2024-02-29'", "'infinity'"),
    "c_date_bc": ("date", "'0044-03-15 BC'", "'-infinity'"),
    "c_time": ("time", "'13:14:15.123456'", "'24:00:00'"),
    "c_timetz": ("time with time zone", "'13:14:15+02'", "'00:00:00-11:30'"),
    "c_ts": ("timestamp", "'2024-01-02 03:04:05.678'", "'infinity'"),
    "c_tstz": ("timestamptz", "'2024-01-02 03:04:05.678+05:30'", "'-infinity'"),
    "c_ts_bc": ("timestamp", "'0001-01-01 00:00:00 BC'", "'294276-12-31 23:59:59'"),
    "c_interval": ("interval", "'1 year 2 mons 3 days 04:05:06.5'", "'-3 days -00:00:01'"),
    "c_bool": ("boolean", "true", "false"),
    "c_char": ("char(5)", "'ab'", "''"),
    "c_varchar": ("varchar(20)", "'héllo, \"w\"'", "''"),
    "c_text": ("text", "E'line1\\nline2\\t\\\\ é 😀'", "'NULL'"),
    "c_qchar": ('"char"', "'x'", "'\\'"),
    "c_name": ("name", "'some_name'", "''"),
    "c_bytea": ("bytea", "'\\xdeadbeef00'", "''"),
    "c_uuid": (
        "uuid",
        "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
        "'00000000-0000-0000-0000-000000000000'",
    ),
    "c_json": ("json", '\'{"b": [1, 2.5, null], "a": "x"}\'', "'\"just a string\"'"),
    "c_jsonb": ("jsonb", '\'{"b": [1, 2.5, null], "a": {"n": true}}\'', "'[]'"),
    "c_xml": ("xml", "'<a x=\"1\">t</a>'", "'<b/>'"),
    "c_inet": ("inet", "'192.168.0.1/24'", "'::1'"),
    "c_cidr": ("cidr", "'10.0.0.0/8'", "'2001:db8::/32'"),
    "c_macaddr": ("macaddr", "'08:00:2b:01:02:03'", "'ff:ff:ff:ff:ff:ff'"),
    "c_macaddr8": ("macaddr8", "'08:00:2b:01:02:03:04:05'", "'00:00:00:00:00:00:00:00'"),
    "c_bit": ("bit(4)", "B'1010'", "B'0000'"),
    "c_varbit": ("bit varying(8)", "B'101'", "B''"),
    "c_int_arr": ("integer[]", "'{1,NULL,3}'", "'{}'"),
    "c_text_arr2": (
        "text[][]",
        "ARRAY[ARRAY['a,b', 'c\"d\\e {}'], ARRAY[NULL, 'NULL']]",
        "'{{x}}'",
    ),
    "c_num_arr": ("numeric[]", "'{1.5,NaN,NULL}'", "'[0:1]={7,8}'"),
    "c_ts_arr": (
        "timestamptz[]",
        "ARRAY['2024-01-01 00:00:00+00'::timestamptz, NULL]",
        "'{infinity}'",
    ),
    "c_jsonb_arr": ("jsonb[]", "ARRAY['{\"a\":1}'::jsonb, '[2]']", "'{}'"),
    "c_bool_arr": ("boolean[]", "'{t,f,NULL}'", "'{}'"),
    "c_bytea_arr": ("bytea[]", "ARRAY['\\x01'::bytea, NULL]", "'{}'"),
    "c_box_arr": ("box[]", "ARRAY['(1,1),(0,0)'::box, '(3,3),(2,2)'::box]", "'{}'"),
    "c_int4range": ("int4range", "'[1,10)'", "'empty'"),
    "c_numrange": ("numrange", "'(1.5,2.5]'", "'(,)'"),
    "c_tstzrange": ("tstzrange", "'[2024-01-01,2024-02-01)'", "'[2024-01-01,infinity)'"),
    "c_daterange": ("daterange", "'[2024-01-01,2024-01-05]'", "'empty'"),
    "c_multirange": ("int4multirange", "'{[1,3), [5,8)}'", "'{}'"),
    "c_enum": ("mood", "'happy'", "'sad'"),
    "c_domain": ("posint", "7", "2147483647"),
    "c_composite": ("pair", "ROW(1, 'a b')::pair", "ROW(NULL, '\"q\"')::pair"),
    "c_point": ("point", "'(1.5,2)'", "'(0,0)'"),
    "c_line": ("line", "'{1,2,3}'", "'{1,-1,0}'"),
    "c_lseg": ("lseg", "'[(0,0),(1,1)]'", "'[(0,0),(0,0)]'"),
    "c_box": ("box", "'(1,1),(0,0)'", "'(0,0),(0,0)'"),
    "c_path": ("path", "'[(0,0),(1,1),(2,0)]'", "'((0,0),(1,1))'"),
    "c_polygon": ("polygon", "'((0,0),(1,1),(1,0))'", "'((0,0))'"),
    "c_circle": ("circle", "'<(0,0),1.5>'", "'<(1,1),0>'"),
    "c_tsvector": ("tsvector", "'a fat:2 cat:3A'", "''"),
    "c_tsquery": ("tsquery", "'fat & (rat | cat)'", "''"),
    "c_oid": ("oid", "4294967295", "0"),
    "c_pg_lsn": ("pg_lsn", "'16/B374D848'", "'0/0'"),
}


def _create(db: Any) -> None:
    cols = ", ".join(f"{c} {t}" for c, (t, _, _) in TYPES.items())
    db.execute(SETUP)
    db.execute(f"CREATE TABLE alltypes (id integer PRIMARY KEY, {cols})")
    db.execute("ALTER TABLE alltypes REPLICA IDENTITY FULL")


def _insert(db: Any, base: int) -> None:
    names = ", ".join(TYPES)
    row1 = ", ".join(v for _, v, _ in TYPES.values())
    row3 = ", ".join(v for _, _, v in TYPES.values())
    db.execute(f"INSERT INTO alltypes (id, {names}) VALUES ({base + 1}, {row1})")
    db.execute(f"INSERT INTO alltypes (id) VALUES ({base + 2})")  # all NULL
    db.execute(f"INSERT INTO alltypes (id, {names}) VALUES ({base + 3}, {row3})")


def _without_id(row: dict[str, Any]) -> bytes:
    packed: bytes = msgpack.packb({k: v for k, v in row.items() if k != "id"}, use_bin_type=True)
    return packed


def test_every_type_identical_from_snapshot_and_stream(cdc_db: Any, tmp_path: Any) -> None:
    _create(cdc_db)
    _insert(cdc_db, 0)
    src = open_source(cdc_db.props(tmp_path, tables="public.alltypes"))
    try:
        snap = drain(src, lambda r: len(r) >= 3)
        _insert(cdc_db, 100)
        records = drain(src, lambda r: len(r) >= 6, out=list(snap))
    finally:
        src.close()
    assert [r["op"] for r in records] == ["r", "r", "r", "c", "c", "c"]
    by_id = {r["after"]["id"]: r["after"] for r in records}
    for i in (1, 2, 3):
        snap_row, change_row = by_id[i], by_id[100 + i]
        for col in TYPES:
            a = msgpack.packb(snap_row[col], use_bin_type=True)
            b = msgpack.packb(change_row[col], use_bin_type=True)
            assert a == b, f"row {i} {col}: {snap_row[col]!r} != {change_row[col]!r}"
    assert all(v is None for k, v in by_id[2].items() if k != "id")
    row, edge = by_id[1], by_id[3]
    assert row["c_int8"] == 9223372036854775807 and row["c_int2"] == -32768
    assert row["c_num"] == "12345678901234567890.123456789"
    assert edge["c_num"] == "NaN" and edge["c_num_inf"] == "-Infinity"
    assert row["c_num_scale"] == "3.10"
    assert math.isnan(edge["c_double"]) and edge["c_double_inf"] == math.inf
    assert edge["c_real"] == -math.inf and row["c_double"] == 0.1
    assert row["c_bool"] is True and edge["c_bool"] is False
    assert row["c_bytea"] == b"\xde\xad\xbe\xef\x00" and edge["c_bytea"] == b""
    assert row["c_jsonb"] == {"a": {"n": True}, "b": [1, 2.5, None]}
    assert row["c_json"] == {"b": [1, 2.5, None], "a": "x"} and edge["c_json"] == "just a string"
    assert row["c_tstz"] == "2024-01-01T21:34:05.678+00:00"
    assert row["c_ts"] == "2024-01-02T03:04:05.678"
    assert edge["c_ts"] == "infinity" and edge["c_tstz"] == "-infinity"
    assert row["c_interval"] == "P1Y2M3DT4H5M6.5S"
    assert row["c_int_arr"] == [1, None, 3] and edge["c_int_arr"] == []
    assert row["c_text_arr2"] == [["a,b", 'c"d\\e {}'], [None, "NULL"]]
    assert row["c_num_arr"] == ["1.5", "NaN", None] and edge["c_num_arr"] == ["7", "8"]
    assert row["c_ts_arr"] == ["2024-01-01T00:00:00+00:00", None]
    assert row["c_jsonb_arr"] == [{"a": 1}, [2]]
    assert row["c_bool_arr"] == [True, False, None]
    assert row["c_bytea_arr"] == [b"\x01", None]
    assert row["c_box_arr"] == ["(1,1),(0,0)", "(3,3),(2,2)"]
    assert row["c_enum"] == "happy" and row["c_domain"] == 7 and edge["c_domain"] == 2147483647
    assert row["c_composite"] == '(1,"a b")'
    assert row["c_uuid"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert row["c_oid"] == 4294967295 and row["c_int4range"] == "[1,10)"
    assert row["c_multirange"] == "{[1,3),[5,8)}" and row["c_money"] == "$1,234.56"
    assert row["c_tsvector"] == "'a' 'cat':3A 'fat':2"
    assert row["c_text"] == "line1\nline2\t\\ é 😀" and edge["c_text"] == "NULL"
