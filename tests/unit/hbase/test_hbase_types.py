"""HBase sink: rowkey order, value encodings, options and cell timestamps, without a server."""
from __future__ import annotations

import datetime
import random
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest
from pydantic import ValidationError

from runtime.batch import ChangeBatch
from runtime.schema import Column, TableSchema
from runtime.sink import WriterContext
from runtime.types import T, to_arrow
from sinks.hbase.committer import last_per_key
from sinks.hbase.config import HBaseSinkConfig
from sinks.hbase.sink import HBaseSink
from sinks.hbase.types import cell_values, decode_int_key, key_part, rowkeys
from sinks.hbase.writer import CellClock


def config(**kw) -> HBaseSinkConfig:
    return HBaseSinkConfig.model_validate({k.replace("_", "-"): v for k, v in kw.items()})


@pytest.mark.parametrize("kind", ["TINYINT", "SMALLINT", "INT", "BIGINT"])
def test_integer_keys_sort_like_their_values(kind):
    bits = {"TINYINT": 8, "SMALLINT": 16, "INT": 32, "BIGINT": 64}[kind]
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    rnd = random.Random(7)
    values = sorted({lo, hi, -1, 0, 1} | {rnd.randint(lo, hi) for _ in range(200)})
    keys = key_part(pa.array(values, type=to_arrow(T(kind))), T(kind), last=True)
    assert sorted(keys) == keys and all(len(k) == bits // 8 for k in keys)
    assert [decode_int_key(k) for k in keys] == values


@pytest.mark.parametrize("kind,values", [
    ("DOUBLE", [-1e300, -2.5, -0.0, 0.0, 1e-300, 3.0, 1e300]),
    ("DECIMAL(20,2)", [Decimal("-99999.99"), Decimal("-0.01"), Decimal("0"), Decimal("12.5")]),
    ("DATE", [datetime.date(1900, 1, 1), datetime.date(1970, 1, 1), datetime.date(2030, 1, 1)]),
    ("TIMESTAMP(6)", [datetime.datetime(1960, 1, 1), datetime.datetime(2024, 1, 1, 0, 0, 0, 1)]),
])
def test_other_keys_keep_order(kind, values):
    keys = key_part(pa.array(values, type=to_arrow(T(kind))), T(kind), last=True)
    assert sorted(keys) == keys


def test_composite_keys_keep_order_and_escape_zero_bytes():
    schema = TableSchema("a.b", (Column("s", T("STRING"), False), Column("n", T("INT"), False)),
                         ("s", "n"))
    rows = [("", 5), ("a", -1), ("a", 3), ("a\x00", 0), ("ab", -7)]
    keys = rowkeys(pa.table({"s": [r[0] for r in rows], "n": pa.array([r[1] for r in rows],
                                                                        pa.int32())}), schema)
    assert sorted(keys) == keys
    assert keys[3].startswith(b"a\x00\xff\x00\x00")


def test_binary_values_are_hbase_bytes():
    enc = "binary"
    assert cell_values(pa.array([1, None, -2], pa.int64()), T("BIGINT"), enc) == [
        b"\x00" * 7 + b"\x01", None, b"\xff" * 7 + b"\xfe"]
    assert cell_values(pa.array([7], pa.int32()), T("INT"), enc) == [b"\x00\x00\x00\x07"]
    assert cell_values(pa.array([True, False]), T("BOOLEAN"), enc) == [b"\xff", b"\x00"]
    assert cell_values(pa.array([1.5]), T("DOUBLE"), enc) == [b"\x3f\xf8" + b"\x00" * 6]
    # Bytes.toBytes(new BigDecimal("1.50")) and ("-1.50"): scale 2, unscaled 150 / -150
    dec = pa.array([Decimal("1.50"), Decimal("-1.50")], pa.decimal128(10, 2))
    assert cell_values(dec, T("DECIMAL(10,2)"), enc) == [b"\x00\x00\x00\x02\x00\x96",
                                                         b"\x00\x00\x00\x02\xff\x6a"]
    assert cell_values(pa.array(["é"]), T("STRING"), enc) == ["é".encode()]


def test_string_values_are_text():
    enc = "string"
    assert cell_values(pa.array([Decimal("1.50"), None], pa.decimal128(10, 2)),
                       T("DECIMAL(10,2)"), enc) == [b"1.50", None]
    ts = pa.array([datetime.datetime(2024, 1, 2, 3, 4, 5, 6)], pa.timestamp("us"))
    assert cell_values(ts, T("TIMESTAMP(6)"), enc) == [b"2024-01-02T03:04:05.000006"]
    assert cell_values(pa.array([b"\x00"]), T("BYTES"), enc) == [b"\x00"]
    assert cell_values(pa.array([True]), T("BOOLEAN"), enc) == [b"true"]


def test_options():
    c = config(table="{db}:{table}", column_families={"note": "text"})
    assert c.table_for("shop.orders") == "shop:orders"
    assert c.family_of("note") == "text" and c.family_of("id") == "cf"
    with pytest.raises(ValidationError, match="unknown placeholder"):
        config(table="{tbl}")
    with pytest.raises(ValidationError, match="column family"):
        config(column_families={"a": "bad family"})


def test_cell_clock_is_monotonic_and_follows_versions():
    schema = TableSchema("a.b", (Column("id", T("INT"), False),), ("id",))
    clock = CellClock()
    b = ChangeBatch(schema, "cc", rows=[(1,), (2,)], versions=np.array([10, 20]))
    assert clock.reserve([b, b]) == 20 and clock.last == 21
    small = ChangeBatch(schema, "c", rows=[(1,)], versions=np.array([5]))
    assert clock.reserve([small]) == 22  # never below what was handed out
    assert CellClock(clock=True).reserve([small]) > 1_600_000_000_000


def test_last_per_key():
    assert last_per_key([b"a", b"b", b"a"]).tolist() == [1, 2]
    assert last_per_key([b"a", b"b"]) is None


def test_writer_committable_carries_the_base_timestamp(tmp_path):
    sink = HBaseSink(config(port=9))
    schema = TableSchema("a.b", (Column("id", T("INT"), False),), ("id",))
    writer = sink.create_writer(WriterContext("p", 0, 1, "r1", str(tmp_path)),
                                {"last_timestamp": 100})
    writer.write(ChangeBatch(schema, "c", rows=[(1,)], versions=np.array([50])))
    (c,) = writer.prepare_commit(1)
    assert c["timestamp"] == 101 and c["rows"] == 1
    assert writer.snapshot_state(1) == {"last_timestamp": 101}
    writer.close()
