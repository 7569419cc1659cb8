"""debezium-json against messages in the shapes Debezium documents (MySQL connector, Kafka
Connect JsonConverter with and without schemas), and our encoder round-tripping every type."""
from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Decimal

import pytest

from formats.registry import resolve_message_format
from runtime.batch import ChangeBatch
from runtime.schema import Column, TableSchema
from runtime.types import T

KEY = json.dumps({"schema": {"type": "struct", "name": "dbserver1.inventory.customers.Key",
                             "optional": False,
                             "fields": [{"field": "id", "type": "int32", "optional": False}]},
                  "payload": {"id": 1004}}).encode()

ROW_FIELDS = [
    {"field": "id", "type": "int32", "optional": False},
    {"field": "tiny", "type": "int8", "optional": True},
    {"field": "small", "type": "int16", "optional": True},
    {"field": "big", "type": "int64", "optional": True},
    {"field": "f", "type": "float", "optional": True},
    {"field": "d", "type": "double", "optional": True},
    {"field": "flag", "type": "boolean", "optional": True},
    {"field": "email", "type": "string", "optional": False},
    {"field": "blob", "type": "bytes", "optional": True},
    {"field": "price", "type": "bytes", "optional": True,
     "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
     "parameters": {"scale": "2", "connect.decimal.precision": "10"}},
    {"field": "born", "type": "int32", "optional": True, "name": "io.debezium.time.Date"},
    {"field": "dt3", "type": "int64", "optional": True, "name": "io.debezium.time.Timestamp"},
    {"field": "dt6", "type": "int64", "optional": True,
     "name": "io.debezium.time.MicroTimestamp"},
    {"field": "zts", "type": "string", "optional": True,
     "name": "io.debezium.time.ZonedTimestamp"},
    {"field": "t6", "type": "int64", "optional": True, "name": "io.debezium.time.MicroTime"},
    {"field": "doc", "type": "string", "optional": True, "name": "io.debezium.data.Json"},
    {"field": "color", "type": "string", "optional": True, "name": "io.debezium.data.Enum",
     "parameters": {"allowed": "red,green"}},
    {"field": "tags", "type": "string", "optional": True, "name": "io.debezium.data.EnumSet",
     "parameters": {"allowed": "a,b,c"}},
    {"field": "bits", "type": "bytes", "optional": True, "name": "io.debezium.data.Bits",
     "parameters": {"length": "12"}},
    {"field": "yr", "type": "int32", "optional": True, "name": "io.debezium.time.Year"},
    {"field": "geo", "type": "struct", "optional": True,
     "name": "io.debezium.data.geometry.Geometry",
     "fields": [{"field": "wkb", "type": "bytes", "optional": False},
                {"field": "srid", "type": "int32", "optional": True}]},
    {"field": "vsd", "type": "struct", "optional": True,
     "name": "io.debezium.data.VariableScaleDecimal",
     "fields": [{"field": "scale", "type": "int32", "optional": False},
                {"field": "value", "type": "bytes", "optional": False}]},
]


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


ROW = {"id": 1004, "tiny": -1, "small": 300, "big": 2**40, "f": 1.5, "d": 2.25, "flag": True,
       "email": "annek@noanswer.org", "blob": b64(b"\x00\xff"),
       "price": b64((12345).to_bytes(2, "big", signed=True)),  # 123.45
       "born": 19000, "dt3": 1_700_000_000_123, "dt6": 1_700_000_000_123_456,
       "zts": "2023-11-14T22:13:20.123456Z", "t6": -3_600_000_001,
       "doc": "{\"a\": [1, 2]}", "color": "red", "tags": "a,c", "bits": b64(b"\x0f\x01"),
       "yr": 2024, "geo": {"wkb": b64(b"\x01\x01\x00\x00\x00"), "srid": None},
       "vsd": {"scale": 3, "value": b64((-1500).to_bytes(2, "big", signed=True))}}

EXPECTED = (1004, -1, 300, 2**40, 1.5, 2.25, True, "annek@noanswer.org", b"\x00\xff",
            Decimal("123.45"), dt.date(2022, 1, 8), dt.datetime(2023, 11, 14, 22, 13, 20, 123000),
            dt.datetime(2023, 11, 14, 22, 13, 20, 123456),
            dt.datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=dt.timezone.utc),
            -dt.timedelta(hours=1, microseconds=1), "{\"a\": [1, 2]}", "red", ["a", "c"],
            b"\x01\x0f", 2024, b"\x01\x01\x00\x00\x00", Decimal("-1.500"))  # BIT: reversed


