"""The files sink's layouts, read by readers that are not ours: with ``layout = "key-value"`` a
reader of the whole lake with Hive partitioning sees ``db`` and ``table`` as columns and keeps
tables of different schemas apart; ``warehouse`` gives Hive's {db}.db/{table} roots."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
from sink_helpers import HOUR, commit_context, files_sink, listing, orders, writer_context

from runtime.batch import ChangeBatch
from runtime.schema import Column, TableSchema
from runtime.types import T

T0 = 1_709_287_200_000  # 2024-03-01 10:00 UTC
CUSTOMERS = TableSchema("shop.customers", (Column("id", T("BIGINT"), False),
                                           Column("name", T("STRING")),
                                           Column("vip", T("BOOLEAN"))), ("id",))
CRM_ORDERS = TableSchema("crm.orders", (Column("id", T("BIGINT"), False),
                                        Column("total", T("DECIMAL(12,2)"))), ("id",))


def _lake(root: Path, layout: str) -> None:
    """shop.orders (ids 1-4 over two hours), shop.customers (10, 11), crm.orders (100):
    three tables, three schemas, two of them named orders."""
    sink = files_sink(root, layout=layout, partition_format="dt=%Y-%m-%d")
    writer = sink.create_writer(writer_context(), None)
    writer.write(orders([1, 2, 3, 4], ts_ms=[T0, T0 + HOUR, T0 + 2, T0 + HOUR + 2]))
    writer.write(ChangeBatch.of_rows(CUSTOMERS, [(10, "ann", True), (11, "bob", False)],
                                     op="c", ts_ms=T0))
    writer.write(ChangeBatch.of_rows(CRM_ORDERS, [(100, Decimal("9.50"))], op="c",
                                     ts_ms=T0 + 24 * HOUR))
    sink.create_committer().commit(writer.prepare_commit(1), commit_context(2**62))


def test_key_value_layout_names_db_and_table_as_partition_folders(root: Path) -> None:
    _lake(root, "key-value")
    folders = sorted({v.rsplit("/", 1)[0] for v in listing(root)[0]})
    assert folders == ["db=crm/table=orders/dt=2024-03-02", "db=shop/table=customers/dt=2024-03-01",
                       "db=shop/table=orders/dt=2024-03-01"]


def test_pyarrow_dataset_keeps_the_tables_of_a_whole_lake_apart(root: Path) -> None:
    _lake(root, "key-value")
    lake = ds.dataset(root, format="parquet", partitioning="hive")
    # the tables of the lake, from the folder names alone
    tables = {(str(ds.get_partition_keys(f.partition_expression)["db"]),
               str(ds.get_partition_keys(f.partition_expression)["table"]))
              for f in lake.get_fragments()}
    assert tables == {("shop", "orders"), ("shop", "customers"), ("crm", "orders")}
    # one table, by filtering on the partition columns; its own columns from its own files
    only = (pc.field("db") == "shop") & (pc.field("table") == "orders")
    files = [f.path for f in lake.get_fragments(filter=only)]
    orders_ds = ds.dataset(files, format="parquet", partitioning=ds.partitioning(
        flavor="hive"), partition_base_dir=str(root))
    got = orders_ds.to_table().sort_by("id")
    assert got.column("id").to_pylist() == [1, 2, 3, 4]
    assert got.column("table").to_pylist() == ["orders"] * 4
    assert got.column("dt").to_pylist() == ["2024-03-01"] * 4
    assert {"customer", "amount", "op", "ts_ms", "seq"} <= set(got.column_names)
    unified = ds.dataset(root, format="parquet", partitioning="hive",
                         schema=pa.unify_schemas([f.physical_schema
                                                  for f in lake.get_fragments()]
                                                 + [pa.schema([("db", pa.string()),
                                                               ("table", pa.string()),
                                                               ("dt", pa.string())])]))
    crm = unified.to_table(filter=(pc.field("db") == "crm"))
    assert crm.column("id").to_pylist() == [100] and crm.column("table").to_pylist() == ["orders"]


def test_duckdb_and_polars_read_one_table_of_the_whole_lake(root: Path) -> None:
    _lake(root, "key-value")
    duckdb = pytest.importorskip("duckdb")
    rows = duckdb.sql(
        f"SELECT id, name FROM read_parquet('{root}/**/*.parquet', hive_partitioning = true, "
        f"union_by_name = true) WHERE db = 'shop' AND \"table\" = 'customers' ORDER BY id"
    ).fetchall()
    assert rows == [(10, "ann"), (11, "bob")]
    pl = pytest.importorskip("polars")
    got = (pl.scan_parquet(f"{root}/**/*.parquet", hive_partitioning=True,
                           missing_columns="insert", extra_columns="ignore",
                           schema=None)
           .filter((pl.col("db") == "crm") & (pl.col("table") == "orders"))
           .select("id").collect())
    assert got["id"].to_list() == [100]


def test_warehouse_layout_gives_one_root_per_table(root: Path) -> None:
    _lake(root, "warehouse")
    folders = sorted({v.rsplit("/", 1)[0] for v in listing(root)[0]})
    assert folders == ["crm.db/orders/dt=2024-03-02", "shop.db/customers/dt=2024-03-01",
                       "shop.db/orders/dt=2024-03-01"]
    one = ds.dataset(root / "shop.db" / "orders", format="parquet", partitioning="hive")
    assert sorted(one.to_table().column("id").to_pylist()) == [1, 2, 3, 4]


def test_nested_layout_stays_the_default(root: Path) -> None:
    _lake(root, "nested")
    folders = sorted({v.rsplit("/", 1)[0] for v in listing(root)[0]})
    assert folders == ["crm/orders/dt=2024-03-02", "shop/customers/dt=2024-03-01",
                       "shop/orders/dt=2024-03-01"]
    assert files_sink(root).config.layout == "nested"
