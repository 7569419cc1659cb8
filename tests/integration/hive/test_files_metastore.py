"""The files sink's ``metastore`` partition-commit policy against a real Hive Metastore: the
external table is created once, complete partitions are added once (replays add nothing),
new columns reach the metastore, and what it can't hold stops with one line."""
from __future__ import annotations

import glob
import os
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from runtime.batch import ChangeBatch
from runtime.errors import ConfigError, TerminalError, TransientError
from runtime.schema import Column, TableSchema
from runtime.types import T
from tests.servers.common import free_port
from tests.unit.sinks.sink_helpers import (HOUR, ORDERS, commit_context, files_sink, listing,
                                           orders, writer_context)

pytestmark = [pytest.mark.integration, pytest.mark.hive]

T0 = 1_709_287_200_000  # 2024-03-01 10:00 UTC
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


@pytest.fixture(scope="module")
def hive4():
    """A Hive 4.0.1 metastore of this module's own (the session's is Hive 3, or the external
    one): the sink's client speaks both."""
    from tests.servers.hive_metastore import ThrowawayHiveMetastore

    server = ThrowawayHiveMetastore(version=4)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(params=["session", "hive4"])
def metastore(request, hive_metastore):
    """The session's metastore, then a Hive 4 one."""
    return hive_metastore if request.param == "session" else request.getfixturevalue("hive4")


def _sink(root: Path, hms, db: str, **options):
    return files_sink(root, partition_commit_policy=["success-file", "metastore"],
                      metastore_uri=hms.uri, metastore_database=db, **options)


def _local(location: str) -> str:
    assert location.startswith("file:"), location
    return "/" + location[len("file:"):].lstrip("/")


def test_complete_partitions_are_added_once_and_read_back(metastore, hive_db,
                                                          root: Path) -> None:
    hive_metastore = metastore
    sink = _sink(root, hive_metastore, hive_db, partition_format="dt=%Y-%m-%d/hr=%H")
    sink.check()
    writer = sink.create_writer(writer_context(), None)
    writer.write(orders([1, 2, 3, 4], ts_ms=[T0 + 5, T0 + HOUR + 5, T0 + 6, T0 + HOUR + 6]))
    committables = writer.prepare_commit(1)
    committer = sink.create_committer()

    not_yet = committer.commit(committables, commit_context(watermark_ms=T0 + HOUR))
    table = hive_metastore.table(hive_db, "orders")
    assert table.tableType == "EXTERNAL_TABLE" and table.parameters["EXTERNAL"] == "TRUE"
    assert _local(table.sd.location) == str(root / "shop" / "orders")
    assert [(c.name, c.type) for c in table.sd.cols] == [
        ("id", "bigint"), ("customer", "string"), ("amount", "decimal(10,2)"), ("qty", "int"),
        ("op", "string"), ("ts_ms", "bigint"), ("seq", "bigint")]
    assert [(k.name, k.type) for k in table.partitionKeys] == [("dt", "string"), ("hr", "string")]
    assert table.sd.serdeInfo.serializationLib == PARQUET_SERDE
    # only the complete hour is in the metastore; the open one waits
    assert hive_metastore.partition_names(hive_db, "orders") == ["dt=2024-03-01/hr=10"]
    assert len(not_yet) == 1

    # a replay of the same commit (recovery after a crash) adds nothing and fails nothing
    assert committer.commit(committables, commit_context(watermark_ms=T0 + HOUR)) == not_yet
    committer.close()
    again = sink.create_committer()  # a new process: nothing cached
    assert again.recover(not_yet, commit_context(watermark_ms=T0 + 2 * HOUR)) == []
    assert hive_metastore.partition_names(hive_db, "orders") == ["dt=2024-03-01/hr=10",
                                                                 "dt=2024-03-01/hr=11"]
    # a reader that asks the metastore where a partition is finds its rows there
    ids = []
    for part in sorted(hive_metastore.partitions(hive_db, "orders"), key=lambda p: p.values):
        files = sorted(glob.glob(os.path.join(_local(part.sd.location), "part-*.parquet")))
        assert files and part.sd.serdeInfo.serializationLib == PARQUET_SERDE
        ids.append(sorted(i for f in files for i in pq.read_table(f).column("id").to_pylist()))
    assert ids == [[1, 3], [2, 4]]
    assert "shop/orders/dt=2024-03-01/hr=11/_SUCCESS" in listing(root)[0]
    again.close()


def test_an_unpartitioned_table_is_registered_at_its_first_commit(hive_metastore, hive_db,
                                                                 root: Path) -> None:
    sink = _sink(root, hive_metastore, hive_db, format="csv", metastore_table="{db}_{table}",
                 layout="warehouse")
    writer = sink.create_writer(writer_context(), None)
    committer = sink.create_committer()
    writer.write(orders([1, 2]))
    assert committer.commit(writer.prepare_commit(1), commit_context()) == []
    table = hive_metastore.table(hive_db, "shop_orders")
    assert table.partitionKeys == []
    assert _local(table.sd.location) == str(root / "shop.db" / "orders")
    assert table.sd.serdeInfo.serializationLib == "org.apache.hadoop.hive.serde2.OpenCSVSerde"
    assert table.parameters["skip.header.line.count"] == "1"
    assert hive_metastore.partition_names(hive_db, "shop_orders") == []
    committer.close()