def envelope(op: str, before: dict | None, after: dict | None, schema: bool = True) -> bytes:
    payload = {"before": before, "after": after,
               "source": {"version": "2.5.0.Final", "connector": "mysql", "name": "dbserver1",
                          "ts_ms": 1_700_000_000_000, "snapshot": "false", "db": "inventory",
                          "table": "customers", "server_id": 223344, "file": "mysql-bin.000003",
                          "pos": 154, "row": 0},
               "op": op, "ts_ms": 1_700_000_000_500, "transaction": None}
    if not schema:
        return json.dumps(payload).encode()
    row = {"type": "struct", "optional": True, "name": "dbserver1.inventory.customers.Value",
           "fields": ROW_FIELDS}
    part = {"type": "struct", "optional": False,
            "name": "dbserver1.inventory.customers.Envelope", "fields": [
                {**row, "field": "before"}, {**row, "field": "after"},
                {"type": "struct", "field": "source", "optional": False, "fields": []},
                {"type": "string", "field": "op", "optional": False},
                {"type": "int64", "field": "ts_ms", "optional": True}]}
    return json.dumps({"schema": part, "payload": payload}).encode()


def decode(values, keys=None, options=None):
    d = resolve_message_format("debezium-json", options).decoder()
    keys = keys or [KEY] * len(values)
    return d.decode(keys, values, [0] * len(values), "dbserver1.inventory.customers")


def test_every_debezium_logical_type_with_the_schema_part():
    out = decode([envelope("c", None, ROW)])
    assert out.bad == []
    (batch,) = out.elements
    assert batch.table == "inventory.customers"
    assert batch.schema.primary_key == ("id",)
    assert [str(c.type) for c in batch.schema.columns] == [
        "INT", "TINYINT", "SMALLINT", "BIGINT", "FLOAT", "DOUBLE", "BOOLEAN", "STRING", "BYTES",
        "DECIMAL(10,2)", "DATE", "TIMESTAMP(3)", "TIMESTAMP(6)", "TIMESTAMP_LTZ(6)", "TIME(6)",
        "JSON", "STRING", "ARRAY<STRING>", "BYTES", "INT", "BYTES", "DECIMAL(65,30)"]
    assert batch.rows() == [EXPECTED]
    assert batch.ops == "c" and batch.ts_ms_list() == [1_700_000_000_000]


def test_update_delete_tombstone_and_snapshot_read():
    changed = {**ROW, "email": "new@x.org"}
    values = [envelope("r", None, ROW), envelope("u", ROW, changed), envelope("d", changed, None),
              None]
    out = decode(values)
    assert out.bad == []
    (batch,) = out.elements
    assert batch.ops == "rud"
    assert [r[7] for r in batch.rows()] == ["annek@noanswer.org", "new@x.org", "new@x.org"]
    assert batch.before[1][7] == "annek@noanswer.org" and batch.before[0] is None
    assert out.indexes == [[0, 1, 2]]  # the tombstone (index 3) carries no change


DECLARED = {"columns": {"id": "INT", "email": "STRING", "price": "DECIMAL(10,2)", "born": "DATE",
                        "at": "TIMESTAMP(3)", "t": "TIME(0)"}, "primary-key": ["id"]}


def test_without_schema_part_declared_columns_in_debeziums_default_encodings():
    row = {"id": 1, "email": "a@b", "price": b64((150).to_bytes(2, "big", signed=True)),
           "born": 19753, "at": 1_529_476_623_000, "t": 3_600_000_000}
    out = decode([envelope("c", None, row, schema=False)], keys=[b'{"id": 1}'],
                 options=DECLARED)
    assert out.bad == []
    assert out.elements[0].rows() == [(1, "a@b", Decimal("1.50"), dt.date(2024, 1, 31),
                                       dt.datetime(2018, 6, 20, 6, 37, 3), dt.timedelta(hours=1))]


def test_without_schema_part_declared_columns_in_text_and_string_mode():
    # decimal.handling.mode = string (Debezium's option name accepted as is); texts of dates
    # and times are unambiguous and pass in every mode
    row = {"id": 1, "email": "a@b", "price": "1.50", "born": "2024-01-31",
           "at": "2018-06-20T06:37:03", "t": "01:00:00"}
    out = decode([envelope("c", None, row, schema=False)], keys=[b'{"id": 1}'],
                 options={**DECLARED, "decimal.handling.mode": "string"})
    assert out.bad == []
    assert out.elements[0].rows() == [(1, "a@b", Decimal("1.50"), dt.date(2024, 1, 31),
                                       dt.datetime(2018, 6, 20, 6, 37, 3), dt.timedelta(hours=1))]
    # the same text under the default (precise) is not base64: one line naming the column
    bad = decode([envelope("c", None, row, schema=False)], keys=[b'{"id": 1}'], options=DECLARED)
    assert len(bad.bad) == 1 and "'price'" in bad.bad[0][1]


