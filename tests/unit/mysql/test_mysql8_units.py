"""Unit tests of what MySQL 8 needs and no local server can show: binary JSON as MySQL prints
it, GTID set arithmetic and the GTID dump command, the owned-GTID fence's parsing, table maps
with optional metadata (MySQL's and MariaDB's) and the schema they describe.  Byte samples
are built by hand from the formats' descriptions in the MySQL source."""
from __future__ import annotations

import json
import struct

import pytest

from sources.mysql.tablemap import T_ENUM, T_GEOMETRY, T_SET, Charsets, parse_table_map, table_from_map
from sources.mysql.dialect import gtid_dump_command, owned_gtids
from sources.mysql.newdecimal import decimal_text_reader
from sources.mysql.jsonb import double_text, json_text
from sources.mysql.offset import MySqlGtidSet


# -- binary JSON --------------------------------------------------------------------------------
@pytest.mark.parametrize("hexbytes,text", [
    # {"a": 1}: small object, count 1, size 12, key entry (11, 1), int16 inlined, key "a"
    ("00" "0100" "0c00" "0b000100" "050100" "61", '{"a": 1}'),
    # [true, null, "x", 2.5]: literals inlined, the string at 16, the double at 18
    ("02" "0400" "1a00" "040100" "040000" "0c1000" "0b1200" "0178" "0000000000000440",
     '[true, null, "x", 2.5]'),
    # {"k": 70000}: large object (32-bit fields), int32 inlined in the entry
    ("01" "01000000" "14000000" "130000000100" "0770110100" "6b", '{"k": 70000}'),
    # scalars at the top
    ("0c04" "61226208", '"a\\"b\\b"'),
    ("0c0201" "1f", '"\\u0001\x1f"'),
    ("098000000000000000"[:2] + "0000000000000080", "-9223372036854775808"),
    ("0a" + "ff" * 8, "18446744073709551615"),
    ("05" "ffff", "-1"), ("06" "ffff", "65535"), ("07" "feffffff", "-2"), ("08" "feffffff", "4294967294"),
    ("0b" + struct.pack("<d", 1e20).hex(), "1e20"),
    ("0b" + struct.pack("<d", 2.0).hex(), "2.0"),
    ("0400", "null"), ("0401", "true"), ("0402", "false"),
    # opaque DECIMAL(4,2) 12.34: precision, scale, then MySQL's decimal binary
    ("0ff604" "0402" "8c22", "12.34"),
    # opaque DATETIME, DATE, TIME: packed 64-bit values
    ("0f0c08" "00000019761f9519", '"2015-01-15 23:24:25.000000"'),
    ("0f0a08" "0000000000bab219", '"2024-02-29"'),
    ("0f0b08" "e05ef84737ffffff", '"-12:34:56.500000"'),
    # any other opaque type: base64 of its bytes
    ("0ffc02" "0102", '"base64:type252:AQI="'),
])
def test_binary_json_as_mysql_prints_it(hexbytes, text):
    assert json_text(bytes.fromhex(hexbytes)) == text


def test_binary_json_empty_is_null_and_long_strings_use_varlen():
    assert json_text(b"") == "null"
    long = "é" * 100                          # 200 bytes: length 0xC8 0x01
    raw = long.encode()
    assert json_text(b"\x0c\xc8\x01" + raw) == json.dumps(long, ensure_ascii=False)


