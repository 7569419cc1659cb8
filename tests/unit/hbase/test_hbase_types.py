"""HBase sink: rowkey order, value encodings, Thrift encoding, options and cell timestamps,
without a server."""
from __future__ import annotations

import datetime
import os
import random
from decimal import Decimal

import pyarrow as pa
import pytest
from pydantic import ValidationError

from thriftpy2.protocol import TBinaryProtocol, TCompactProtocol
from thriftpy2.thrift import TClient
from thriftpy2.transport import TMemoryBuffer

from runtime.batch import ChangeBatch
from runtime.schema import Column, TableSchema
from runtime.sink import CommitContext, WriterContext
from runtime.types import T, to_arrow
from runtime.wal import WriteAheadLog, wal_root
from sinks.hbase.client import Hbase_thrift, MutationCodec
from sinks.hbase.committer import CellClock
from sinks.hbase.config import HBaseSinkConfig
from sinks.hbase.sink import HBaseSink
from sinks.hbase.types import cell_values as cells
from sinks.hbase.types import decode_int_key, key_part, rowkeys

PROTOCOLS = {"binary": TBinaryProtocol, "compact": TCompactProtocol}


def config(**kw) -> HBaseSinkConfig:
    return HBaseSinkConfig.model_validate({k.replace("_", "-"): v for k, v in kw.items()})