def test_schema_part_change_becomes_schema_change_events():
    first = envelope("c", None, ROW)
    fields = ROW_FIELDS + [{"field": "extra", "type": "string", "optional": True}]
    second = first.replace(json.dumps(ROW_FIELDS).encode(), json.dumps(fields).encode())
    assert second != first
    out = decode([first, second])
    kinds = [type(e).__name__ for e in out.elements]
    assert kinds == ["ChangeBatch", "SchemaChange", "ChangeBatch"]
    assert out.elements[1].kind == "add_column" and out.elements[1].details == {"column": "extra"}


def test_schema_history_topic_messages():
    ddl = {"source": {"server": "dbserver1", "ts_ms": 5}, "databaseName": "inventory",
           "ddl": "ALTER TABLE customers ADD COLUMN note VARCHAR(20)",
           "tableChanges": [{"type": "ALTER", "id": "\"inventory\".\"customers\"", "table": {
               "primaryKeyColumnNames": ["id"], "columns": [
                   {"name": "id", "typeName": "INT", "position": 1, "optional": False},
                   {"name": "price", "typeName": "DECIMAL", "length": 10, "scale": 2,
                    "position": 2, "optional": True},
                   {"name": "note", "typeName": "VARCHAR", "length": 20, "position": 3,
                    "optional": True},
                   {"name": "n", "typeName": "BIGINT UNSIGNED", "position": 4,
                    "optional": True}]}}]}
    create = json.loads(json.dumps(ddl))
    create["tableChanges"][0]["type"] = "CREATE"
    create["tableChanges"][0]["table"]["columns"] = create["tableChanges"][0]["table"]["columns"][:2]
    drop = {"source": {}, "tableChanges": [{"type": "DROP", "id": "\"inventory\".\"customers\""}]}
    out = decode([json.dumps(m).encode() for m in (create, ddl, drop)], keys=[None] * 3)
    assert [(e.kind, e.details.get("column")) for e in out.elements] == [
        ("create_table", None), ("add_column", "note"), ("add_column", "n"), ("drop_table", None)]
    assert [str(c.type) for c in out.elements[2].schema.columns] == [
        "INT", "DECIMAL(10,2)", "VARCHAR(20)", "DECIMAL(20,0)"]


def test_truncate_and_bad_messages_name_why():
    out = decode([b"{not json", json.dumps({"payload": {"op": "c"}, "schema": {}}).encode(),
                  json.dumps({"op": "t", "source": {"db": "inventory", "table": "customers"},
                              "ts_ms": 3}).encode()])
    assert [i for i, _ in out.bad] == [0, 1]
    assert "not a debezium-json message" in out.bad[0][1]
    assert out.elements[0].kind == "truncate_table"


SCHEMA = TableSchema("shop.items", (
    Column("id", T("BIGINT"), False), Column("b", T("BOOLEAN")), Column("i8", T("TINYINT")),
    Column("i16", T("SMALLINT")), Column("i32", T("INT")), Column("dec", T("DECIMAL(12,3)")),
    Column("f", T("FLOAT")), Column("dbl", T("DOUBLE")), Column("c", T("CHAR(3)")),
    Column("s", T("STRING")), Column("bin", T("BINARY(2)")), Column("by", T("BYTES")),
    Column("day", T("DATE")), Column("t", T("TIME(6)")), Column("ts", T("TIMESTAMP(6)")),
    Column("lts", T("TIMESTAMP_LTZ(6)")), Column("j", T("JSON")), Column("arr", T("ARRAY<STRING>"))),
    ("id",))
ROWS = [
    (1, True, -8, 300, -70000, Decimal("-12.345"), 1.5, 2.25, "abc", "h\u00e9\"llo\n", b"\x00\x01",
     b"\xff", dt.date(2024, 2, 29), dt.timedelta(hours=-838, minutes=-59, seconds=-59),
     dt.datetime(2024, 1, 2, 3, 4, 5, 6),
     dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc), '{"k":[1,"x"]}', ["a", "b"]),
    (2,) + (None,) * 17,
]


