"""debezium-json writes what Debezium's MySQL connector writes with its default settings,
checked against the samples of Debezium's documentation ("How the MySQL connector maps data
types", "Data change events"), and under its other modes."""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from decimal import Decimal

import pytest

from formats.registry import resolve_message_format
from runtime.batch import ChangeBatch
from runtime.schema import Column, TableSchema
from runtime.types import T

UTC = dt.timezone.utc
SCHEMA = TableSchema("inventory.customers", (
    Column("id", T("INT"), False), Column("price", T("DECIMAL(10,2)")), Column("born", T("DATE")),
    Column("at", T("TIME(6)")), Column("dt0", T("TIMESTAMP(0)")), Column("dt6", T("TIMESTAMP(6)")),
    Column("ts", T("TIMESTAMP_LTZ(0)")), Column("ts3", T("TIMESTAMP_LTZ(3)")),
    Column("tags", T("ARRAY<STRING>")), Column("doc", T("JSON")), Column("name", T("VARCHAR(20)")),
    Column("blob", T("BYTES")), Column("big", T("DECIMAL(20,0)"))), ("id",))
ROW = (1004, Decimal("123.45"), dt.date(2018, 6, 20), dt.timedelta(hours=10, minutes=45,
                                                                   seconds=30, microseconds=123456),
       dt.datetime(2018, 6, 20, 6, 37, 3), dt.datetime(2018, 6, 20, 6, 37, 3, 5),
       dt.datetime(2018, 6, 20, 13, 37, 3, tzinfo=UTC),
       dt.datetime(2018, 6, 20, 13, 37, 3, 120000, tzinfo=UTC), ["a", "c"], '{"k":1}', "Anne",
       b"\x00\xff", Decimal("18446744073709551615"))


def _encode(options: dict | None = None, rows=(ROW,), ops="c", before=None, ts=1_529_476_623_456):
    fmt = resolve_message_format("debezium-json", options)
    enc = fmt.encoder()
    batch = ChangeBatch(SCHEMA, ops, rows=list(rows), before=before, ts_ms=ts)
    return fmt, enc.encode(batch, "t"), enc.encode_keys(batch, "t"), batch


def test_values_in_debeziums_default_encodings():
    _, values, keys, _ = _encode()
    env = json.loads(values[0])
    assert list(env) == ["before", "after", "source", "transaction", "op", "ts_ms", "ts_us",
                         "ts_ns"]
    after = env["after"]
    assert after == {
        "id": 1004,
        "price": "MDk=",  # 12345 (unscaled 123.45) as two big-endian bytes 0x30 0x39
        "born": 17702,  # days since the epoch
        "at": 38_730_123_456,  # MicroTime: adaptive_time_microseconds
        "dt0": 1_529_476_623_000,  # the documented DATETIME 2018-06-20 06:37:03
        "dt6": 1_529_476_623_000_005,  # MicroTimestamp
        "ts": "2018-06-20T13:37:03Z",  # the documented TIMESTAMP sample
        "ts3": "2018-06-20T13:37:03.120Z",
        "tags": "a,c",  # SET: comma-separated
        "doc": '{"k":1}',  # io.debezium.data.Json: the text as a string
        "name": "Anne", "blob": "AP8=",
        "big": "AP//////////",  # 2**64-1: nine bytes, a leading zero for the sign
    }
    assert env["op"] == "c" and env["before"] is None and env["transaction"] is None
    assert (env["ts_ms"], env["ts_us"], env["ts_ns"]) == (
        1_529_476_623_456, 1_529_476_623_456_000, 1_529_476_623_456_000_000)
    assert env["source"] == {
        "version": env["source"]["version"], "connector": "mysql", "name": "hub",
        "ts_ms": 1_529_476_623_456, "snapshot": "false", "db": "inventory", "sequence": None,
        "ts_us": 1_529_476_623_456_000, "ts_ns": 1_529_476_623_456_000_000,
        "table": "customers", "server_id": 0, "gtid": None, "file": "", "pos": 0, "row": 0,
        "thread": None, "query": None}
    assert env["source"]["version"].startswith("cdc-hub")
    assert json.loads(keys[0]) == {"id": 1004}


