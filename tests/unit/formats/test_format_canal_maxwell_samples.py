"""canal-json and maxwell-json against their projects' documented samples, verbatim: the reader
reads them as the change they describe, and the writer writes them back (byte for byte where
the hub knows every field; the fields it cannot know are named in each test).

Samples:
* Canal: a FlatMessage from Canal's own issue tracker (alibaba/canal#2170, answered by its
  maintainer) and the UPDATE of Flink's canal-json documentation.
* Maxwell: the INSERT / UPDATE / DELETE of Maxwell's "Data format" page
  (zendesk/maxwell docs/docs/dataformat.md) and its Kafka key (zendesk/maxwell#146).
"""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from formats.registry import resolve_message_format
from runtime.batch import ChangeBatch
from runtime.schema import Column, TableSchema
from runtime.types import T

CANAL_INSERT = (
    '{"data":[{"id":"103","name_":"77","orders":"88","deml":"99"}],"database":"canal",'
    '"es":1567995973000,"id":421,"isDdl":false,"mysqlType":{"id":"bigint(14)",'
    '"name_":"varchar(255)","orders":"varchar(255)","deml":"varchar(255)"},"old":null,'
    '"pkNames":["id"],"sql":"","sqlType":{"id":-5,"name_":12,"orders":12,"deml":12},'
    '"table":"examplev1","ts":1567995973598,"type":"INSERT"}')
CANAL_UPDATE = (
    '{"data":[{"id":"111","name":"scooter","description":"Big 2-wheel scooter",'
    '"weight":"5.18"}],"database":"inventory","es":1589373560000,"id":9,"isDdl":false,'
    '"mysqlType":{"id":"INTEGER","name":"VARCHAR(255)","description":"VARCHAR(512)",'
    '"weight":"FLOAT"},"old":[{"weight":"5.15"}],"pkNames":["id"],"sql":"",'
    '"sqlType":{"id":4,"name":12,"description":12,"weight":7},"table":"products",'
    '"ts":1589373560798,"type":"UPDATE"}')


def _decode(fmt: str, values: list[str], keys=None):
    out = resolve_message_format(fmt, {}).decoder().decode(
        keys or [None] * len(values), [v.encode() for v in values], [0] * len(values), "t")
    assert out.bad == []
    return out.elements


def _encode(fmt: str, schema: TableSchema, ops: str, rows, before=None, ts=0):
    enc = resolve_message_format(fmt, {}).encoder()
    batch = ChangeBatch(schema, ops, rows=rows, before=before, ts_ms=ts)
    return [v.decode() for v in enc.encode(batch, "t")], enc.encode_keys(batch, "t")


# -- Canal ------------------------------------------------------------------------------------
CANAL_SCHEMA = TableSchema("canal.examplev1", (
    Column("id", T("BIGINT"), False), Column("name_", T("VARCHAR(255)")),
    Column("orders", T("VARCHAR(255)")), Column("deml", T("VARCHAR(255)"))), ("id",))
PRODUCTS = TableSchema("inventory.products", (
    Column("id", T("INT"), False), Column("name", T("VARCHAR(255)")),
    Column("description", T("VARCHAR(512)")), Column("weight", T("FLOAT"))), ("id",))


def test_canal_reader_reads_canals_samples():
    [insert] = _decode("canal-json", [CANAL_INSERT])
    assert insert.schema == CANAL_SCHEMA
    assert (insert.ops, insert.rows(), insert.ts_ms_list()) == (
        "c", [(103, "77", "88", "99")], [1567995973000])
    [update] = _decode("canal-json", [CANAL_UPDATE])
    assert update.schema == PRODUCTS
    assert update.ops == "u" and update.ts_ms_list() == [1589373560000]
    (row,), (before,) = update.rows(), update.before
    assert row[:3] == before[:3] == (111, "scooter", "Big 2-wheel scooter")
    assert (round(row[3], 5), round(before[3], 5)) == (5.18, 5.15)  # FLOAT: float32


