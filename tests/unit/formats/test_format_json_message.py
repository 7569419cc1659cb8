"""The json, maxwell-json and raw message formats, and how message formats are resolved."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa
import pytest
from pydantic import ValidationError

from formats.registry import resolve_message_format
from formats.registry import resolve_format
from runtime.batch import ChangeBatch
from runtime.errors import ConfigError
from tests.unit.formats.test_format_debezium import ROWS, SCHEMA

DECLARED = {"columns": {c.name: str(c.type) for c in SCHEMA.columns}, "primary-key": ["id"],
            "table": "shop.items"}


@pytest.mark.parametrize("name", ["json", "maxwell-json"])
def test_round_trip_with_declared_columns(name):
    fmt = resolve_message_format(name, DECLARED)
    batch = ChangeBatch(SCHEMA, "ud", rows=ROWS, before=[ROWS[1], None], ts_ms=[1000, 2000])
    enc = fmt.encoder()
    values, keys = enc.encode(batch, "t"), enc.encode_keys(batch, "t")
    assert keys == ([b'{"id":1}', b'{"id":2}'] if name == "json" else  # Maxwell's keys
                    [b'{"database":"shop","table":"items","pk.id":1}',
                     b'{"database":"shop","table":"items","pk.id":2}'])
    out = fmt.decoder().decode(keys, values, [0, 0], "t")
    assert out.bad == []
    (back,) = out.elements
    assert back.rows() == ROWS and back.ops == "ud" and back.ts_ms_list() == [1000, 2000]
    if name == "maxwell-json":  # json is the flat form: no before images
        assert back.before[0] == ROWS[1]


def test_json_without_declared_columns_infers_and_widens():
    d = resolve_message_format("json").decoder()
    out = d.decode([None] * 3, [b'{"id": 1, "v": "a"}', b'{"id": 2, "v": "b", "n": 1.5}',
                                b'{"id": 3, "op": "d"}'], [7, 8, 9], "srv.db.tbl")
    kinds = [getattr(e, "kind", "batch") for e in out.elements]
    assert kinds == ["batch", "add_column", "batch"]
    assert out.elements[0].table == "db.tbl"
    assert out.elements[2].rows() == [(2, "b", 1.5), (3, None, None)]
    assert out.elements[2].ops == "cd" and out.elements[2].ts_ms_list() == [8, 9]


def test_maxwell_documented_messages():
    msgs = [{"database": "test", "table": "maxwell", "type": "insert", "ts": 1449786310,
             "xid": 940752, "commit": True, "data": {"id": 1, "daemon": "Stanislaw Lem"}},
            {"database": "test", "table": "maxwell", "type": "update", "ts": 1449786341,
             "xid": 940786, "commit": True, "data": {"id": 1, "daemon": "Firebus!  Firebus!"},
             "old": {"daemon": "Stanislaw Lem"}},
            {"database": "test", "table": "maxwell", "type": "delete", "ts": 1449786400,
             "data": {"id": 1, "daemon": "Firebus!  Firebus!"}},
            {"database": "test", "table": "maxwell", "type": "table-drop", "ts": 1449786500}]
    d = resolve_message_format("maxwell-json", {"primary-key": ["id"]}).decoder()
    out = d.decode([None] * 4, [json.dumps(m).encode() for m in msgs], [0] * 4, "maxwell")
    b, drop = out.elements
    assert b.table == "test.maxwell" and b.ops == "cud" and b.schema.primary_key == ("id",)
    assert b.before[1] == (1, "Stanislaw Lem") and b.ts_ms_list()[0] == 1449786310000
    assert drop.kind == "drop_table"


def test_raw():
    fmt = resolve_message_format("raw", {"value-type": "STRING"})
    out = fmt.decoder().decode([None] * 3, [b"hello", None, b"\xff"], [1, 2, 3], "logs")
    assert out.elements[0].rows() == [("hello",)] and out.bad[0][0] == 2
    b = ChangeBatch(out.elements[0].schema, "cd", rows=[("x",), ("y",)])
    assert fmt.encoder().encode(b, "logs") == [b"x", None]


def test_values_that_do_not_convert_are_bad_messages_not_errors():
    d = resolve_message_format("json", DECLARED).decoder()
    good = b'{"id": 1, "dec": "1.5", "day": "2024-01-01"}'
    out = d.decode([None] * 3, [good, b'{"id": 2, "day": "yesterday"}', good], [0] * 3, "t")
    assert [i for i, _ in out.bad] == [1] and "day" in out.bad[0][1]
    assert out.indexes == [[0, 2]]
    assert out.elements[0].rows()[0][5] == Decimal("1.500")
    assert out.elements[0].rows()[0][12] == dt.date(2024, 1, 1)


def test_resolving():
    with pytest.raises(ConfigError, match="not a message format") as info:
        resolve_message_format("parquet")
    assert info.value.key == "format"
    with pytest.raises(ValidationError) as err:
        resolve_message_format("json", {"columns": {"a": "NOPE"}}, key="key-format")
    assert [e["loc"] for e in err.value.errors()] == [("key-format-options",)]
    # the files connectors refuse message formats in one line
    with pytest.raises(ConfigError, match="not a file format"):
        resolve_format("debezium-json")


def test_declared_columns_parse_in_one_arrow_call_like_the_general_path():
    from runtime.schema import Column, TableSchema
    from runtime.types import T

    schema = TableSchema("db.t", (Column("id", T("BIGINT"), False), Column("d", T("DECIMAL(8,2)")),
                                  Column("ts", T("TIMESTAMP(6)")), Column("t", T("TIME(6)")),
                                  Column("b", T("BYTES")), Column("s", T("STRING"))), ("id",))
    rows = [(1, Decimal("1.25"), dt.datetime(2024, 1, 1, 2, 3, 4, 5), dt.timedelta(seconds=-5),
             b"\x00", "x"), (2, None, None, None, None, None)]
    fmt = resolve_message_format("json", {"columns": {c.name: str(c.type) for c in schema.columns},
                                          "primary-key": ["id"], "table": "db.t"})
    values = fmt.encoder().encode(ChangeBatch(schema, "cd", rows=rows, ts_ms=[5, 6]), "t")
    d = fmt.decoder()
    fast = d._fast(values, [0, 0], "t")
    assert fast is not None  # the one-call path took it
    (b,) = fast.elements
    assert b.rows() == rows and b.ops == "cd" and b.ts_ms_list() == [5, 6]
    # a bad message makes the batch take the general path, which isolates it
    assert d._fast(values + [b"{bad"], [0, 0, 0], "t") is None
    out = d.decode([None] * 3, values + [b"{bad"], [0, 0, 0], "t")
    assert out.elements[0].rows() == rows and [i for i, _ in out.bad] == [2]


def test_json_column_of_strings_takes_the_fast_path_and_documents_the_general_one():
    from formats.message.envelope import EnvelopeDecoder

    opts = {"columns": {"id": "BIGINT", "doc": "JSON"}, "primary-key": ["id"]}
    strings = [b'{"id":1,"doc":"{\\"k\\": [1, 2]}","op":"c","ts_ms":5}',
               b'{"id":2,"doc":null,"op":"u","ts_ms":6}']
    d = resolve_message_format("json", opts).decoder()
    fast = d._fast(strings, [0, 0], "t")
    assert fast is not None  # one Arrow read, no json.loads per message
    general = EnvelopeDecoder.decode(d, [None, None], strings, [0, 0], "t")
    for out in (fast, general):
        (b,) = out.elements
        assert b.rows() == [(1, '{"k": [1, 2]}'), (2, None)] and b.ops == "cu"
        assert b.ts_ms_list() == [5, 6]
    documents = [b'{"id":3,"doc":{"k":[1,2]},"op":"c","ts_ms":7}']
    assert d._fast(documents, [0], "t") is None
    (b,) = d.decode([None], documents, [0], "t").elements
    assert b.rows() == [(3, '{"k":[1,2]}')]
    assert d._fast(strings, [0, 0], "t") is None  # that topic has documents: not tried again


@pytest.mark.parametrize("name, options", [
    ("json", {}), ("debezium-json", {}), ("debezium-json", {"schema-include": True}),
    ("canal-json", {}), ("maxwell-json", {})])
def test_arrow_encoding_is_the_list_encoding(name, options):
    """``encode_arrow``/``encode_keys_arrow`` (what the Kafka sink sends and logs): the
    formats' own Arrow arrays (the avro format's come from the base class's default, checked
    through the broker in tests/integration/kafka/test_kafka_avro.py)."""
    enc = resolve_message_format(name, options).encoder()
    batch = ChangeBatch(SCHEMA, "ud", rows=ROWS, before=[ROWS[1], None], ts_ms=[1000, 2000])
    values = enc.encode_arrow(batch, "t").cast(pa.binary()).to_pylist()
    assert values == enc.encode(batch, "t")
    keys = enc.encode_keys_arrow(batch, "t")
    listed = enc.encode_keys(batch, "t")
    assert (keys is None and listed == [None, None]) or \
        keys.cast(pa.binary()).to_pylist() == listed


def test_default_arrow_encoding_of_the_base_class():
    """The raw format has no Arrow encoding of its own: the base class's, from its lists."""
    from runtime.schema import Column, TableSchema
    from runtime.types import T

    schema = TableSchema("db.t", (Column("id", T("BIGINT"), False), Column("v", T("BYTES"))),
                         ("id",))
    enc = resolve_message_format("raw").encoder()
    batch = ChangeBatch(schema, "cd", rows=[(1, b"a"), (2, b"b")], ts_ms=[1, 2])  # d: no value
    assert type(enc).encode_arrow is type(enc).__mro__[1].encode_arrow
    assert enc.encode_arrow(batch, "t").to_pylist() == enc.encode(batch, "t") == [b"a", None]


