"""Type coverage: edge values of every supported type, read by the snapshot and by the binlog,
must give identical rows (and the known mysql-replication 1.0.17 faults must not show)."""
from __future__ import annotations

import datetime as dt
import json
import struct
from decimal import Decimal

import pytest

from sources.mysql.catalog import describe
from tests.integration.mysql.helpers import Running, new_database, source_config

pytestmark = [pytest.mark.integration, pytest.mark.mysql]

COLUMNS = """
  id INT PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED, mi MEDIUMINT,
  miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  d DECIMAL(65,30), d2 DECIMAL(12,2), f FLOAT, dbl DOUBLE, b1 BIT(1), b64 BIT(64),
  c CHAR(10), vc VARCHAR(100), tx TEXT, bn BINARY(16), vb VARBINARY(20), bl BLOB,
  dte DATE, tm TIME(6), tm3 TIME(3), tm1 TIME(1), dt0 DATETIME, dt6 DATETIME(6),
  ts0 TIMESTAMP NULL, ts3 TIMESTAMP(3) NULL, yr YEAR, js JSON, en ENUM('a','b','c'),
  st SET('x','y','z'), geo GEOMETRY, gs GEOMETRY
"""
NAMES = ["id", "ti", "tiu", "si", "siu", "mi", "miu", "i", "iu", "bi", "biu", "d", "d2", "f", "dbl",
         "b1", "b64", "c", "vc", "tx", "bn", "vb", "bl", "dte", "tm", "tm3", "tm1", "dt0", "dt6",
         "ts0", "ts3", "yr", "js", "en", "st", "geo", "gs"]
ROWS = [
    "(%d, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295, "
    "-9223372036854775808, 18446744073709551615, "
    "'-99999999999999999999999999999999999.999999999999999999999999999999', -9999999999.99, "
    "-3.40282e38, -1.7976931348623157e308, b'1', b'1111111111111111111111111111111111111111111111111111111111111111', "
    "'abc', 'héllo wörld 😀', REPEAT('x', 300), UNHEX('00112233445566778899AABBCCDDEE00'), "
    "UNHEX('0000'), UNHEX('00FF00'), '1000-01-01', '-838:59:59.000000', '-00:00:01.500', "
    "'-00:00:00.1', '1000-01-01 00:00:00', '9999-12-31 23:59:59.999999', '1970-01-01 00:00:01', "
    "'2038-01-19 03:14:07.999', 1901, '{\"k\": [1, 2.5, \"ü\"], \"n\": null}', 'c', 'x,z', "
    "ST_GeomFromText('POINT(1 2)'), ST_GeomFromText('POINT(3 4)', 4326))",
    "(%d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1.17549e-38, 2.2250738585072014e-308, b'0', b'0', "
    "'', '', '', UNHEX('01'), UNHEX('00'), '', '0000-00-00', '838:59:59', '00:00:00.001', "
    "'-00:00:01.9', '0000-00-00 00:00:00', '2024-02-29 12:00:00.000001', NULL, NULL, 0, '[]', 'a', '', NULL, NULL)",
    "(%d" + ", NULL" * (len(NAMES) - 1) + ")",
]


def test_snapshot_row_equals_binlog_row(mysql_server):
    db = new_database(mysql_server)
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")
        cur.execute(f"CREATE TABLE {db}.types ({COLUMNS})")
        for i, row in enumerate(ROWS):
            cur.execute(f"INSERT INTO {db}.types VALUES {row % (i + 1)}")
    with Running(source_config(mysql_server, db)) as run:
        run.wait_for(lambda ev: len(ev) >= len(ROWS))
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = ''")
            for i, row in enumerate(ROWS):
                cur.execute(f"INSERT INTO {db}.types VALUES {row % (101 + i)}")
            cur.execute(f"UPDATE {db}.types SET vc = 'changed' WHERE id = 101")
        events = run.wait_for(lambda ev: len(ev) >= 2 * len(ROWS) + 1)
    snap = {e[2]: e[3:] for e in events if e[1] == "r"}
    binlog = {e[2] - 100: e[3:] for e in events if e[1] == "c"}
    assert set(snap) == {1, 2, 3}
    for k in snap:
        for name, a, b in zip(NAMES[1:], snap[k], binlog[k]):
            assert a == b, f"row {k} column {name}: snapshot {a!r} != binlog {b!r}"
    row = dict(zip(NAMES[1:], snap[1]))
    assert row["biu"] == Decimal("18446744073709551615")
    assert row["d"] == Decimal("-99999999999999999999999999999999999.999999999999999999999999999999")
    assert row["bn"] == bytes.fromhex("00112233445566778899AABBCCDDEE00")   # trailing zero kept
    assert row["tm"] == -dt.timedelta(hours=838, minutes=59, seconds=59)
    assert row["tm3"] == -dt.timedelta(seconds=1, milliseconds=500)          # negative TIME(3)
    assert row["tm1"] == -dt.timedelta(milliseconds=100)
    assert row["b64"] == b"\xff" * 8 and row["b1"] is True
    assert row["vc"] == "héllo wörld 😀"
    assert row["st"] == ["x", "z"] and row["en"] == "c"
    assert json.loads(row["js"]) is not None
    table = describe(conn, f"{db}.types", {})
    assert str(table.schema.column("js").type) == "JSON"  # MariaDB's JSON too, not STRING
    assert row["ts0"] == dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=dt.timezone.utc)
    assert row["geo"][:1] in (b"\x01", b"\x00") and len(row["geo"]) == 21   # WKB point
    # SRID 4326 kept as EWKB (the SRID flag in the type word, the SRID after it)
    assert row["gs"] == bytes.fromhex("0101000020e6100000") + struct.pack("<dd", 3, 4)
    # what the logical types can't tell, for Debezium's semantic names (Column.source_type)
    assert {n: table.schema.column(n).source_type for n in ("en", "st", "b1", "b64", "yr", "geo",
                                                          "i")} == {
        "en": "enum('a','b','c')", "st": "set('x','y','z')", "b1": None, "b64": "bit(64)",
        "yr": "year", "geo": "geometry", "i": None}
    zero = dict(zip(NAMES[1:], snap[2]))
    assert zero["dte"] is None and zero["dt0"] is None                       # zero dates -> NULL
    assert zero["bn"] == b"\x01" + b"\x00" * 15
    update = [e for e in events if e[1] == "u"]
    assert len(update) == 1 and update[0][2] == 101


def test_partial_row_image_is_an_error_not_nulls(mysql_server):
    db = new_database(mysql_server)
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {db}.p (id INT PRIMARY KEY, a INT, b VARCHAR(10))")
        cur.execute(f"INSERT INTO {db}.p VALUES (1, 1, 'one')")
    with Running(source_config(mysql_server, db)) as run:
        run.wait_for(lambda ev: len(ev) >= 1)
        with conn.cursor() as cur:
            cur.execute("SET SESSION binlog_row_image = 'MINIMAL'")
            cur.execute(f"UPDATE {db}.p SET a = 2 WHERE id = 1")
        run.thread.join(30)
    assert run.error is not None and "binlog_row_image" in str(run.error)
    assert not [e for e in run.store.rows() if e[1] == "u"]