def test_schema_part_names_debeziums_semantic_types():
    _, values, keys, _ = _encode({"schema-include": True, "source-name": "dbserver1"})
    msg = json.loads(values[0])
    part = msg["schema"]
    assert part["name"] == "dbserver1.inventory.customers.Envelope"
    fields = {f["field"]: f for f in part["fields"]}
    assert list(fields) == ["before", "after", "source", "transaction", "op", "ts_ms", "ts_us",
                            "ts_ns"]
    assert fields["source"]["name"] == "io.debezium.connector.mysql.Source"
    after = {f["field"]: f for f in fields["after"]["fields"]}
    assert fields["after"]["name"] == "dbserver1.inventory.customers.Value"
    named = {k: (f["type"], f.get("name")) for k, f in after.items()}
    assert named == {
        "id": ("int32", None),
        "price": ("bytes", "org.apache.kafka.connect.data.Decimal"),
        "born": ("int32", "io.debezium.time.Date"),
        "at": ("int64", "io.debezium.time.MicroTime"),
        "dt0": ("int64", "io.debezium.time.Timestamp"),
        "dt6": ("int64", "io.debezium.time.MicroTimestamp"),
        "ts": ("string", "io.debezium.time.ZonedTimestamp"),
        "ts3": ("string", "io.debezium.time.ZonedTimestamp"),
        "tags": ("string", "io.debezium.data.EnumSet"),
        "doc": ("string", "io.debezium.data.Json"),
        "name": ("string", None), "blob": ("bytes", None),
        "big": ("bytes", "org.apache.kafka.connect.data.Decimal")}
    assert after["price"]["parameters"]["scale"] == "2"
    assert after["price"]["parameters"]["connect.decimal.precision"] == "10"
    assert after["id"]["optional"] is False
    key = json.loads(keys[0])
    assert key["schema"]["name"] == "dbserver1.inventory.customers.Key"
    assert key["payload"] == {"id": 1004}
    assert msg["payload"]["source"]["name"] == "dbserver1"


def test_snapshot_reads_updates_and_deletes():
    old = ROW[:10] + ("Old",) + ROW[11:]
    _, values, _, _ = _encode(rows=[ROW, ROW, ROW], ops="rud", before=[None, old, None])
    r, u, d = (json.loads(v) for v in values)
    assert r["op"] == "r" and r["source"]["snapshot"] == "true"
    assert u["op"] == "u" and u["before"]["name"] == "Old" and u["after"]["name"] == "Anne"
    assert u["source"]["snapshot"] == "false"
    assert d["op"] == "d" and d["after"] is None and d["before"]["id"] == 1004


@pytest.mark.parametrize("mode,price,big", [("string", "123.45", "18446744073709551615"),
                                            ("double", 123.45, 1.8446744073709552e19)])
def test_decimal_handling_modes(mode, price, big):
    _, values, _, _ = _encode({"decimal.handling.mode": mode})
    after = json.loads(values[0])["after"]
    assert (after["price"], after["big"]) == (price, big)


def test_connect_time_precision_mode_writes_millis_and_refuses_to_round():
    schema_rows = [ROW[:3] + (dt.timedelta(hours=1),) + ROW[4:5] + (dt.datetime(2018, 1, 1),)
                   + ROW[6:]]
    _, values, _, _ = _encode({"time.precision.mode": "connect", "schema-include": True},
                              rows=schema_rows)
    msg = json.loads(values[0])
    assert msg["payload"]["after"]["at"] == 3_600_000
    after = {f["field"]: f for f in msg["schema"]["fields"][1]["fields"]}
    assert after["at"]["name"] == "org.apache.kafka.connect.data.Time"
    assert after["dt6"]["name"] == "org.apache.kafka.connect.data.Timestamp"
    with pytest.raises(ValueError, match="column 'at'"):
        _encode({"time.precision.mode": "connect"})  # 10:45:30.123456: no millis form


