"""What the files sink's ``metastore`` partition-commit policy costs a commit, side by side
with the bare Thrift client doing the same registrations.

    python bench/metastore_bench.py [--partitions 200] [--uri thrift://host:9083]

Without ``--uri`` a throwaway Hive Metastore is started (tests/servers/hive_metastore.py:
Java 17, jars from Maven Central).  Hub path: a files sink (parquet, hourly partitions)
writes one row into each of ``--partitions`` hours; the commit with the watermark past all of
them is timed with partition-commit-policy ["metastore"] and with [] (files only): the
difference is the metastore's share.  Bare path: the same table created and the same
partitions added (one call per 500, as the sink does) with pyiceberg's Thrift bindings, no
hub.  Prints ms per
partition.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HOUR = 3_600_000
T0 = 1_709_287_200_000


def _commit_seconds(root: str, policy: list[str], n: int, uri: str, db: str) -> float:
    from runtime.batch import ChangeBatch
    from runtime.sink import CommitContext, WriterContext
    from sinks.files.config import FilesSinkConfig
    from sinks.files.sink import FilesSink
    from tests.unit.sinks.sink_helpers import ORDERS

    sink = FilesSink(FilesSinkConfig.model_validate({
        "path": root, "format": "parquet", "partition-format": "dt=%Y-%m-%d/hr=%H",
        "partition-commit-policy": policy, "metastore-uri": uri, "metastore-database": db}))
    writer = sink.create_writer(WriterContext("bench", 0, 1, "a1", ""), None)
    from decimal import Decimal

    rows = [(i, "c", Decimal(1), 1) for i in range(n)]
    writer.write(ChangeBatch.of_rows(ORDERS, rows, op="c", ts_ms=[T0 + i * HOUR for i in range(n)]))
    committables = writer.prepare_commit(1)
    committer = sink.create_committer()
    t0 = time.perf_counter()
    assert committer.commit(committables, CommitContext("bench", 1, 2**62)) == []
    took = time.perf_counter() - t0
    committer.close()
    writer.close()
    return took


def _bare_seconds(host: str, port: int, root: str, n: int, db: str) -> float:
    from hive_metastore import ttypes as H
    from hive_metastore.ThriftHiveMetastore import Client
    from thrift.protocol import TBinaryProtocol
    from thrift.transport import TSocket, TTransport

    transport = TTransport.TBufferedTransport(TSocket.TSocket(host, port))
    transport.open()
    c = Client(TBinaryProtocol.TBinaryProtocol(transport))

    def sd(location: str):
        return H.StorageDescriptor(
            cols=[H.FieldSchema("id", "bigint", None)], location=location,
            inputFormat="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            outputFormat="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            serdeInfo=H.SerDeInfo(
                serializationLib="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                parameters={}), parameters={})

    t0 = time.perf_counter()
    c.create_database(H.Database(name=db, parameters={}))
    c.create_table(H.Table(tableName="orders", dbName=db, sd=sd(f"file://{root}/orders"),
                           partitionKeys=[H.FieldSchema("dt", "string", None),
                                          H.FieldSchema("hr", "string", None)],
                           parameters={"EXTERNAL": "TRUE"}, tableType="EXTERNAL_TABLE"))
    parts = []
    for i in range(n):
        t = time.gmtime((T0 + i * HOUR) / 1000)
        values = [time.strftime("%Y-%m-%d", t), time.strftime("%H", t)]
        parts.append(H.Partition(values=values, dbName=db, tableName="orders", parameters={},
                                 sd=sd(f"file://{root}/orders/dt={values[0]}/hr={values[1]}")))
    for at in range(0, n, 500):  # as the sink: one call per 500 partitions
        c.add_partitions_req(H.AddPartitionsRequest(dbName=db, tblName="orders",
                                                    parts=parts[at:at + 500],
                                                    ifNotExists=True, needResult=False))
    took = time.perf_counter() - t0
    transport.close()
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--partitions", type=int, default=200)
    ap.add_argument("--uri", default=None)
    args = ap.parse_args()
    owner = None
    if args.uri:
        uri = args.uri
    else:
        from tests.servers.hive_metastore import ThrowawayHiveMetastore

        owner = ThrowawayHiveMetastore()
        uri = owner.start().uri
    host, port = uri.split("://", 1)[1].split(":")
    n = args.partitions
    stamp = str(int(time.time()))
    try:
        with tempfile.TemporaryDirectory() as work:
            _commit_seconds(f"{work}/warm", ["metastore"], 5, uri, f"warm_{stamp}")  # JIT, caches
            files_only = _commit_seconds(f"{work}/a", [], n, uri, f"a_{stamp}")
            hub = _commit_seconds(f"{work}/b", ["metastore"], n, uri, f"b_{stamp}")
            bare = _bare_seconds(host, int(port), f"{work}/c", n, f"c_{stamp}")
    finally:
        if owner is not None:
            owner.stop()
    share = hub - files_only
    print(f"{n} partitions, metastore {uri}")
    print(f"{'path':<36}{'total s':>9}{'ms/partition':>14}")
    print(f"{'hub commit, files only':<36}{files_only:>9.2f}{files_only / n * 1000:>14.1f}")
    print(f"{'hub commit, + metastore':<36}{hub:>9.2f}{hub / n * 1000:>14.1f}")
    print(f"{'  metastore share':<36}{share:>9.2f}{share / n * 1000:>14.1f}")
    print(f"{'bare Thrift client (table + adds)':<36}{bare:>9.2f}{bare / n * 1000:>14.1f}")


if __name__ == "__main__":
    main()
