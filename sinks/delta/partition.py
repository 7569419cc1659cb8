"""``partition-by`` on Delta tables: Delta partitions by plain columns only, so a transform of
a column becomes a derived column the sink computes and writes next to it.

==================  ====================  ======================================================
partition field     Delta column          value
==================  ====================  ======================================================
``c``               ``c``                 the column itself
``year(c)``         ``c_year`` (integer)  the year, 2026
``month(c)``        ``c_month`` (string)  ``2026-11``
``day(c)``          ``c_day`` (date)      the date
``hour(c)``         ``c_hour`` (string)   ``2026-11-24-09``
``truncate(W, c)``  ``c_trunc`` (as c)    strings: the first W characters; integers: the value
                                          rounded down to a multiple of W (Iceberg's truncate)
``bucket(N, c)``    -- refused            a hash readers can't recompute to prune with
==================  ====================  ======================================================

Time transforms take DATE, TIMESTAMP (its wall clock) and TIMESTAMP_LTZ (in UTC) columns.  A
column a table lacks, a transform of a column of the wrong type, or a derived name the table
already has stop the pipeline with one line naming table and field.  Derived columns are
ordinary columns: readers filter on them to prune partitions (``c_day = DATE '2026-11-24'``).
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from runtime.errors import ConfigError, TerminalError
from sinks.lake.partition import TIME_TRANSFORMS, PartitionField

_SUFFIX = {"year": "year", "month": "month", "day": "day", "hour": "hour", "truncate": "trunc"}


def check_fields(fields: list[PartitionField]) -> None:
    """Refuse, before anything starts, what Delta can't express (``bucket``).  Raises
    :class:`ConfigError` keyed ``partition-by``."""
    for f in fields:
        if f.transform == "bucket":
            raise ConfigError(f"{f}: Delta tables have no bucket partitions (readers could not "
                              f"prune by a hash they can't recompute); partition by the column, "
                              f"truncate(W, {f.column}) or a time transform, or use "
                              f"type = \"iceberg\"", key="partition-by")


def column_name(f: PartitionField) -> str:
    """The Delta column holding partition field ``f`` (see the module table)."""
    if f.transform == "identity":
        return f.column
    return f"{f.column}_{_SUFFIX[f.transform]}"


def partition_columns(fields: list[PartitionField]) -> list[str]:
    """The Delta partition columns of ``fields``, in order."""
    return [column_name(f) for f in fields]


def add_partition_columns(rows: pa.Table, fields: list[PartitionField], table: str) -> pa.Table:
    """``rows`` with the derived column of every transformed field appended (computed with
    Arrow compute, no per-row Python).  Raises :class:`TerminalError` naming table and field
    when a column is missing, has a type the transform does not take, or the derived name is
    taken by a column of the table."""
    for f in fields:
        if f.column not in rows.column_names:
            raise TerminalError(f"delta: table {table} has no column {f.column!r} for "
                                f"partition-by {str(f)!r}; add it to the table or change "
                                f"partition-by")
        if f.transform == "identity":
            continue
        name = column_name(f)
        if name in rows.column_names:
            raise TerminalError(f"delta: table {table}: partition-by {str(f)!r} needs a "
                                f"column {name!r}, which the table already has; rename it "
                                f"in a transform")
        rows = rows.append_column(name, _derive(rows.column(f.column), f, table))
    return rows


def _derive(col: pa.ChunkedArray, f: PartitionField, table: str) -> pa.ChunkedArray:
    t = col.type
    if f.transform in TIME_TRANSFORMS:
        if pa.types.is_timestamp(t) and t.tz is not None:
            col = col.cast(pa.timestamp(t.unit))  # the instant's UTC wall clock
        elif not (pa.types.is_timestamp(t) or pa.types.is_date(t)):
            raise _bad_type(f, t, table, "a DATE, TIMESTAMP or TIMESTAMP_LTZ")
        if f.transform == "year":
            return pc.year(col).cast(pa.int32())
        if f.transform == "day":
            return col.cast(pa.date32()) if pa.types.is_date(t) else pc.cast(
                pc.floor_temporal(col, unit="day"), pa.date32())
        if f.transform == "hour" and pa.types.is_date(t):
            raise _bad_type(f, t, table, "a TIMESTAMP or TIMESTAMP_LTZ")
        fmt = "%Y-%m" if f.transform == "month" else "%Y-%m-%d-%H"
        if pa.types.is_date(col.type):
            col = col.cast(pa.timestamp("s"))
        return pc.strftime(col, format=fmt)
    assert f.transform == "truncate" and f.param is not None
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pc.utf8_slice_codeunits(col, 0, f.param)
    if pa.types.is_integer(t):
        w = pa.scalar(f.param, t)
        # floor to a multiple of W, negatives included: v - (((v % W) + W) % W)
        rem = pc.subtract(col, pc.multiply(pc.divide(col, w), w))
        rem = pc.if_else(pc.less(rem, pa.scalar(0, t)), pc.add(rem, w), rem)
        return pc.subtract(col, rem)
    raise _bad_type(f, t, table, "a string or integer")


def _bad_type(f: PartitionField, t: pa.DataType, table: str, want: str) -> TerminalError:
    return TerminalError(f"delta: table {table}: partition-by {str(f)!r} needs {want} "
                         f"column, {f.column!r} is {t}; change partition-by")