def test_added_columns_reach_the_metastore_and_a_type_clash_stops(hive_metastore, hive_db,
                                                                   root: Path) -> None:
    sink = _sink(root, hive_metastore, hive_db)
    writer = sink.create_writer(writer_context(), None)
    committer = sink.create_committer()
    writer.write(orders([1]))
    committer.commit(writer.prepare_commit(1), commit_context())

    wider = TableSchema("shop.orders", ORDERS.columns + (Column("note", T("STRING")),), ("id",))
    writer.write(ChangeBatch.of_rows(wider, [(2, "c", Decimal(1), 1, "hi")], op="c", ts_ms=0))
    committer.commit(writer.prepare_commit(2), commit_context())
    cols = [(c.name, c.type) for c in hive_metastore.table(hive_db, "orders").sd.cols]
    assert ("note", "string") in cols and cols[:4] == [
        ("id", "bigint"), ("customer", "string"), ("amount", "decimal(10,2)"), ("qty", "int")]

    changed = TableSchema("shop.orders", (Column("id", T("STRING"), False),), ("id",))
    writer.write(ChangeBatch.of_rows(changed, [("x",)], op="c", ts_ms=0))
    with pytest.raises(TerminalError) as err:
        committer.commit(writer.prepare_commit(3), commit_context())
    line = str(err.value)
    assert "\n" not in line and "'id'" in line and "bigint" in line and "string" in line
    committer.close()


def test_an_unreachable_metastore_is_transient(hive_db, root: Path) -> None:
    pytest.importorskip("hive_metastore")
    sink = files_sink(root, partition_commit_policy=["metastore"],
                      metastore_uri=f"thrift://127.0.0.1:{free_port()}")
    with pytest.raises(TransientError, match="Hive Metastore thrift://127.0.0.1"):
        sink.check()
    writer = sink.create_writer(writer_context(), None)
    writer.write(orders([1]))
    committer = sink.create_committer()
    with pytest.raises(TransientError, match="creating database shop"):
        committer.commit(writer.prepare_commit(1), commit_context())


def test_metastore_options_are_checked_up_front(root: Path) -> None:
    with pytest.raises(Exception, match="needs metastore-uri"):
        files_sink(root, partition_commit_policy=["metastore"])
    with pytest.raises(Exception, match="key=value"):
        files_sink(root, partition_commit_policy=["metastore"], metastore_uri="thrift://h:1",
                   partition_format="%Y/%m/%d")
    with pytest.raises(ConfigError, match="change-event messages"):
        files_sink(root, partition_commit_policy=["metastore"], metastore_uri="thrift://h:1",
                   format="debezium-json")
    with pytest.raises(Exception, match="thrift://host:port"):
        files_sink(root, partition_commit_policy=["metastore"], metastore_uri="http://h:1")
    # success-file = false still turns _SUCCESS off when no policy is given
    assert files_sink(root, success_file=False).config.commit_policies == ()
    assert files_sink(root).config.commit_policies == ("success-file",)


def test_a_table_name_hive_refuses_is_one_line(hive_metastore, hive_db, root: Path) -> None:
    sink = _sink(root, hive_metastore, hive_db)
    writer = sink.create_writer(writer_context(), None)
    schema = TableSchema("shop.order-lines", (Column("id", T("BIGINT"), False),), ("id",))
    writer.write(ChangeBatch.of_rows(schema, [(1,)], op="c", ts_ms=0))
    committer = sink.create_committer()
    with pytest.raises(TerminalError, match="metastore table name 'order-lines'.*metastore-table"):
        committer.commit(writer.prepare_commit(1), commit_context())
    committer.close()


def test_avro_envelopes_are_registered_with_their_schema(metastore, hive_db,
                                                         root: Path) -> None:
    hive_metastore = metastore
    import json

    fastavro = pytest.importorskip("fastavro")
    sink = _sink(root, hive_metastore, hive_db, format="avro", partition_format="dt=%Y-%m-%d")
    writer = sink.create_writer(writer_context(), None)
    writer.write(orders([1, 2], ts_ms=T0))
    committer = sink.create_committer()
    assert committer.commit(writer.prepare_commit(1), commit_context(2**62)) == []
    table = hive_metastore.table(hive_db, "orders")
    assert table.sd.serdeInfo.serializationLib == "org.apache.hadoop.hive.serde2.avro.AvroSerDe"
    row = "struct<id:bigint,customer:string,amount:decimal(10,2),qty:int>"
    assert [(c.name, c.type) for c in table.sd.cols] == [
        ("before", row), ("after", row), ("op", "string"), ("ts_ms", "bigint"),
        ("source", "struct<db:string,table:string>")]
    literal = json.loads(table.parameters["avro.schema.literal"])
    (part,) = hive_metastore.partitions(hive_db, "orders")
    (path,) = glob.glob(os.path.join(_local(part.sd.location), "part-*.avro"))
    with open(path, "rb") as f:
        reader = fastavro.reader(f)
        assert reader.writer_schema["name"] == "hub." + literal["name"]
        assert sorted(r["after"]["id"] for r in reader) == [1, 2]

    # a new column: the metastore's columns and schema literal follow
    wider = TableSchema("shop.orders", ORDERS.columns + (Column("note", T("STRING")),), ("id",))
    writer.write(ChangeBatch.of_rows(wider, [(3, "c", Decimal(1), 1, "hi")], op="c", ts_ms=T0))
    committer.commit(writer.prepare_commit(2), commit_context(2**62))
    table = hive_metastore.table(hive_db, "orders")
    assert "note" in table.parameters["avro.schema.literal"]
    assert table.sd.cols[1].type == row[:-1] + ",note:string>"
    committer.close()