@pytest.mark.parametrize("schema_include", [True, False])
def test_encoder_round_trips_every_type(schema_include):
    fmt = resolve_message_format("debezium-json", {"schema-include": schema_include} if
                                 schema_include else {
        "columns": {c.name: str(c.type) for c in SCHEMA.columns}, "primary-key": ["id"]})
    batch = ChangeBatch(SCHEMA, "cd", rows=ROWS, ts_ms=[10, 20])
    enc = fmt.encoder()
    values = enc.encode(batch, "topic")
    keys = enc.encode_keys(batch, "topic")
    env = json.loads(values[1])
    env = env.get("payload", env)
    assert env["op"] == "d" and env["after"] is None and env["before"]["id"] == 2
    out = fmt.decoder().decode(keys, values, [0, 0], "topic")
    assert out.bad == []
    (back,) = out.elements
    assert back.table == "shop.items" and back.ops == "cd" and back.ts_ms_list() == [10, 20]
    assert back.schema.primary_key == ("id",)
    if schema_include:
        assert [c.type for c in back.schema.columns] == [c.type for c in SCHEMA.columns]
    assert back.rows() == ROWS


# -- silent corruption of the reader (issue 14) ------------------------------------------------
def _one_column(field: dict, value, schema: bool = True) -> bytes:
    """An insert of one row ``{"id": 1, "v": value}`` whose ``v`` has Connect schema ``field``."""
    fields = [{"field": "id", "type": "int32", "optional": False}, {**field, "field": "v"}]
    row = {"type": "struct", "optional": True, "name": "s.db.t.Value", "fields": fields}
    payload = {"before": None, "after": {"id": 1, "v": value}, "op": "c", "ts_ms": 1,
               "source": {"connector": "mysql", "db": "db", "table": "t", "ts_ms": 1}}
    if not schema:
        return json.dumps(payload).encode()
    return json.dumps({"schema": {"type": "struct", "fields": [
        {**row, "field": "before"}, {**row, "field": "after"}]}, "payload": payload}).encode()


def _unscaled_b64(n: int) -> str:
    return b64(n.to_bytes(n.bit_length() // 8 + 1, "big", signed=True))


@pytest.mark.parametrize("digits", [
    "12345678901234567890123456789012.345678",  # DECIMAL(38,6): 38 digits
    "-1.2345678901234567890123456789012345678",  # DECIMAL(38,37)
])
def test_decimals_are_decoded_exactly_beyond_28_digits(digits):
    d = Decimal(digits)
    scale = -d.as_tuple().exponent
    unscaled = int(d.scaleb(scale, context=__import__("decimal").Context(prec=80)))
    fixed = _one_column({"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal",
                         "parameters": {"scale": str(scale),
                                        "connect.decimal.precision": "38"}},
                        _unscaled_b64(unscaled))
    variable = _one_column({"type": "struct", "name": "io.debezium.data.VariableScaleDecimal",
                            "fields": [{"field": "scale", "type": "int32"},
                                       {"field": "value", "type": "bytes"}]},
                           {"scale": scale, "value": _unscaled_b64(unscaled)})
    out = decode([fixed], keys=[None])
    assert out.bad == [] and out.elements[0].rows() == [(1, d)]
    if scale <= 30:  # VariableScaleDecimal reads as DECIMAL(65,30)
        out = decode([variable], keys=[None])
        assert out.bad == [] and out.elements[0].rows() == [(1, d)]


def test_bits_are_debeziums_little_endian_bytes():
    # BIT(12) = b'0001 0000 0010' (0x102): Debezium writes the bytes little-endian (02 01),
    # MySQL and our BYTES columns hold them big-endian (01 02)
    msg = _one_column({"type": "bytes", "name": "io.debezium.data.Bits",
                       "parameters": {"length": "12"}}, b64(b"\x02\x01"))
    out = decode([msg], keys=[None])
    assert out.bad == [] and out.elements[0].rows() == [(1, b"\x01\x02")]


def test_set_text_without_schema_part_is_decoded_not_split_into_characters():
    msg = _one_column({}, "a,bc", schema=False)
    options = {"columns": {"id": "INT", "v": "ARRAY<STRING>"}, "primary-key": ["id"]}
    out = decode([msg], keys=[None], options=options)
    assert out.bad == [] and out.elements[0].rows() == [(1, ["a", "bc"])]
    empty = decode([_one_column({}, "", schema=False)], keys=[None], options=options)
    assert empty.elements[0].rows() == [(1, [])]


def test_array_column_value_that_is_no_set_text_is_rejected_naming_the_column():
    options = {"columns": {"id": "INT", "v": "ARRAY<STRING>"}, "primary-key": ["id"]}
    out = decode([_one_column({}, 12, schema=False)], keys=[None], options=options)
    assert len(out.bad) == 1 and "'v'" in out.bad[0][1], out.bad