def test_canal_writer_writes_canals_sample_verbatim():
    """Before: values as JSON numbers (Canal writes every value as a string), no ``id`` and
    no ``sqlType``, and ``old`` the whole row.  What the hub can't know: Canal's batch
    ``id`` (0), its ``ts`` (the time Canal read the binlog: the event time here, so that a
    replay writes the same bytes) and the display width in ``bigint(14)``."""
    [value], keys = _encode("canal-json", CANAL_SCHEMA, "c", [(103, "77", "88", "99")],
                            ts=1567995973000)
    expected = (CANAL_INSERT.replace('"id":421', '"id":0')
                .replace('"ts":1567995973598', '"ts":1567995973000')
                .replace('"bigint(14)"', '"bigint"'))
    assert value == expected
    assert keys == [b'{"id":103}']


def test_canal_writer_writes_only_the_changed_columns_into_old():
    [value], _ = _encode("canal-json", PRODUCTS, "u",
                         [(111, "scooter", "Big 2-wheel scooter", 5.18)],
                         before=[(111, "scooter", "Big 2-wheel scooter", 5.15)],
                         ts=1589373560000)
    got, sample = json.loads(value), json.loads(CANAL_UPDATE)
    # the sample's mysqlType is upper case (Flink's documentation; Canal writes MySQL's text)
    assert got.pop("mysqlType") == {"id": "int", "name": "varchar(255)",
                                    "description": "varchar(512)", "weight": "float"}
    sample.pop("mysqlType")
    assert got == {**sample, "id": 0, "ts": 1589373560000}
    assert _decode("canal-json", [value])[0].rows()[0][:3] == (111, "scooter",
                                                               "Big 2-wheel scooter")


def test_canal_bits_sets_and_enums_in_canals_forms():
    """BIT(n) is the unsigned integer of its bits in Canal (``LogEventConvert``), which the
    reader took for a boolean before (a BIT(12) became ``true``)."""
    schema = TableSchema("d.t", (
        Column("id", T("INT"), False), Column("b", T("BYTES"), source_type="bit(12)"),
        Column("b1", T("BOOLEAN")), Column("s", T("ARRAY<STRING>"), source_type="set('x','y')"),
        Column("e", T("STRING"), source_type="enum('a','b')")), ("id",))
    [value], _ = _encode("canal-json", schema, "c", [(1, b"\x0a\xbc", True, ["x", "y"], "b")])
    msg = json.loads(value)
    assert msg["data"] == [{"id": "1", "b": "2748", "b1": "1", "s": "x,y", "e": "b"}]
    assert msg["mysqlType"] == {"id": "int", "b": "bit(12)", "b1": "bit(1)",
                                "s": "set('x','y')", "e": "enum('a','b')"}
    assert msg["sqlType"] == {"id": 4, "b": -7, "b1": -7, "s": -2, "e": 4}
    [back] = _decode("canal-json", [value])
    assert back.rows() == [(1, b"\x0a\xbc", True, ["x", "y"], "b")]
    assert back.schema == schema


# -- Maxwell ----------------------------------------------------------------------------------
MAXWELL_INSERT = (
    '{"database":"test","table":"e","type":"insert","ts":1477053217,"xid":23396,'
    '"commit":true,"position":"master.000006:800911","server_id":23042,"thread_id":108,'
    '"data":{"id":1,"m":4.2341,"c":"2016-10-21 05:33:37.523000",'
    '"comment":"I am a creature of light."}}')
MAXWELL_UPDATE = (
    '{"database":"test","table":"e","type":"update","ts":1477053234,'
    '"data":{"id":1,"m":5.444,"c":"2016-10-21 05:33:54.631000",'
    '"comment":"I am a creature of light."},'
    '"old":{"m":4.2341,"c":"2016-10-21 05:33:37.523000"}}')
