"""Logical types (:mod:`runtime.types`) to Delta Lake types, and the rows cast to them.

The one type map of the Delta sink.  Delta has fewer types than the hub: where a value has
no Delta type of its own it gets an exact, documented mapping, never a silent loss.

==================  ==========================  ==================================================
logical type        Delta type (Arrow type)     note
==================  ==========================  ==================================================
BOOLEAN             boolean
TINYINT             byte (int8)
SMALLINT            short (int16)
INT                 integer (int32)
BIGINT              long (int64)
DECIMAL(p,s) p<=38  decimal(p,s)                BIGINT UNSIGNED arrives as DECIMAL(20,0)
DECIMAL(p,s) p>38   -- error                    Delta decimals hold at most 38 digits
FLOAT, DOUBLE       float, double
CHAR/VARCHAR/       string
STRING, JSON                                    JSON keeps its text
BINARY/VARBINARY/   binary                      GEOMETRY arrives as BYTES (WKB)
BYTES
DATE                date
TIME(p)             long (int64)                signed microseconds since midnight (MySQL
                                                TIME reaches -838:59:59), as Debezium's
                                                MicroTime; TIME(7..9) must have whole micros
TIMESTAMP(p)        timestamp_ntz               wall clock, microseconds (table feature
                                                timestampNtz: Delta readers >= 3 / writers 7)
TIMESTAMP_LTZ(p)    timestamp                   an instant, UTC, microseconds
ARRAY<T>            array<T>                    SET arrives as ARRAY<STRING>
==================  ==========================  ==================================================

Fractional seconds beyond microseconds (TIME/TIMESTAMP(7..9)) have no Delta type
(``timestampNanos`` is a preview feature other readers refuse): a value with nonzero
nanoseconds stops the pipeline with a line naming table and column; whole microseconds pass.

Unsigned Arrow integers (which no source of ours produces: logical types widen them) map to
the next wider signed type, ``uint64`` to ``decimal(20,0)``.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from runtime.errors import BadRecordError, TerminalError
from runtime.types import DataType, to_arrow

#: Largest precision of a Delta decimal.
MAX_DECIMAL_PRECISION = 38

_UNSIGNED = {8: pa.int16(), 16: pa.int32(), 32: pa.int64()}


def delta_type(t: DataType) -> pa.DataType:
    """The Arrow type a Delta table stores logical type ``t`` as (see the module table).
    Raises ValueError for a type Delta can't hold (DECIMAL with more than 38 digits)."""
    return delta_arrow_type(to_arrow(t))


def delta_arrow_type(a: pa.DataType) -> pa.DataType:
    """The Delta-storable Arrow type of a column of the hub's Arrow type ``a`` (the map of
    :func:`delta_type`, on the Arrow types rows carry).  Raises ValueError when there is
    none."""
    if pa.types.is_duration(a) or pa.types.is_time(a):
        return pa.int64()
    if pa.types.is_timestamp(a):
        return pa.timestamp("us", tz="UTC" if a.tz else None)
    if pa.types.is_decimal(a):
        if a.precision > MAX_DECIMAL_PRECISION:
            raise ValueError(f"DECIMAL({a.precision},{a.scale}) has more than "
                             f"{MAX_DECIMAL_PRECISION} digits, the most a Delta decimal holds")
        return pa.decimal128(a.precision, a.scale)
    if pa.types.is_unsigned_integer(a):
        return _UNSIGNED.get(a.bit_width) or pa.decimal128(20, 0)
    if pa.types.is_large_string(a) or pa.types.is_string_view(a):
        return pa.string()
    if pa.types.is_large_binary(a) or pa.types.is_fixed_size_binary(a) \
            or pa.types.is_binary_view(a):
        return pa.binary()
    if pa.types.is_list(a) or pa.types.is_large_list(a):
        return pa.list_(delta_arrow_type(a.value_type))
    if pa.types.is_null(a):
        return pa.string()
    if pa.types.is_float16(a):
        return pa.float32()
    if (pa.types.is_boolean(a) or pa.types.is_integer(a) or pa.types.is_floating(a)
            or pa.types.is_string(a) or pa.types.is_binary(a) or pa.types.is_date32(a)):
        return a
    if pa.types.is_date64(a):
        return pa.date32()
    raise ValueError(f"Arrow type {a} has no Delta type")


def delta_schema(rows: pa.Schema, table: str) -> pa.Schema:
    """``rows`` with every column's type mapped (:func:`delta_arrow_type`) and every column
    nullable: a dropped source column keeps its place with nulls in later rows, so no Delta
    column may refuse them.  Raises :class:`TerminalError` naming table and column."""
    fields = []
    for f in rows:
        try:
            fields.append(pa.field(f.name, delta_arrow_type(f.type), True))
        except ValueError as exc:
            raise TerminalError(f"delta: table {table}: column {f.name!r}: {exc}; map it to "
                                f"a type Delta holds (a transform casting it, e.g. to "
                                f"STRING) and restart") from None
    return pa.schema(fields)


