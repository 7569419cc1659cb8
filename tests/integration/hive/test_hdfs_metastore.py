"""The hdfs sink's ``metastore`` policy: tables and partitions on HDFS registered with the
location the metastore's readers use (``metastore-location``), here ``webhdfs://`` so that the
metastore's own Hadoop client checks and creates the folders on the same WebHDFS the sink
writes to."""
from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime.fs import filesystem
from sinks.hdfs.config import HdfsSinkConfig
from sinks.hdfs.sink import HdfsSink
from tests.unit.sinks.sink_helpers import HOUR, commit_context, orders, writer_context

pytestmark = [pytest.mark.integration, pytest.mark.hive, pytest.mark.hdfs]

T0 = 1_709_287_200_000  # 2024-03-01 10:00 UTC


def test_hdfs_partitions_are_registered_at_their_hdfs_location(hive_metastore, hive_db,
                                                               webhdfs_server):
    if os.environ.get("HUB_TEST_HIVE_METASTORE") and not os.environ.get("HUB_TEST_WEBHDFS"):
        pytest.skip("an external metastore can't reach the WebHDFS test server of this host")
    sub = f"/it/{hive_db}"
    path = webhdfs_server.url + sub
    # docker-compose's metastore reaches the namenode by its service name
    namenode = "namenode:9870" if os.environ.get("HUB_TEST_HIVE_METASTORE") else \
        webhdfs_server.http_url.split("://", 1)[1]
    location = f"webhdfs://{namenode}{sub}"
    sink = HdfsSink(HdfsSinkConfig.model_validate({
        "path": path, "format": "parquet", "partition-format": "dt=%Y-%m-%d",
        "partition-commit-policy": ["metastore"], "metastore-uri": hive_metastore.uri,
        "metastore-database": hive_db, "metastore-location": location}))
    writer = sink.create_writer(writer_context(), None)
    writer.write(orders([1, 2, 3], ts_ms=T0))
    committer = sink.create_committer()
    done = commit_context(watermark_ms=T0 + 24 * HOUR)
    assert committer.commit(writer.prepare_commit(1), done) == []
    committer.close()

    table = hive_metastore.table(hive_db, "orders")
    assert table.sd.location == f"{location}/shop/orders"
    (part,) = hive_metastore.partitions(hive_db, "orders")
    assert part.values == ["2024-03-01"]
    assert part.sd.location == f"{location}/shop/orders/dt=2024-03-01"
    # the files are where the metastore says, read through the hub's own WebHDFS path
    fs = filesystem(path)
    folder = f"{path}/shop/orders/dt=2024-03-01"
    (name,) = [f.name for f in fs.listdir(folder) if f.name.startswith("part-")]
    rows = pq.read_table(pa.BufferReader(fs.read_bytes(f"{folder}/{name}")))
    assert sorted(rows.column("id").to_pylist()) == [1, 2, 3]
    assert not fs.exists(f"{folder}/_SUCCESS")  # only the metastore policy was asked for


def test_hdfs_tables_default_to_their_webhdfs_location(hive_metastore, hive_db, webhdfs_server):
    if os.environ.get("HUB_TEST_HIVE_METASTORE"):
        pytest.skip("an external metastore reaches the namenode by another name than we do")
    path = f"{webhdfs_server.url}/it/{hive_db}"
    sink = HdfsSink(HdfsSinkConfig.model_validate({
        "path": path, "format": "parquet", "partition-commit-policy": ["metastore"],
        "metastore-uri": hive_metastore.uri, "metastore-database": hive_db}))
    writer = sink.create_writer(writer_context(), None)
    writer.write(orders([1]))
    committer = sink.create_committer()
    committer.commit(writer.prepare_commit(1), commit_context())
    committer.close()
    http = webhdfs_server.http_url.split("://", 1)[1]
    assert hive_metastore.table(hive_db, "orders").sd.location == \
        f"webhdfs://{http}/it/{hive_db}/shop/orders"
