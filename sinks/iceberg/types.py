"""The one map from the hub's logical types (:mod:`runtime.types`) to Iceberg types, and the
conversion of Arrow columns to what an Iceberg column of that type holds.

=====================  ==================  ==============================================
logical type           Iceberg type        note
=====================  ==================  ==============================================
BOOLEAN                boolean
TINYINT, SMALLINT, INT int                 Iceberg has no narrower integers: exact widening
BIGINT                 long
DECIMAL(p,s), p <= 38  decimal(p,s)        BIGINT UNSIGNED arrives as DECIMAL(20,0)
DECIMAL(p,s), p > 38   (error)             Iceberg decimals hold at most 38 digits
FLOAT / DOUBLE         float / double
CHAR, VARCHAR, STRING  string
JSON                   string              the JSON text
BINARY .. BYTES        binary              trailing zero bytes kept
DATE                   date
TIME(p)                time                microseconds; a value outside 00:00..24:00 (MySQL
                                           TIME reaches -838:59:59) or with nanoseconds is
                                           an error naming table, column and value
TIMESTAMP(p)           timestamp           microseconds; nanoseconds are an error
TIMESTAMP_LTZ(p)       timestamptz         microseconds, UTC
ARRAY<T>               list<T>             MySQL SET arrives as ARRAY<STRING>
=====================  ==================  ==============================================

Identifier fields (Iceberg's primary key) are the table's primary key, whose columns are
required; every other column is optional.
"""
from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.schema import Schema
from pyiceberg.types import (BinaryType, BooleanType, DateType, DecimalType, DoubleType,
                             FloatType, IcebergType, IntegerType, ListType, LongType, NestedField,
                             StringType, TimestampType, TimestamptzType, TimeType)

from runtime.errors import TerminalError
from runtime.schema import TableSchema
from runtime.types import DataType, parse_type

#: Microseconds in a day: Iceberg ``time`` is a time of day.
_DAY_US = 86_400_000_000

_SIMPLE: dict[str, IcebergType] = {
    "BOOLEAN": BooleanType(), "TINYINT": IntegerType(), "SMALLINT": IntegerType(),
    "INT": IntegerType(), "BIGINT": LongType(), "FLOAT": FloatType(), "DOUBLE": DoubleType(),
    "CHAR": StringType(), "VARCHAR": StringType(), "STRING": StringType(), "JSON": StringType(),
    "BINARY": BinaryType(), "VARBINARY": BinaryType(), "BYTES": BinaryType(),
    "DATE": DateType(), "TIME": TimeType(), "TIMESTAMP": TimestampType(),
    "TIMESTAMP_LTZ": TimestamptzType(),
}


class _Ids:
    """Field ids for a new schema (``create_table`` assigns fresh ones anyway; these only
    have to be unique)."""

    def __init__(self, start: int = 1):
        self.next = start

    def __call__(self) -> int:
        self.next += 1
        return self.next - 1


def iceberg_type(t: DataType, where: str, ids: _Ids | None = None) -> IcebergType:
    """The Iceberg type of logical type ``t``; ``where`` (``table db.t column c``) names the
    column in the one-line error for a type Iceberg can't hold."""
    simple = _SIMPLE.get(t.kind)
    if simple is not None:
        return simple
    if t.kind == "DECIMAL":
        assert t.precision is not None and t.scale is not None
        if t.precision > 38:
            raise TerminalError(
                f"iceberg: {where} is {t}: Iceberg decimals hold at most 38 digits; cast the "
                "column to a narrower DECIMAL or to STRING in a [[transform]]")
        return DecimalType(t.precision, t.scale)
    if t.kind == "ARRAY":
        assert t.element is not None
        ids = ids or _Ids(1000)
        return ListType(element_id=ids(), element_type=iceberg_type(t.element, where, ids),
                        element_required=False)
    raise TerminalError(f"iceberg: {where} has type {t}, which has no Iceberg type")


def arrow_type(t: IcebergType) -> pa.DataType:
    """The Arrow type of column data handed to pyiceberg for an Iceberg type."""
    if isinstance(t, BooleanType):
        return pa.bool_()
    if isinstance(t, IntegerType):
        return pa.int32()
    if isinstance(t, LongType):
        return pa.int64()
    if isinstance(t, FloatType):
        return pa.float32()
    if isinstance(t, DoubleType):
        return pa.float64()
    if isinstance(t, DecimalType):
        return pa.decimal128(t.precision, t.scale)
    if isinstance(t, StringType):
        return pa.string()
    if isinstance(t, BinaryType):
        return pa.binary()
    if isinstance(t, DateType):
        return pa.date32()
    if isinstance(t, TimeType):
        return pa.time64("us")
    if isinstance(t, TimestamptzType):
        return pa.timestamp("us", tz="UTC")
    if isinstance(t, TimestampType):
        return pa.timestamp("us")
    if isinstance(t, ListType):
        return pa.list_(arrow_type(t.element_type))
    raise TerminalError(f"iceberg: column type {t} is not written by the hub")