@pytest.mark.parametrize("kind", ["TINYINT", "SMALLINT", "INT", "BIGINT"])
def test_integer_keys_sort_like_their_values(kind):
    bits = {"TINYINT": 8, "SMALLINT": 16, "INT": 32, "BIGINT": 64}[kind]
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    rnd = random.Random(7)
    values = sorted({lo, hi, -1, 0, 1} | {rnd.randint(lo, hi) for _ in range(200)})
    keys = key_part(pa.array(values, type=to_arrow(T(kind))), T(kind), last=True).to_pylist()
    assert sorted(keys) == keys and all(len(k) == bits // 8 for k in keys)
    assert [decode_int_key(k) for k in keys] == values


@pytest.mark.parametrize("kind,values", [
    ("DOUBLE", [-1e300, -2.5, -0.0, 0.0, 1e-300, 3.0, 1e300]),
    ("DECIMAL(20,2)", [Decimal("-99999.99"), Decimal("-0.01"), Decimal("0"), Decimal("12.5")]),
    ("DATE", [datetime.date(1900, 1, 1), datetime.date(1970, 1, 1), datetime.date(2030, 1, 1)]),
    ("TIMESTAMP(6)", [datetime.datetime(1960, 1, 1), datetime.datetime(2024, 1, 1, 0, 0, 0, 1)]),
])
def test_other_keys_keep_order(kind, values):
    keys = key_part(pa.array(values, type=to_arrow(T(kind))), T(kind), last=True).to_pylist()
    assert sorted(keys) == keys


def test_composite_keys_keep_order_and_escape_zero_bytes():
    schema = TableSchema("a.b", (Column("s", T("STRING"), False), Column("n", T("INT"), False)),
                         ("s", "n"))
    rows = [("", 5), ("a", -1), ("a", 3), ("a\x00", 0), ("ab", -7)]
    keys = rowkeys(pa.table({"s": [r[0] for r in rows], "n": pa.array([r[1] for r in rows],
                                                                        pa.int32())}), schema)
    keys = keys.to_pylist()
    assert sorted(keys) == keys
    assert keys[3].startswith(b"a\x00\xff\x00\x00")


def cell_values(values, t, encoding):
    return cells(values, t, encoding).to_pylist()


def test_binary_values_are_hbase_bytes():
    enc = "binary"
    assert cell_values(pa.array([1, None, -2], pa.int64()), T("BIGINT"), enc) == [
        b"\x00" * 7 + b"\x01", None, b"\xff" * 7 + b"\xfe"]
    assert cell_values(pa.array([7], pa.int32()), T("INT"), enc) == [b"\x00\x00\x00\x07"]
    assert cell_values(pa.array([True, False, None]), T("BOOLEAN"), enc) == [b"\xff", b"\x00",
                                                                             None]
    day = pa.array([datetime.date(1970, 1, 2), None])
    assert cell_values(day, T("DATE"), enc) == [b"\x00\x00\x00\x01", None]
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


def test_table_names_from_hostile_table_names():
    from runtime.errors import ConfigError

    c = config()
    for table, name in [("shop.orders", "shop_orders"), ("shop.a:b", "shop_a_b"),
                        ("shop.it's", "shop_it_s"), ("shop./x", "shop__x"),
                        ("shop.ünï", "shop__n_"), ("shop.a b;c", "shop_a_b_c")]:
        assert c.table_for(table) == name, table
    ns = config(table="{db}:{table}")
    assert ns.table_for("shop.x:y") == "shop:x_y"  # a ':' of a name never picks a namespace
    for bad in ("my-db.x", "shop.-x"):
        with pytest.raises(ConfigError, match=r"^table: hbase: table .* gives no valid HBase "
                                              r"table name"):
            ns.table_for(bad)
    assert c.table_source("shop.a b") != c.table_source("shop.a_b")


def test_cell_clock_is_strictly_increasing_milliseconds():
    clock = CellClock()
    first = clock.reserve(3)
    assert first > 1_600_000_000_000 and clock.last == first + 2
    assert clock.reserve(1) > first + 2
    ahead = CellClock(last=int(4e12))  # a clock that stepped back: timestamps still go up
    assert ahead.reserve(2) == int(4e12) + 1


def _thrift_reference(protocol, table, batches, timestamp):
    """What thriftpy2 itself sends for ``mutateRowsTs``."""
    buf = TMemoryBuffer()
    client = TClient(Hbase_thrift.Hbase, PROTOCOLS[protocol](buf))
    client._send("mutateRowsTs", tableName=table, rowBatches=batches, timestamp=timestamp,
                 attributes={})
    return buf.getvalue()


@pytest.mark.parametrize("protocol", ["binary", "compact"])
def test_mutations_are_encoded_as_thriftpy2_encodes_them(protocol):
    M, B = Hbase_thrift.Mutation, Hbase_thrift.BatchMutation
    codec = MutationCodec(protocol)
    n = 20  # over 15: the long list header of the compact protocol
    keys = pa.array([b"k%d" % i + b"\x00" * (i * 10) for i in range(n)], pa.binary())
    values = pa.array([None if i % 3 == 0 else b"v" * (i * 40) for i in range(n)], pa.binary())
    columns = [b"cf:c%d" % j for j in range(16)]
    rows = codec.rows(keys, [codec.cells(c, values) for c in columns])
    deletes = codec.rows(keys, [codec.delete(b"cf"), codec.put(b"cf:", b"")])
    for ts in (0, 1_700_000_000_123, (1 << 62) + 5):
        assert codec.request(b"t1", rows.slice(2, 17), ts) == _thrift_reference(
            protocol, b"t1", [B(keys[i].as_py(), [
                M(isDelete=True, column=c) if values[i].as_py() is None
                else M(column=c, value=values[i].as_py()) for c in columns])
                for i in range(2, 19)], ts)
    assert codec.request(b"t2", deletes.slice(0, 3), 7) == _thrift_reference(
        protocol, b"t2", [B(keys[i].as_py(), [M(isDelete=True, column=b"cf"),
                                              M(column=b"cf:", value=b"")]) for i in range(3)], 7)


def test_exactly_once_writer_logs_with_versions_and_recover_discards_strays(tmp_path):
    sink = HBaseSink(config(port=9))
    schema = TableSchema("a.b", (Column("id", T("INT"), False),), ("id",))
    stray = WriteAheadLog(wal_root(str(tmp_path), "p", "hbase")).write_segment(
        "r0-000-000000003", [ChangeBatch(schema, "c", rows=[(1,)])])["segment"]
    # the committer's recover (no server needed for it) removes the aborted checkpoint's segment
    assert sink.create_committer().recover([], CommitContext("p", 2, None, str(tmp_path))) == []
    assert not os.path.exists(stray)
    writer = sink.create_writer(WriterContext("p", 0, 1, "r1", str(tmp_path)), None)
    writer.write(ChangeBatch(schema, "cc", rows=[(1,), (2,)]))  # no versions from the source
    (c,) = writer.prepare_commit(1)
    assert set(c) == {"segment", "rows"} and c["rows"] == 2
    (back,) = WriteAheadLog.read_segment(c["segment"])
    assert back.versions is not None and back.versions[0] < back.versions[1]
    assert writer.snapshot_state(1) is None
    writer.close()


def test_a_thrift_server_that_cant_be_reached_at_check_is_waited_for():
    from runtime.errors import HubError
    from sinks.hbase.sink import HBaseSink
    from tests.servers.common import free_port

    sink = HBaseSink(HBaseSinkConfig.model_validate({"host": "127.0.0.1", "port": free_port()}))
    with pytest.raises(HubError, match="can't reach the Thrift server") as caught:
        sink.check()
    assert caught.value.transient
