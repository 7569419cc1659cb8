"""What the files sink tells a Hive Metastore: Hive types of Arrow types, partition keys of
partition-format, Hive names (pure functions; the metastore itself is in
tests/integration/hive)."""
from __future__ import annotations

import pyarrow as pa
import pytest

from runtime.errors import ConfigError, TerminalError
from sinks.files.hive import (avro_hive_columns, hive_columns, hive_name, partition_keys,
                              partition_values, storage_of)


def test_arrow_types_map_to_the_hive_types_that_hold_every_value() -> None:
    schema = pa.schema([
        ("a", pa.int8()), ("b", pa.int16()), ("c", pa.int32()), ("d", pa.int64()),
        ("e", pa.uint8()), ("f", pa.uint32()), ("g", pa.uint64()), ("h", pa.float32()),
        ("i", pa.float64()), ("j", pa.bool_()), ("k", pa.string()), ("l", pa.binary()),
        ("m", pa.date32()), ("n", pa.timestamp("ms")), ("o", pa.timestamp("us", tz="UTC")),
        ("p", pa.decimal128(38, 10)), ("q", pa.list_(pa.int32())),
        ("r", pa.struct([("x", pa.string()), ("y", pa.float64())])),
        ("s", pa.map_(pa.string(), pa.int64())), ("t", pa.large_string())])
    assert [t for _, t in hive_columns(schema, "db.t")] == [
        "tinyint", "smallint", "int", "bigint", "smallint", "bigint", "decimal(20,0)", "float",
        "double", "boolean", "string", "binary", "date", "timestamp", "timestamp",
        "decimal(38,10)", "array<int>", "struct<x:string,y:double>", "map<string,bigint>",
        "string"]


@pytest.mark.parametrize("t", [pa.time64("us"), pa.duration("s"), pa.decimal256(50, 2)])
def test_types_hive_has_none_for_are_one_line_naming_table_and_column(t) -> None:
    with pytest.raises(TerminalError, match=r"table db\.t, column 'c': Hive has no type"):
        hive_columns(pa.schema([("c", t)]), "db.t")


def test_partition_keys_come_from_key_value_segments() -> None:
    assert partition_keys("dt=%Y-%m-%d/hr=%H") == ["dt", "hr"]
    assert partition_keys("Year=%Y") == ["year"]
    assert partition_keys(None) == []
    assert partition_values("dt=2024-03-01/hr=10") == ["2024-03-01", "10"]
    for bad in ("%Y/%m", "dt=%Y/%H", "d-t=%Y", "%Y=%m", "dt=%Y/dt=%H"):
        with pytest.raises(ValueError):
            partition_keys(bad)


def test_hive_names_are_lowercased_and_checked() -> None:
    assert hive_name("{db}_{table}", "Shop", "Orders", "table") == "shop_orders"
    with pytest.raises(TerminalError, match="'order-lines'"):
        hive_name("{table}", "shop", "order-lines", "table")


def test_storage_follows_the_format() -> None:
    assert storage_of("parquet", {}).serde.endswith("ParquetHiveSerDe")
    assert storage_of("jsonl", {}).serde == "org.apache.hadoop.hive.serde2.JsonSerDe"
    csv = storage_of("csv", {"delimiter": ";", "header": False})
    assert csv.serde_parameters["separatorChar"] == ";" and csv.table_parameters == {}
    assert storage_of("avro", {}).serde.endswith("AvroSerDe")
    with pytest.raises(ConfigError):
        storage_of("debezium-json", {})


def test_avro_envelopes_map_to_structs() -> None:
    from formats.codec.avro import envelope_record
    from runtime.schema import Column, TableSchema
    from runtime.types import T

    schema = TableSchema("db.t", (Column("id", T("BIGINT"), False), Column("at", T("TIMESTAMP")),
                                  Column("d", T("DATE")), Column("tags", T("ARRAY<STRING>"))),
                         ("id",))
    row = "struct<id:bigint,at:timestamp,d:date,tags:array<string>>"
    assert avro_hive_columns(envelope_record(schema), "db.t") == [
        ("before", row), ("after", row), ("op", "string"), ("ts_ms", "bigint"),
        ("source", "struct<db:string,table:string>")]