def test_set_member_with_a_comma_is_an_error_naming_the_column():
    row = ROW[:8] + (["a,b"],) + ROW[9:]
    with pytest.raises(ValueError, match="column 'tags'.*comma"):
        _encode(rows=[row])


@pytest.mark.parametrize("options", [
    {}, {"schema-include": True}, {"decimal-handling-mode": "string"},
    {"time-precision-mode": "adaptive", "schema-include": True}])
def test_reader_reads_what_the_writer_wrote(options):
    fmt, values, keys, batch = _encode(options)
    reader = resolve_message_format("debezium-json", {
        **options, **({} if options.get("schema-include") else {
            "columns": {c.name: str(c.type) for c in SCHEMA.columns}, "primary-key": ["id"]})})
    out = reader.decoder().decode(keys, values, [0], "t")
    assert out.bad == []
    assert out.elements[0].rows() == batch.rows()
    if options.get("schema-include"):
        assert out.elements[0].schema == SCHEMA


@pytest.mark.parametrize("type_", ["DECIMAL(20,0)", "DECIMAL(40,0)"])
def test_decimal_bytes_are_javas_minimal_twos_complement_also_for_slices(type_):
    import base64

    import pyarrow as pa

    from formats.codec.debezium_encoding import _decimal_base64
    from runtime.types import to_arrow

    values = [0, 1, -1, 127, 128, -128, -129, 255, -256, 32767, 32768, 8388608, -2**63,
              2**63 - 1, 2**63, 10**19, -(10**19), 99999999999999999999]
    for start in (0, 1, 5):
        arr = pa.array([Decimal(v) for v in values] + [None], to_arrow(T(type_))).slice(start)
        expected = [base64.b64encode(v.to_bytes((v if v >= 0 else ~v).bit_length() // 8 + 1,
                                                "big", signed=True)).decode()
                    for v in values[start:]] + [None]
        assert _decimal_base64(arr).to_pylist() == expected


def test_zoned_timestamps_keep_the_columns_digits_and_nulls():
    import pyarrow as pa

    from formats.codec.debezium_encoding import _zoned_text

    vals = [dt.datetime(2018, 6, 20, 13, 37, 3, 120000, tzinfo=UTC), None,
            dt.datetime(12, 1, 1, tzinfo=UTC), dt.datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)]
    arr = pa.array(vals, pa.timestamp("us", "UTC"))
    assert _zoned_text(arr, 3).to_pylist() == [
        "2018-06-20T13:37:03.120Z", None, "0012-01-01T00:00:00.000Z", "1969-12-31T23:59:59.000Z"]
    assert _zoned_text(arr.slice(2), 0).to_pylist() == ["0012-01-01T00:00:00Z",
                                                        "1969-12-31T23:59:59Z"]
    with pytest.raises(ValueError, match="more fractional digits than TIMESTAMP\\(0\\)"):
        _zoned_text(arr, 0)