def to_delta(rows: pa.Table, table: str) -> pa.Table:
    """``rows`` cast to :func:`delta_schema`: TIME as microseconds, timestamps in
    microseconds (exact, else :class:`BadRecordError` naming table and column)."""
    schema = delta_schema(rows.schema, table)
    if schema == rows.schema:
        return rows
    cols = []
    for col, src, dst in zip(rows.columns, rows.schema, schema):
        cols.append(col if src.type == dst.type else _cast(col, src.type, dst.type, table,
                                                           src.name))
    return pa.Table.from_arrays(cols, schema=schema)


def _cast(col: pa.ChunkedArray, src: pa.DataType, dst: pa.DataType, table: str,
          name: str) -> pa.ChunkedArray:
    if (pa.types.is_duration(src) or pa.types.is_time(src)) and src.unit != "us":
        col = _exact(col, pa.duration("us") if pa.types.is_duration(src) else pa.time64("us"),
                     table, name)
        src = col.type
    if pa.types.is_duration(src) or pa.types.is_time(src):
        # durations and times are int64 counts of their unit: a zero-copy reinterpretation
        return pa.chunked_array([c.view(pa.int64()) if pa.types.is_duration(src)
                                 else c.cast(pa.int64()) for c in col.chunks], pa.int64())
    if pa.types.is_timestamp(src):
        return _exact(col, dst, table, name)
    try:
        return col.cast(dst)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise BadRecordError(f"delta: table {table}: column {name!r}: a value of type {src} "
                             f"does not fit Delta type {dst}: {exc}") from None


def _exact(col: pa.ChunkedArray, dst: pa.DataType, table: str, name: str) -> pa.ChunkedArray:
    """``col`` cast to a coarser time unit, refusing values it would truncate."""
    try:
        return col.cast(dst, safe=True)
    except pa.ArrowInvalid:
        bad = pc.filter(col, pc.not_equal(col.cast(dst, safe=False).cast(col.type), col))
        try:
            shown = bad.cast(pa.string())[0].as_py()
        except pa.ArrowNotImplementedError:  # durations: their count of nanoseconds
            shown = f"{bad.cast(pa.int64())[0].as_py()} ns"
        raise BadRecordError(
            f"delta: table {table}: column {name!r}: value {shown} has fractional seconds "
            f"beyond microseconds, which Delta can't hold; round it in a transform (or in "
            f"the source)") from None


def widening(old: pa.DataType, new: pa.DataType) -> str:
    """How a column of Delta type ``old`` takes values of Delta type ``new``:

    * ``"same"``: the types are equal;
    * ``"cast"``: every ``new`` value is exactly an ``old`` value (the source narrowed the
      column, e.g. BIGINT -> INT): the rows are cast to the table's type;
    * ``"widen"``: every ``old`` value is exactly a ``new`` value (INT -> BIGINT, FLOAT ->
      DOUBLE, DECIMAL(10,2) -> DECIMAL(12,2), DATE -> TIMESTAMP_NTZ): the table's column can
      be widened;
    * ``"no"``: neither (STRING -> INT, DECIMAL(10,2) -> DECIMAL(10,4), ...).
    """
    if old == new:
        return "same"
    if _fits(new, old):
        return "cast"
    if _fits(old, new):
        return "widen"
    return "no"


def _fits(a: pa.DataType, b: pa.DataType) -> bool:
    """Whether every value of ``a`` is exactly a value of ``b``."""
    if pa.types.is_signed_integer(a) and pa.types.is_signed_integer(b):
        return a.bit_width <= b.bit_width
    if pa.types.is_signed_integer(a) and pa.types.is_decimal(b):
        digits = {8: 3, 16: 5, 32: 10, 64: 19}[a.bit_width]
        return b.precision - b.scale >= digits
    if pa.types.is_floating(a) and pa.types.is_floating(b):
        return a.bit_width <= b.bit_width
    if pa.types.is_signed_integer(a) and pa.types.is_float64(b):
        return a.bit_width <= 32
    if pa.types.is_decimal(a) and pa.types.is_decimal(b):
        return b.scale >= a.scale and b.precision - b.scale >= a.precision - a.scale
    if pa.types.is_date32(a) and pa.types.is_timestamp(b):
        return b.tz is None
    if pa.types.is_list(a) and pa.types.is_list(b):
        return a.value_type == b.value_type or _fits(a.value_type, b.value_type)
    return False


def describe(a: pa.DataType) -> str:
    """The Delta name of an Arrow type a Delta table stores, for messages."""
    names = {pa.bool_(): "boolean", pa.int8(): "byte", pa.int16(): "short",
             pa.int32(): "integer", pa.int64(): "long", pa.float32(): "float",
             pa.float64(): "double", pa.string(): "string", pa.binary(): "binary",
             pa.date32(): "date", pa.timestamp("us"): "timestamp_ntz",
             pa.timestamp("us", tz="UTC"): "timestamp"}
    if a in names:
        return names[a]
    if pa.types.is_decimal(a):
        return f"decimal({a.precision},{a.scale})"
    if pa.types.is_list(a):
        return f"array<{describe(a.value_type)}>"
    return str(a)