def table_schema(schema: TableSchema, keyed: bool, extra: list[tuple[str, str]] = ()) -> Schema:
    """The Iceberg schema of a new table for ``schema``; ``keyed``: the primary key becomes
    the identifier fields (required columns).  ``extra``: more columns (name, logical type
    text), e.g. the changelog's ``op``, ``ts_ms``, ``seq``."""
    ids = _Ids(1)
    key = set(schema.primary_key) if keyed else set()
    fields = []
    for col in schema.columns:
        where = f"table {schema.table} column {col.name}"
        fields.append(NestedField(ids(), col.name, iceberg_type(col.type, where, ids),
                                  required=col.name in key, doc=col.comment))
    for name, text in extra:
        fields.append(NestedField(ids(), name, iceberg_type(parse_type(text), name, ids),
                                  required=False))
    ident = [f.field_id for f in fields if f.name in key]
    return Schema(*fields, identifier_field_ids=ident)


def to_iceberg_arrow(table: pa.Table, schema: Schema, table_name: str) -> pa.Table:
    """``table`` (the hub's Arrow types, any subset of the columns) as the columns of Iceberg
    ``schema``, in its order: columns it lacks are null (a column dropped at the source), the
    rest converted exactly.  Raises a one-line :class:`TerminalError` naming table, column
    and the first value that can't be carried (a TIME outside a day, nanoseconds) or a null
    in a required column."""
    arrays, fields = [], []
    n = table.num_rows
    for f in schema.fields:
        target = arrow_type(f.field_type)
        if f.name in table.column_names:
            arr = convert_column(table.column(f.name), target, table_name, f.name)
        else:
            arr = pa.nulls(n, type=target)
        if f.required and arr.null_count:
            raise TerminalError(f"iceberg: table {table_name} column {f.name} is required "
                                f"(a key column) but {arr.null_count} row(s) have no value")
        arrays.append(arr)
        fields.append(pa.field(f.name, target, nullable=not f.required))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def convert_column(arr: pa.ChunkedArray | pa.Array, target: pa.DataType, table_name: str,
                   column: str) -> pa.ChunkedArray | pa.Array:
    """One column as ``target`` (see :func:`to_iceberg_arrow`)."""
    if arr.type == target:
        return arr
    if pa.types.is_duration(arr.type) and pa.types.is_time(target):
        micros = _exact_micros(arr, table_name, column)
        bad = pc.or_(pc.less(micros, 0), pc.greater_equal(micros, _DAY_US))
        if pc.any(bad).as_py():
            value = dt.timedelta(microseconds=pc.filter(micros, bad)[0].as_py())
            raise TerminalError(
                f"iceberg: table {table_name} column {column}: TIME value {value} is not a time "
                "of day (Iceberg time holds 00:00 to 24:00); cast it to BIGINT or STRING in a "
                "[[transform]]")
        return micros.cast(pa.time64("us"))
    if pa.types.is_timestamp(arr.type) and arr.type.unit == "ns":
        micros = _exact_micros(arr, table_name, column)
        return micros.cast(pa.timestamp("us", tz=arr.type.tz)).cast(target)
    try:
        return arr.cast(target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise TerminalError(f"iceberg: table {table_name} column {column}: can't write "
                            f"{arr.type} values as {target}: {exc}") from None


def _exact_micros(arr: pa.ChunkedArray | pa.Array, table_name: str, column: str):
    """Microseconds of a duration/int column in us or ns; nanoseconds are an error."""
    unit = getattr(arr.type, "unit", "us")
    ints = arr.cast(pa.int64())
    if unit == "us":
        return ints
    if unit != "ns":
        return pc.multiply(ints, {"s": 1_000_000, "ms": 1000}[unit])
    rest = pc.not_equal(pc.subtract(ints, pc.multiply(pc.divide(ints, 1000), 1000)), 0)
    if pc.any(rest).as_py():
        value = pc.filter(ints, rest)[0].as_py()
        raise TerminalError(f"iceberg: table {table_name} column {column}: value {value}ns has "
                            "nanoseconds, which Iceberg (microseconds) can't hold; round it in "
                            "a [[transform]]")
    return pc.divide(ints, 1000)