# the envelopes the hub wrote before it wrote Debezium's encodings (files in existing lakes)
OLD_HUB_VALUE = (
    '{"schema":{"type":"struct","optional":false,"name":"hub.shop.items.Envelope","fields":[{'
    '"type":"struct","optional":true,"name":"hub.shop.items.Value","fields":[{"type":"int64",'
    '"optional":false,"field":"id"},{"type":"string","optional":true,"field":"dec","parameter'
    's":{"hub.logical-type":"DECIMAL(12,3)"}},{"type":"string","optional":true,"field":"day",'
    '"parameters":{"hub.logical-type":"DATE"}},{"type":"string","optional":true,"field":"t","'
    'parameters":{"hub.logical-type":"TIME(6)"}},{"type":"string","optional":true,"field":"ts'
    '","parameters":{"hub.logical-type":"TIMESTAMP(6)"}},{"type":"string","optional":true,"fi'
    'eld":"lts","name":"io.debezium.time.ZonedTimestamp","parameters":{"hub.logical-type":"TI'
    'MESTAMP_LTZ(6)"}},{"type":"string","optional":true,"field":"j","name":"io.debezium.data.'
    'Json","parameters":{"hub.logical-type":"JSON"}},{"type":"array","optional":true,"field":'
    '"arr","items":{"type":"string","optional":true},"parameters":{"hub.logical-type":"ARRAY<'
    'STRING>"}},{"type":"bytes","optional":true,"field":"bin","parameters":{"hub.logical-type'
    '":"BINARY(2)"}}],"field":"before"},{"type":"struct","optional":true,"name":"hub.shop.ite'
    'ms.Value","fields":[{"type":"int64","optional":false,"field":"id"},{"type":"string","opt'
    'ional":true,"field":"dec","parameters":{"hub.logical-type":"DECIMAL(12,3)"}},{"type":"st'
    'ring","optional":true,"field":"day","parameters":{"hub.logical-type":"DATE"}},{"type":"s'
    'tring","optional":true,"field":"t","parameters":{"hub.logical-type":"TIME(6)"}},{"type":'
    '"string","optional":true,"field":"ts","parameters":{"hub.logical-type":"TIMESTAMP(6)"}},'
    '{"type":"string","optional":true,"field":"lts","name":"io.debezium.time.ZonedTimestamp",'
    '"parameters":{"hub.logical-type":"TIMESTAMP_LTZ(6)"}},{"type":"string","optional":true,"'
    'field":"j","name":"io.debezium.data.Json","parameters":{"hub.logical-type":"JSON"}},{"ty'
    'pe":"array","optional":true,"field":"arr","items":{"type":"string","optional":true},"par'
    'ameters":{"hub.logical-type":"ARRAY<STRING>"}},{"type":"bytes","optional":true,"field":"'
    'bin","parameters":{"hub.logical-type":"BINARY(2)"}}],"field":"after"},{"type":"struct","'
    'optional":false,"field":"source","fields":[{"type":"string","optional":false,"field":"co'
    'nnector"},{"type":"string","optional":true,"field":"db"},{"type":"string","optional":tru'
    'e,"field":"table"}]},{"type":"string","optional":false,"field":"op"},{"type":"int64","op'
    'tional":true,"field":"ts_ms"}]},"payload":{"before":null,"after":{"id":1,"dec":"-12.345"'
    ',"day":"2024-02-29","t":"-838:00:00.000000","ts":"2024-01-02T03:04:05.000006","lts":"202'
    '4-01-02T03:04:05.000006Z","j":"{\\"k\\":[1,\\"x\\"]}","arr":["a","b,c"],"bin":"AAE="},"sourc'
    'e":{"connector": "hub", "db": "shop", "table": "items"},"op":"c","ts_ms":10}}')
OLD_HUB_KEY = (
    '{"schema":{"type":"struct","optional":true,"name":"hub.shop.items.Key","fields":[{"type"'
    ':"int64","optional":false,"field":"id"}]},"payload":{"id":1}}')


def test_envelopes_the_hub_wrote_before_are_still_read():
    fmt = resolve_message_format("debezium-json")
    out = fmt.decoder().decode([OLD_HUB_KEY.encode()], [OLD_HUB_VALUE.encode()], [0], "t")
    assert out.bad == []
    (batch,) = out.elements
    assert [str(c.type) for c in batch.schema.columns] == [
        "BIGINT", "DECIMAL(12,3)", "DATE", "TIME(6)", "TIMESTAMP(6)", "TIMESTAMP_LTZ(6)", "JSON",
        "ARRAY<STRING>", "BINARY(2)"]
    assert batch.rows() == [(1, Decimal("-12.345"), dt.date(2024, 2, 29), dt.timedelta(hours=-838),
                             dt.datetime(2024, 1, 2, 3, 4, 5, 6),
                             dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC), '{"k":[1,"x"]}',
                             ["a", "b,c"], b"\x00\x01")]