@pytest.mark.parametrize("reader", ["polars", "pyarrow.json"])
def test_fast_path_reads_the_same_with_either_reader_and_isolates_a_bad_record(reader,
                                                                                monkeypatch):
    """The fast path's columnar reader is polars' NDJSON reader when installed, else
    pyarrow.json: the same batches, and a bad message still goes alone to ``bad``."""
    import formats.message.json as jm

    if reader == "pyarrow.json":
        monkeypatch.setitem(jm._POLARS, "pl", None)
    else:
        pytest.importorskip("polars")
        jm._POLARS.pop("pl", None)
    # no DECIMAL column: that one is read by pyarrow (see the test below)
    cols = {"id": "BIGINT", "v": "STRING", "t": "TIMESTAMP(3)", "f": "DOUBLE", "ok": "BOOLEAN"}
    calls = []
    real = jm.read_columns
    monkeypatch.setattr(jm, "read_columns", lambda *a, **k: calls.append(1) or real(*a, **k))
    fmt = resolve_message_format("json", {"columns": cols, "primary-key": ["id"]})
    values = [json.dumps({"id": i, "v": f"x{i}", "t": "2024-01-01T00:00:00.123",
                          "f": i / 4, "ok": i % 2 == 0, "op": "u" if i % 3 else "c",
                          "ts_ms": 1000 + i}).encode() for i in range(50)]
    dec = fmt.decoder()
    out = dec.decode([None] * 50, values, [0] * 50, "t")
    assert out.bad == [] and calls  # the fast path read them
    (batch,) = out.elements
    assert batch.rows()[7] == (7, "x7", dt.datetime(2024, 1, 1, 0, 0, 0, 123000), 1.75, False)
    assert batch.ops[:4] == "cuuc" and batch.ts_ms_list()[:2] == [1000, 1001]
    bad = list(values)
    bad[5] = b'{"id": "five", "v": "x"}'
    out = fmt.decoder().decode([None] * 50, bad, [0] * 50, "t")
    assert [i for i, _ in out.bad] == [5]
    assert sum(len(b) for b in out.elements) == 49
