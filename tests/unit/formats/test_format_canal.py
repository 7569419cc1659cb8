"""canal-json against messages in the shape Canal documents (flat messages: every value a
string, ``old`` holding changed values, DDL messages), and our encoder round-tripping."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from formats.registry import resolve_message_format
from runtime.batch import ChangeBatch
from tests.unit.formats.test_format_debezium import ROWS, SCHEMA

MYSQL_TYPES = {"id": "int(11)", "name": "varchar(255)", "price": "decimal(10,2)",
               "weight": "float", "big": "bigint(20) unsigned", "flag": "bit(1)",
               "born": "date", "at": "datetime(3)", "lts": "timestamp(6)", "dur": "time",
               "tags": "set('a','b','c')", "doc": "json", "bin": "varbinary(4)",
               "color": "enum('red','green')", "yr": "year"}


def canal(kind: str, data: list[dict] | None, old: list[dict] | None = None, **extra) -> bytes:
    msg = {"data": data, "database": "inventory", "es": 1589373560000, "id": 9,
           "isDdl": False, "mysqlType": MYSQL_TYPES, "old": old, "pkNames": ["id"],
           "sql": "", "sqlType": {k: 4 for k in MYSQL_TYPES}, "table": "products",
           "ts": 1589373560798, "type": kind}
    msg.update(extra)
    return json.dumps(msg).encode()


ROW = {"id": "111", "name": "scooter", "price": "3.14", "weight": "5.5",
       "big": "18446744073709551615", "flag": "1", "born": "2020-05-13",
       "at": "2020-05-13 12:38:21.123", "lts": "2020-05-13 12:38:21.123456",
       "dur": "-838:59:59", "tags": "a,c", "doc": "{\"k\": 1}", "bin": "\u00ff\u0001",
       "color": "red", "yr": "2020"}


def decode(values):
    d = resolve_message_format("canal-json").decoder()
    return d.decode([None] * len(values), values, [0] * len(values), "canal")


def test_insert_with_every_mysql_type_as_canal_writes_them():
    out = decode([canal("INSERT", [ROW])])
    assert out.bad == []
    (b,) = out.elements
    assert b.table == "inventory.products" and b.schema.primary_key == ("id",)
    assert [str(c.type) for c in b.schema.columns] == [
        "INT", "VARCHAR(255)", "DECIMAL(10,2)", "FLOAT", "DECIMAL(20,0)", "BOOLEAN", "DATE",
        "TIMESTAMP(3)", "TIMESTAMP_LTZ(6)", "TIME(0)", "ARRAY<STRING>", "JSON", "VARBINARY(4)",
        "STRING", "INT"]
    assert b.rows() == [(111, "scooter", Decimal("3.14"), 5.5, Decimal("18446744073709551615"),
                         True, dt.date(2020, 5, 13), dt.datetime(2020, 5, 13, 12, 38, 21, 123000),
                         dt.datetime(2020, 5, 13, 12, 38, 21, 123456, tzinfo=dt.timezone.utc),
                         -dt.timedelta(hours=838, minutes=59, seconds=59), ["a", "c"],
                         "{\"k\": 1}", b"\xff\x01", "red", 2020)]
    assert b.ts_ms_list() == [1589373560000]


def test_multi_row_update_and_delete():
    r2 = {**ROW, "id": "112", "name": "car"}
    up = canal("UPDATE", [{**ROW, "weight": "6.5"}, {**r2, "weight": "1"}],
               old=[{"weight": "5.5"}, {"weight": "2"}])
    out = decode([canal("INSERT", [ROW, r2]), up, canal("DELETE", [r2])])
    (b,) = out.elements
    assert b.ops == "ccuud"
    assert [r[3] for r in b.rows()] == [5.5, 5.5, 6.5, 1.0, 5.5]
    assert b.before[2][3] == 5.5 and b.before[3][3] == 2.0 and b.before[3][0] == 112
    assert out.indexes == [[0, 0, 1, 1, 2]]


def test_ddl_messages_and_schema_change_seen_in_the_next_row():
    types2 = {**MYSQL_TYPES, "extra": "varchar(10)"}
    alter = json.dumps({"data": None, "database": "inventory", "table": "products",
                        "isDdl": True, "type": "ALTER", "es": 1, "ts": 1,
                        "sql": "ALTER TABLE products ADD COLUMN extra varchar(10)",
                        "mysqlType": None, "pkNames": None, "old": None}).encode()
    truncate = json.dumps({"data": None, "database": "inventory", "table": "products",
                           "isDdl": True, "type": "TRUNCATE", "es": 2, "ts": 2,
                           "sql": "TRUNCATE products"}).encode()
    erase = json.dumps({"data": None, "database": "inventory", "table": "products",
                        "isDdl": True, "type": "ERASE", "es": 3, "ts": 3,
                        "sql": "DROP TABLE products"}).encode()
    out = decode([canal("INSERT", [ROW]), alter,
                  canal("INSERT", [{**ROW, "id": "2", "extra": "x"}], mysqlType=types2),
                  truncate, erase])
    kinds = [getattr(e, "kind", "batch") for e in out.elements]
    assert kinds == ["batch", "add_column", "batch", "truncate_table", "drop_table"]
    assert out.elements[2].rows()[0][-1] == "x"


def test_bad_values_name_the_table_and_column():
    out = decode([canal("INSERT", [ROW]), canal("INSERT", [{**ROW, "price": "abc"}]),
                  b"[1, 2]"])
    assert [i for i, _ in out.bad] == [1, 2]
    assert "inventory.products" in out.bad[0][1] and "price" in out.bad[0][1]
    assert len(out.elements[0]) == 1


def test_encoder_round_trips():
    fmt = resolve_message_format("canal-json")
    schema = SCHEMA.with_columns(tuple(c for c in SCHEMA.columns if c.name != "arr"))
    rows = [r[:-1] for r in ROWS]
    batch = ChangeBatch(schema, "cu", rows=rows, before=[None, rows[0]], ts_ms=[5, 6])
    values = fmt.encoder().encode(batch, "t")
    assert json.loads(values[1])["type"] == "UPDATE"
    (back,) = fmt.decoder().decode([None, None], values, [0, 0], "t").elements
    assert back.rows() == rows and back.ops == "cu" and back.before[1] == rows[0]
    assert [str(c.type) for c in back.schema.columns] == [str(c.type) for c in schema.columns]