@pytest.mark.parametrize("schema_include", [True, False])
def test_nanosecond_columns_round_trip_as_nano_types(schema_include):
    import pyarrow as pa

    schema = TableSchema("db.n", (Column("id", T("INT"), False), Column("t", T("TIME(9)")),
                                  Column("ts", T("TIMESTAMP(9)"))), ("id",))
    rb = pa.RecordBatch.from_arrays(
        [pa.array([1, 2], pa.int32()), pa.array([-1_000_000_001, None], pa.duration("ns")),
         pa.array([1_529_476_623_123_456_789, -1], pa.timestamp("ns"))],
        schema=schema.arrow_schema)
    batch = ChangeBatch(schema, "cc", arrow=rb, ts_ms=0)
    options = {"schema-include": True} if schema_include else {
        "columns": {"id": "INT", "t": "TIME(9)", "ts": "TIMESTAMP(9)"}, "primary-key": ["id"]}
    fmt = resolve_message_format("debezium-json", options)
    enc = fmt.encoder()
    values = enc.encode(batch, "t")
    msg = json.loads(values[0])
    after = msg["payload"]["after"] if schema_include else msg["after"]
    assert after == {"id": 1, "t": -1_000_000_001, "ts": 1_529_476_623_123_456_789}
    if schema_include:
        names = [f.get("name") for f in msg["schema"]["fields"][1]["fields"]]
        assert names == [None, "io.debezium.time.NanoTime", "io.debezium.time.NanoTimestamp"]
    out = fmt.decoder().decode(enc.encode_keys(batch, "t"), values, [0, 0], "t")
    assert out.bad == [] and out.elements[0].arrow().equals(rb)


# MySQL's own types the logical types can't tell apart: the column's source_type carries them
# (formats.mysqltypes.source_type) from the MySQL source to the writer.
_POINT_WKB = bytes.fromhex("0101000000000000000000f03f0000000000000040")  # POINT(1 2)
_LINE_WKB = bytes.fromhex("010200000002000000" + "00" * 16 + "000000000000f03f" * 2)
_LINE_EWKB_4326 = bytes.fromhex("0102000020e610000002000000" + "00" * 16
                                + "000000000000f03f" * 2)  # the same line with SRID 4326
MYSQL_SCHEMA = TableSchema("inventory.things", (
    Column("id", T("INT"), False),
    Column("size", T("STRING"), source_type="enum('S','M','L')"),
    Column("tags", T("ARRAY<STRING>"), source_type="set('a','b')"),
    Column("flags", T("BYTES"), source_type="bit(12)"),
    Column("yr", T("INT"), source_type="year"),
    Column("shape", T("BYTES"), source_type="linestring"),
    Column("spot", T("BYTES"), source_type="point")), ("id",))
MYSQL_ROW = (1, "M", ["a"], b"\x0a\xbc", 2024, _LINE_EWKB_4326, _POINT_WKB)


def _mysql_encode(options=None, rows=(MYSQL_ROW,)):
    fmt = resolve_message_format("debezium-json", options)
    batch = ChangeBatch(MYSQL_SCHEMA, "c" * len(rows), rows=list(rows), ts_ms=1)
    enc = fmt.encoder()
    return enc.encode(batch, "t"), enc.encode_keys(batch, "t"), batch


