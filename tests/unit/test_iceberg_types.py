"""The logical type -> Iceberg type map and the Arrow conversions of the iceberg sink."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest
from pyiceberg.types import (BinaryType, BooleanType, DateType, DecimalType, DoubleType,
                             FloatType, IntegerType, ListType, LongType, StringType,
                             TimestampType, TimestamptzType, TimeType)

from runtime.errors import TerminalError
from runtime.schema import Column, TableSchema
from runtime.types import T, to_arrow
from sinks.iceberg.types import convert_column, iceberg_type, table_schema, to_iceberg_arrow

CASES = [
    ("BOOLEAN", BooleanType()), ("TINYINT", IntegerType()), ("SMALLINT", IntegerType()),
    ("INT", IntegerType()), ("BIGINT", LongType()), ("DECIMAL(20,0)", DecimalType(20, 0)),
    ("DECIMAL(38,10)", DecimalType(38, 10)), ("FLOAT", FloatType()), ("DOUBLE", DoubleType()),
    ("CHAR(3)", StringType()), ("VARCHAR(10)", StringType()), ("STRING", StringType()),
    ("JSON", StringType()), ("BINARY(4)", BinaryType()), ("VARBINARY(9)", BinaryType()),
    ("BYTES", BinaryType()), ("DATE", DateType()), ("TIME(3)", TimeType()),
    ("TIMESTAMP(6)", TimestampType()), ("TIMESTAMP_LTZ(3)", TimestamptzType()),
]


@pytest.mark.parametrize("text,expected", CASES, ids=[c[0] for c in CASES])
def test_type_map(text, expected):
    assert iceberg_type(T(text), "c") == expected


def test_set_is_a_list_of_strings():
    t = iceberg_type(T("ARRAY<STRING>"), "c")
    assert isinstance(t, ListType) and t.element_type == StringType()


def test_decimal_beyond_38_digits_is_one_line_error():
    with pytest.raises(TerminalError, match=r"table s\.t column p is DECIMAL\(50,2\): Iceberg "
                                            r"decimals hold at most 38 digits"):
        iceberg_type(T("DECIMAL(50,2)"), "table s.t column p")


def test_identifier_fields_are_the_primary_key():
    schema = TableSchema("s.t", (Column("a", T("INT"), False), Column("b", T("STRING"), False),
                                 Column("v", T("DOUBLE"))), ("a", "b"))
    ice = table_schema(schema, keyed=True)
    assert [ice.find_field(i).name for i in ice.identifier_field_ids] == ["a", "b"]
    assert ice.find_field("a").required and not ice.find_field("v").required
    assert table_schema(schema, keyed=False).identifier_field_ids == []


def _roundtrip(text, values):
    schema = TableSchema("s.t", (Column("c", T(text)),), ())
    rows = pa.table({"c": pa.array(values, type=to_arrow(T(text)))})
    return to_iceberg_arrow(rows, table_schema(schema, keyed=False), "s.t")


def test_values_carry_exactly():
    assert _roundtrip("TINYINT", [-128, 127]).column("c").to_pylist() == [-128, 127]
    assert _roundtrip("DECIMAL(20,0)", [Decimal("18446744073709551615")]).column(
        "c").to_pylist() == [Decimal("18446744073709551615")]
    t = _roundtrip("TIME(6)", [dt.timedelta(hours=23, microseconds=5)])
    assert t.column("c").type == pa.time64("us")
    assert t.column("c").to_pylist() == [dt.time(23, 0, 0, 5)]
    ts = dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc)
    assert _roundtrip("TIMESTAMP_LTZ(6)", [ts]).column("c").to_pylist() == [ts]
    assert _roundtrip("ARRAY<STRING>", [["a", "b"], None]).column("c").to_pylist() == [
        ["a", "b"], None]


def test_time_outside_a_day_is_one_line_error():
    with pytest.raises(TerminalError, match=r"table s\.t column c: TIME value .* is not a time of "
                                            r"day"):
        _roundtrip("TIME(0)", [dt.timedelta(hours=-1)])
    with pytest.raises(TerminalError, match="not a time of day"):
        _roundtrip("TIME(0)", [dt.timedelta(hours=838)])


def test_nanoseconds_are_an_error_not_rounded():
    arr = pa.array([1_000, 1_001], type=pa.timestamp("ns"))
    with pytest.raises(TerminalError, match="column c: value .* has nanoseconds"):
        convert_column(arr, pa.timestamp("us"), "s.t", "c")
    ok = convert_column(pa.array([2_000], type=pa.timestamp("ns")), pa.timestamp("us"), "s.t", "c")
    assert ok.to_pylist() == [dt.datetime(1970, 1, 1, 0, 0, 0, 2)]


def test_missing_columns_are_null_and_required_ones_refused():
    schema = TableSchema("s.t", (Column("id", T("INT"), False), Column("v", T("STRING"))), ("id",))
    ice = table_schema(schema, keyed=True)
    out = to_iceberg_arrow(pa.table({"id": pa.array([1], pa.int32())}), ice, "s.t")
    assert out.column("v").to_pylist() == [None]
    with pytest.raises(TerminalError, match=r"table s\.t column id is required"):
        to_iceberg_arrow(pa.table({"v": ["x"]}), ice, "s.t")