def _encode(v, large=False) -> tuple[int, bytes]:
    """A serializer of MySQL's binary JSON (json_binary.cc), to check decoding round trips."""
    if isinstance(v, bool) or v is None:
        return 0x04, bytes([{None: 0, True: 1, False: 2}[v]])
    if isinstance(v, int):
        return 0x09, struct.pack("<q", v)
    if isinstance(v, float):
        return 0x0B, struct.pack("<d", v)
    if isinstance(v, str):
        b = v.encode()
        n, out = len(b), bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                break
        return 0x0C, bytes(out) + b
    word, fmt = (4, "<I") if large else (2, "<H")
    if isinstance(v, dict):
        keys = sorted(v, key=lambda k: (len(k.encode()), k.encode()))
        vals = [v[k] for k in keys]
    else:
        keys, vals = [], list(v)
    n = len(vals)
    head = 2 * word + n * (word + 2 if isinstance(v, dict) else 0) + n * (1 + word)
    body = bytearray()
    key_entries, value_entries = bytearray(), bytearray()
    for k in keys:
        kb = k.encode()
        key_entries += struct.pack(fmt, head + len(body)) + struct.pack("<H", len(kb))
        body += kb
    for x in vals:
        t, data = _encode(x, large)
        if t == 0x04:   # literals live in the entry itself
            value_entries += bytes([t]) + data.ljust(word, b"\0")
            continue
        value_entries += bytes([t]) + struct.pack(fmt, head + len(body))
        body += data
    t = (0x00 if isinstance(v, dict) else 0x02) + (1 if large else 0)
    total = head + len(body)
    return t, struct.pack(fmt, n) + struct.pack(fmt, total) + key_entries + value_entries + body


@pytest.mark.parametrize("large", [False, True])
def test_binary_json_round_trip_of_nested_documents(large):
    doc = {"b": [1, -2, 3.25, "ü😀", None, True, {"inner": []}], "aa": {}, "zz": "x\ny",
           "k": {"deep": [[[]]], "n": 9007199254740993}}
    t, data = _encode(doc, large)
    text = json_text(bytes([t]) + data)
    assert json.loads(text) == doc
    # MySQL's layout: keys by length then bytes, ", " and ": " separators
    assert text.startswith('{"b": [1, -2, 3.25, "ü😀", null, true, {"inner": []}], "k": ')


@pytest.mark.parametrize("value,text", [
    (0.1, "0.1"), (1e15, "1e15"), (123456789012345.0, "123456789012345.0"), (1e-5, "0.00001"),
    (1e-15, "0.000000000000001"), (1e-16, "1e-16"), (-2.5, "-2.5"), (0.0, "0.0"),
    (1.7976931348623157e308, "1.7976931348623157e308"), (5e-324, "5e-324"),
    (1234567890123456789.0, "1.2345678901234568e18")])
def test_json_doubles_follow_my_gcvt(value, text):
    assert double_text(value) == text


def test_decimal_text_keeps_scale():
    assert decimal_text_reader(4, 2)[0](bytes.fromhex("8c22"), 0) == "12.34"
    assert decimal_text_reader(4, 2)[0](bytes.fromhex("73dd"), 0) == "-12.34"
    assert decimal_text_reader(5, 5)[0](bytes.fromhex("800000"), 0) == "0.00000"


# -- GTID sets ----------------------------------------------------------------------------------
U1 = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
U2 = "4e11fa47-71ca-11e1-9e33-c80aa9429562"


def test_gtid_set_parse_normalise_and_arithmetic():
    s = MySqlGtidSet(f"{U2}:3, {U1.upper()}:7:1-5:6")
    assert str(s) == f"{U1}:1-7,{U2}:3"
    assert (U1, 4) in s and (U1, 8) not in s and (U2.upper(), 3) in s
    s.add(U1, 9)
    s.add(U1, 8)
    assert str(s) == f"{U1}:1-9,{U2}:3"
    small = MySqlGtidSet(f"{U1}:2-3:9")
    assert small.issubset(s) and not s.issubset(small)
    assert not MySqlGtidSet(f"{U1}:9-10").issubset(s)
    assert str(small.union(MySqlGtidSet(f"{U1}:4-8,{U2}:1"))) == f"{U1}:2-9,{U2}:1"
    assert MySqlGtidSet("") == MySqlGtidSet(" ") and str(MySqlGtidSet("")) == ""
    with pytest.raises(ValueError, match="tagged"):
        MySqlGtidSet(f"{U1}:mytag:1-5")


