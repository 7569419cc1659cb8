"""The Delta sink's type map (sinks/delta/types.py): every logical type, the conversions of
values Delta has no type for, and which type changes a table can take."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

pytest.importorskip("deltalake")

from runtime.errors import BadRecordError, TerminalError  # noqa: E402
from runtime.types import T  # noqa: E402
from sinks.delta.types import delta_schema, delta_type, to_delta, widening  # noqa: E402

MAP = {
    "BOOLEAN": pa.bool_(), "TINYINT": pa.int8(), "SMALLINT": pa.int16(), "INT": pa.int32(),
    "BIGINT": pa.int64(), "DECIMAL(20,0)": pa.decimal128(20, 0),
    "DECIMAL(38,10)": pa.decimal128(38, 10), "FLOAT": pa.float32(), "DOUBLE": pa.float64(),
    "CHAR(3)": pa.string(), "VARCHAR(20)": pa.string(), "STRING": pa.string(),
    "JSON": pa.string(), "BINARY(4)": pa.binary(), "VARBINARY(9)": pa.binary(),
    "BYTES": pa.binary(), "DATE": pa.date32(), "TIME(0)": pa.int64(), "TIME(6)": pa.int64(),
    "TIME(9)": pa.int64(), "TIMESTAMP(3)": pa.timestamp("us"),
    "TIMESTAMP(9)": pa.timestamp("us"), "TIMESTAMP_LTZ(6)": pa.timestamp("us", tz="UTC"),
    "ARRAY<STRING>": pa.list_(pa.string()), "ARRAY<TIME(6)>": pa.list_(pa.int64()),
}


@pytest.mark.parametrize("logical", sorted(MAP))
def test_every_logical_type_has_its_delta_type(logical):
    assert delta_type(T(logical)) == MAP[logical]


def test_decimals_beyond_38_digits_are_refused_naming_table_and_column():
    with pytest.raises(ValueError, match="38"):
        delta_type(T("DECIMAL(40,2)"))
    with pytest.raises(TerminalError, match=r"table shop.t: column 'big'.*38"):
        delta_schema(pa.schema([("big", pa.decimal256(40, 2))]), "shop.t")


def test_every_delta_column_is_nullable():
    schema = delta_schema(pa.schema([pa.field("id", pa.int64(), False)]), "t")
    assert schema.field("id").nullable


def test_time_becomes_signed_microseconds_since_midnight():
    rows = pa.table({"t": pa.array([dt.timedelta(hours=-838, minutes=-59, seconds=-59),
                                    dt.timedelta(seconds=1, microseconds=5), None],
                                   pa.duration("us"))})
    out = to_delta(rows, "t")
    assert out.column("t").type == pa.int64()
    assert out.column("t").to_pylist() == [-(838 * 3600 + 59 * 60 + 59) * 10**6, 1_000_005, None]


def test_nanosecond_values_pass_when_whole_microseconds_and_stop_otherwise():
    whole = pa.table({"ts": pa.array([1_000, None], pa.timestamp("ns")),
                      "t": pa.array([2_000], pa.duration("ns")).take([0, 0])})
    out = to_delta(whole, "t")
    assert out.column("ts").to_pylist() == [dt.datetime(1970, 1, 1, 0, 0, 0, 1), None]
    assert out.column("t").to_pylist() == [2, 2]
    with pytest.raises(BadRecordError, match=r"table shop.t: column 'ts'.*beyond microseconds"):
        to_delta(pa.table({"ts": pa.array([1_001], pa.timestamp("ns"))}), "shop.t")


def test_exact_values_round_trip_unchanged():
    rows = pa.table({
        "u64": pa.array([Decimal(2**64 - 1), None], pa.decimal128(20, 0)),
        "ltz": pa.array([dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc), None],
                        pa.timestamp("us", tz="UTC")),
        "tags": pa.array([["a", "b"], []], pa.list_(pa.string())),
        "raw": pa.array([b"\x00\x01\x00", None], pa.binary()),
    })
    assert to_delta(rows, "t").equals(rows.cast(delta_schema(rows.schema, "t")))
    assert to_delta(rows, "t").to_pylist() == rows.to_pylist()


@pytest.mark.parametrize("old, new, how", [
    (pa.int32(), pa.int32(), "same"),
    (pa.int64(), pa.int32(), "cast"),
    (pa.float64(), pa.float32(), "cast"),
    (pa.decimal128(12, 2), pa.decimal128(10, 2), "cast"),
    (pa.int32(), pa.int64(), "widen"),
    (pa.int8(), pa.int16(), "widen"),
    (pa.float32(), pa.float64(), "widen"),
    (pa.int32(), pa.float64(), "widen"),
    (pa.int32(), pa.decimal128(12, 0), "widen"),
    (pa.decimal128(10, 2), pa.decimal128(12, 2), "widen"),
    (pa.decimal128(10, 2), pa.decimal128(12, 4), "widen"),
    (pa.date32(), pa.timestamp("us"), "widen"),
    (pa.decimal128(10, 2), pa.decimal128(10, 4), "no"),
    (pa.int64(), pa.float64(), "no"),
    (pa.string(), pa.int64(), "no"),
    (pa.int64(), pa.string(), "no"),
    (pa.date32(), pa.timestamp("us", tz="UTC"), "no"),
])
def test_which_type_changes_a_column_takes(old, new, how):
    assert widening(old, new) == how
