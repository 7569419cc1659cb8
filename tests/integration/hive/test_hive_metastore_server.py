"""The throwaway Hive Metastore itself: a real metastore answers over Thrift, keeps
databases, tables and partitions, and refuses what a real one refuses."""
from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.hive]


def test_the_metastore_keeps_a_table_and_its_partitions(hive_metastore, hive_db, tmp_path):
    from hive_metastore import ttypes as T

    location = f"file://{tmp_path}/orders"
    sd = T.StorageDescriptor(
        cols=[T.FieldSchema("id", "bigint", None)], location=location,
        inputFormat="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        outputFormat="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        serdeInfo=T.SerDeInfo(
            serializationLib="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
            parameters={}), parameters={})
    with hive_metastore.client() as c:
        c.create_database(T.Database(name=hive_db, locationUri=f"file://{tmp_path}/db"))
        c.create_table(T.Table(tableName="orders", dbName=hive_db, sd=sd,
                               partitionKeys=[T.FieldSchema("dt", "string", None)],
                               parameters={"EXTERNAL": "TRUE"}, tableType="EXTERNAL_TABLE"))
        with pytest.raises(T.AlreadyExistsException):
            c.create_table(T.Table(tableName="orders", dbName=hive_db, sd=sd,
                                   partitionKeys=[], tableType="EXTERNAL_TABLE"))
        part = T.StorageDescriptor(**{**sd.__dict__, "location": location + "/dt=2024-01-01"})
        c.add_partitions_req(T.AddPartitionsRequest(
            dbName=hive_db, tblName="orders", ifNotExists=True, needResult=False,
            parts=[T.Partition(values=["2024-01-01"], dbName=hive_db, tableName="orders",
                               sd=part, parameters={})]))
    table = hive_metastore.table(hive_db, "orders")
    # the metastore writes file:///x as file:/x
    assert table.tableType == "EXTERNAL_TABLE" and table.sd.location == f"file:{tmp_path}/orders"
    assert hive_metastore.partition_names(hive_db, "orders") == ["dt=2024-01-01"]
    with hive_metastore.client() as c, pytest.raises(T.NoSuchObjectException):
        c.get_table_req(T.GetTableRequest(dbName=hive_db, tblName="missing"))


def test_pyiceberg_hive_catalog_commits_through_the_metastore(hive_metastore, hive_db,
                                                              tmp_path):
    """pyiceberg's HiveCatalog (get_table, table locks for each commit) works against it."""
    import pyarrow as pa

    hive = pytest.importorskip("pyiceberg.catalog.hive")
    catalog = hive.HiveCatalog("hms", uri=hive_metastore.uri,
                               warehouse=f"file://{tmp_path}/warehouse")
    catalog.create_namespace(hive_db)
    table = catalog.create_table(f"{hive_db}.t", schema=pa.schema([("id", pa.int64())]))
    table.append(pa.table({"id": pa.array([1, 2], pa.int64())}))
    table.append(pa.table({"id": pa.array([3], pa.int64())}))  # a second commit: lock, alter
    loaded = catalog.load_table(f"{hive_db}.t")
    assert sorted(loaded.scan().to_arrow().column("id").to_pylist()) == [1, 2, 3]
    assert catalog.list_tables(hive_db) == [(hive_db, "t")]