def test_gtid_dump_command_bytes():
    cmd = gtid_dump_command(MySqlGtidSet(f"{U1}:1-5:7"), 5400)
    uuid = bytes.fromhex(U1.replace("-", ""))
    data = (struct.pack("<Q", 1) + uuid + struct.pack("<Q", 2)
            + struct.pack("<QQ", 1, 6) + struct.pack("<QQ", 7, 8))
    assert cmd == (b"\x1e" + b"\x04\x00" + struct.pack("<I", 5400) + b"\x00\x00\x00\x00"
                   + struct.pack("<Q", 4) + struct.pack("<I", len(data)) + data)


def test_owned_gtids_from_the_server_variable():
    # Owned_gtids::to_string: uuid, then ":gno#thread" per owned GTID; uuids run together
    text = f"{U1.upper()}:23#12:25#13{U2}:7#40"
    assert owned_gtids(text) == f"{U1}:23:25,{U2}:7"
    assert owned_gtids("") == ""


# -- table maps with optional metadata ------------------------------------------------------------
# MariaDB 10.11, binlog_row_metadata = FULL, for
#   (id INT PRIMARY KEY, y YEAR, u INT UNSIGNED, b BIGINT UNSIGNED, v VARCHAR(10), e ENUM('a','b'),
#    s SET('x','y'), l TEXT CHARACTER SET latin1, vb VARBINARY(5), g POINT, j JSON,
#    d DECIMAL(10,2) UNSIGNED)
MARIADB_FULL = bytes.fromhex(
    "13000000000001000178000174000c030d03080ffefefc0ffffcf60d2800f701f80102050004040a02fe0f0101"
    "7803052d083f3f2e070101041a026964017901750162017601650173016c0276620167016a01640a012d050502"
    "0178017906050201610162080100")
# MySQL 8 (binlog_row_metadata = MINIMAL) for tpcc2.warehouse: INT, 2 x DECIMAL, 4 x VARCHAR,
# 2 x CHAR in latin1 (the sample of mysql-binlog-connector-java's tests)
MYSQL_MINIMAL = bytes.fromhex(
    "8600000000000100057470636332000977617265686f7573650009" "03f6f60f0f0f0ffefe" "10"
    "0c0204040a00140014001400fe02fe09" "fe01" "010100" "02012f")


def test_mariadb_full_table_map():
    tm = parse_table_map(MARIADB_FULL, geometry_has_charset=True)
    assert (tm.db, tm.table) == ("x", "t") and tm.full
    assert tm.names == ["id", "y", "u", "b", "v", "e", "s", "l", "vb", "g", "j", "d"]
    assert tm.types[5] == T_ENUM and tm.types[6] == T_SET and tm.types[9] == T_GEOMETRY
    assert [i for i, u in enumerate(tm.unsigned) if u] == [1, 2, 3, 11]   # YEAR counts
    assert tm.collations[4] == 45 and tm.collations[7] == 8 and tm.collations[8] == 63
    assert tm.values[5] == ("a", "b") and tm.values[6] == ("x", "y")
    assert tm.geometry[9] == 1 and tm.primary_key == [0]
    assert tm.nullable[0] is False and all(tm.nullable[1:])
    table = table_from_map(tm, Charsets(), {})
    cols = {c.name: str(c.type) for c in table.schema.columns}
    assert cols == {"id": "INT", "y": "INT", "u": "BIGINT", "b": "DECIMAL(20,0)",
                    "v": "VARCHAR(10)", "e": "STRING", "s": "ARRAY<STRING>", "l": "STRING",
                    "vb": "VARBINARY(5)", "g": "BYTES", "j": "STRING", "d": "DECIMAL(10,2)"}
    assert table.schema.primary_key == ("id",) and table.chunk_key == ("id",)
    assert table.natives[7].charset == "latin1" and table.natives[9].data_type == "point"


def test_mysql_minimal_table_map():
    tm = parse_table_map(MYSQL_MINIMAL)
    assert (tm.db, tm.table) == ("tpcc2", "warehouse") and not tm.full
    assert tm.metas[1] >> 8 == 12 and tm.metas[1] & 0xFF == 2 and tm.metas[3] == 10
    assert tm.unsigned == [False] * 9
    assert tm.collations == [None, None, None, 47, 47, 47, 47, 47, 47]
    assert tm.nullable == [False] + [True] * 8