MAXWELL_DELETE = (
    '{"database":"test","table":"e","type":"delete","ts":1477053260,'
    '"data":{"id":1,"m":5.444,"c":"2016-10-21 05:33:54.631000",'
    '"comment":"I am a creature of light."}}')
#: the table of the samples: id int(10) primary key, m double, c timestamp(6), comment varchar
E = TableSchema("test.e", (Column("id", T("INT"), False), Column("m", T("DOUBLE")),
                           Column("c", T("TIMESTAMP_LTZ(6)")), Column("comment", T("STRING"))),
                ("id",))
UTC = dt.timezone.utc
ROW1 = (1, 4.2341, dt.datetime(2016, 10, 21, 5, 33, 37, 523000, tzinfo=UTC),
        "I am a creature of light.")
ROW2 = (1, 5.444, dt.datetime(2016, 10, 21, 5, 33, 54, 631000, tzinfo=UTC),
        "I am a creature of light.")


def test_maxwell_reader_reads_maxwells_samples():
    declared = {"columns": {"id": "INT", "m": "DOUBLE", "c": "TIMESTAMP_LTZ(6)",
                            "comment": "STRING"}, "primary-key": ["id"]}
    out = resolve_message_format("maxwell-json", declared).decoder().decode(
        [None] * 3, [v.encode() for v in (MAXWELL_INSERT, MAXWELL_UPDATE, MAXWELL_DELETE)],
        [0] * 3, "t")
    assert out.bad == []
    events = [(b.ops[i], r, b.before[i] if b.before else None, t) for b in out.elements
              for i, (r, t) in enumerate(zip(b.rows(), b.ts_ms_list()))]
    assert events == [("c", ROW1, None, 1477053217000), ("u", ROW2, ROW1, 1477053234000),
                      ("d", ROW2, None, 1477053260000)]


def test_maxwell_writer_writes_maxwells_samples_verbatim():
    """Before: timestamps as ISO text with a ``T`` (Maxwell: MySQL's ``YYYY-MM-DD hh:mm:ss``
    with the column's digits), ``old`` the whole row, keys without database and table.  What
    the hub can't know: ``xid``, ``commit``, ``position``, ``server_id``, ``thread_id`` (the
    binlog's transaction and connection: not written)."""
    values, keys = _encode("maxwell-json", E, "cud", [ROW1, ROW2, ROW2],
                           before=[None, ROW1, None],
                           ts=[1477053217000, 1477053234000, 1477053260000])
    insert = json.loads(MAXWELL_INSERT)
    for k in ("xid", "commit", "position", "server_id", "thread_id"):
        del insert[k]
    assert values == [json.dumps(insert, separators=(",", ":")), MAXWELL_UPDATE,
                      MAXWELL_DELETE]
    assert keys == [b'{"database":"test","table":"e","pk.id":1}'] * 3


def test_maxwell_decimals_are_json_numbers_and_sets_arrays():
    schema = TableSchema("d.t", (Column("id", T("INT"), False), Column("d", T("DECIMAL(30,10)")),
                                 Column("s", T("ARRAY<STRING>")), Column("dt", T("TIMESTAMP(0)"))),
                         ("id",))
    row = (1, Decimal("12345678901234567890.0123456789"), ["b_val", "c_val"],
           dt.datetime(2024, 1, 2, 3, 4, 5))
    [value], _ = _encode("maxwell-json", schema, "c", [row])
    assert '"d":12345678901234567890.0123456789' in value
    assert json.loads(value)["data"]["s"] == ["b_val", "c_val"]
    assert json.loads(value)["data"]["dt"] == "2024-01-02 03:04:05"
    declared = {"columns": {"id": "INT", "d": "DECIMAL(30,10)", "s": "ARRAY<STRING>",
                            "dt": "TIMESTAMP(0)"}, "primary-key": ["id"]}
    out = resolve_message_format("maxwell-json", declared).decoder().decode(
        [None], [value.encode()], [0], "t")
    assert out.bad == [] and out.elements[0].rows() == [row]