def test_enum_bits_year_and_geometries_get_debeziums_semantic_names_and_encodings():
    """Before: ENUM, BIT(n) and geometries reached the writer as plain STRING/BYTES and were
    written without io.debezium.data.Enum / Bits / geometry.Geometry, BIT bytes in MySQL's
    order, the SRID lost.  Expected: Debezium's MySQL connector (MySqlValueConverters)."""
    values, _, _ = _mysql_encode({"schema-include": True})
    msg = json.loads(values[0])
    after = msg["payload"]["after"]
    assert after == {
        "id": 1, "size": "M", "tags": "a",
        "flags": "vAo=",  # BIT(12) b'1010_1011_1100' little-endian: 0xbc 0x0a
        "yr": 2024,
        "shape": {"wkb": base64.b64encode(_LINE_WKB).decode(), "srid": 4326},
        "spot": {"x": 1.0, "y": 2.0, "wkb": base64.b64encode(_POINT_WKB).decode(),
                 "srid": None},  # SRID 0: null, as Debezium's BinlogGeometry
    }
    fields = {f["field"]: f for f in msg["schema"]["fields"][1]["fields"]}
    assert fields["size"] == {"type": "string", "optional": True, "field": "size",
                              "name": "io.debezium.data.Enum", "version": 1,
                              "parameters": {"allowed": "S,M,L"}}
    assert fields["tags"]["name"] == "io.debezium.data.EnumSet"
    assert fields["tags"]["parameters"]["allowed"] == "a,b"
    assert fields["flags"] == {"type": "bytes", "optional": True, "field": "flags",
                               "name": "io.debezium.data.Bits", "version": 1,
                               "parameters": {"length": "12"}}
    assert fields["yr"] == {"type": "int32", "optional": True, "field": "yr",
                            "name": "io.debezium.time.Year", "version": 1}
    assert fields["shape"] == {
        "type": "struct", "optional": True, "field": "shape", "version": 1, "doc": "Geometry",
        "name": "io.debezium.data.geometry.Geometry",
        "fields": [{"type": "bytes", "optional": False, "field": "wkb"},
                   {"type": "int32", "optional": True, "field": "srid"}]}
    assert fields["spot"]["name"] == "io.debezium.data.geometry.Point"
    assert [f["field"] for f in fields["spot"]["fields"]] == ["x", "y", "wkb", "srid"]


def test_enum_bits_year_and_geometries_round_trip_with_their_source_types():
    values, keys, batch = _mysql_encode({"schema-include": True},
                                        rows=[MYSQL_ROW, (2,) + (None,) * 6])
    out = resolve_message_format("debezium-json", {}).decoder().decode(keys, values, [0, 0], "t")
    assert out.bad == []
    # Debezium names every geometry but POINT io.debezium.data.geometry.Geometry: the subtype
    # comes back as "geometry"
    shape = MYSQL_SCHEMA.column("shape")
    assert out.elements[0].schema == MYSQL_SCHEMA.with_columns(tuple(
        dataclasses.replace(c, source_type="geometry") if c is shape else c
        for c in MYSQL_SCHEMA.columns))
    assert out.elements[0].rows() == batch.rows()  # the SRID too


def test_tinyint_is_int16_as_debezium_writes_it_and_reads_back_as_tinyint():
    """Debezium writes MySQL's TINYINT as INT16 (it may be unsigned); before: int8."""
    schema = TableSchema("d.t", (Column("id", T("INT"), False), Column("tiny", T("TINYINT"))),
                         ("id",))
    fmt = resolve_message_format("debezium-json", {"schema-include": True})
    batch = ChangeBatch(schema, "c", rows=[(1, -128)], ts_ms=1)
    enc = fmt.encoder()
    values, keys = enc.encode(batch, "t"), enc.encode_keys(batch, "t")
    field = json.loads(values[0])["schema"]["fields"][1]["fields"][1]
    assert (field["type"], field["parameters"]["hub.logical-type"]) == ("int16", "TINYINT")
    out = fmt.decoder().decode(keys, values, [0], "t")
    assert out.elements[0].schema == schema and out.elements[0].rows() == [(1, -128)]
