"""Creating an Iceberg table for a source table (schema, identifier fields, partition spec,
properties) and evolving its schema as the source's changes.

Schema evolution, per commit, from the columns of the checkpoint's rows:

* a column the table lacks is added (optional);
* a column the rows lack (dropped at the source) stays, and is null in new rows;
* a type Iceberg can widen to (int -> long, float -> double, decimal(p,s) -> decimal(P,s)
  with P > p) is applied; a narrower source type the table's column holds (int into long) is
  written as the table's type; anything else stops with one line naming table, column and
  remedy.
"""
from __future__ import annotations

import pyarrow as pa
from pyiceberg.partitioning import PartitionField as IcebergPartitionField
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import (BucketTransform, DayTransform, HourTransform,
                                  IdentityTransform, MonthTransform, TruncateTransform,
                                  YearTransform)
from pyiceberg.types import (DecimalType, DoubleType, FloatType, IcebergType, IntegerType,
                             ListType, LongType)

from runtime.errors import ConfigError, TerminalError
from runtime.schema import TableSchema
from runtime.types import DataType, from_arrow, parse_type
from sinks.iceberg.types import iceberg_type, table_schema
from sinks.lake.partition import PartitionField

#: Columns a changelog table has beyond the source's (see TableChanges.changelog).
CHANGELOG_COLUMNS = [("op", "STRING"), ("ts_ms", "BIGINT"), ("seq", "BIGINT")]


def partition_spec(fields: list[PartitionField], schema: Schema, table: str) -> PartitionSpec:
    """``partition-by`` as an Iceberg partition spec of ``schema`` (field ids of ``schema``;
    ``create_table`` maps them onto the fresh ids)."""
    out = []
    for i, p in enumerate(fields):
        try:
            source = schema.find_field(p.column)
        except ValueError:
            raise ConfigError(f"iceberg: table {table} has no column {p.column!r} to partition "
                              "by", key="partition-by") from None
        if p.transform == "identity":
            transform, name = IdentityTransform(), p.column
        elif p.transform in ("year", "month", "day", "hour"):
            transform = {"year": YearTransform, "month": MonthTransform, "day": DayTransform,
                         "hour": HourTransform}[p.transform]()
            name = f"{p.column}_{p.transform}"
        elif p.transform == "bucket":
            transform, name = BucketTransform(num_buckets=p.param), f"{p.column}_bucket"
        elif p.transform == "truncate":
            transform, name = TruncateTransform(width=p.param), f"{p.column}_trunc"
        else:
            raise ConfigError(f"iceberg: unknown partition transform {p.transform!r}",
                              key="partition-by")
        if not transform.can_transform(source.field_type):
            raise ConfigError(f"iceberg: table {table}: {p.transform}() can't partition column "
                              f"{p.column} of type {source.field_type}", key="partition-by")
        out.append(IcebergPartitionField(source_id=source.field_id, field_id=1000 + i,
                                         transform=transform, name=name))
    return PartitionSpec(*out)


def desired_columns(schema: TableSchema, rows: pa.Schema,
                    changelog: bool) -> list[tuple[str, DataType]]:
    """Name and logical type of every column a commit writes: the schema's, then columns of
    the rows (``rows``: their Arrow schema) the schema no longer has (dropped within the
    checkpoint), then the changelog's."""
    out = [(c.name, c.type) for c in schema.columns]
    known = {c.name for c in schema.columns}
    out += [(f.name, from_arrow(f.type)) for f in rows if f.name not in known]
    if changelog:
        out += [(n, parse_type(t)) for n, t in CHANGELOG_COLUMNS]
    return out


def same_type(a: IcebergType, b: IcebergType) -> bool:
    """Equal types, field ids of list elements aside."""
    if isinstance(a, ListType) and isinstance(b, ListType):
        return same_type(a.element_type, b.element_type)
    return a == b


def widens(old: IcebergType, new: IcebergType) -> bool:
    """Whether Iceberg can promote a column of type ``old`` to ``new``."""
    if isinstance(old, IntegerType) and isinstance(new, LongType):
        return True
    if isinstance(old, FloatType) and isinstance(new, DoubleType):
        return True
    return (isinstance(old, DecimalType) and isinstance(new, DecimalType)
            and old.scale == new.scale and new.precision > old.precision)


def evolve(update, current: Schema, columns: list[tuple[str, DataType]], table: str) -> bool:
    """Apply to ``update`` (a pyiceberg UpdateSchema) what ``columns`` need of ``current``
    (see the module doc).  Returns whether anything changed."""
    changed = False
    for name, t in columns:
        new = iceberg_type(t, f"table {table} column {name}")
        field = current.find_field(name) if name in current.column_names else None
        if field is None:
            update.add_column(name, new)
            changed = True
        elif same_type(field.field_type, new) or widens(new, field.field_type):
            continue  # the same type, or one the column holds (written as the column's type)
        elif widens(field.field_type, new):
            update.update_column(name, field_type=new)
            changed = True
        else:
            raise TerminalError(
                f"iceberg: table {table} column {name}: the source's type {t} ({new}) can't be "
                f"stored in the Iceberg column of type {field.field_type} (Iceberg widens only "
                "int to long, float to double and decimal precision): rename the column at the "
                "source, cast it in a [[transform]], or drop the Iceberg table to recreate it")
    return changed


def new_table_schema(schema: TableSchema, rows: pa.Schema, keyed: bool) -> Schema:
    """The schema of a new table: the source's (``keyed``: its key as identifier fields), the
    columns of the rows (``rows``: their Arrow schema) it no longer has, and a changelog
    table's ``op``, ``ts_ms``, ``seq``."""
    extra = [(f.name, str(from_arrow(f.type))) for f in rows
             if f.name not in {c.name for c in schema.columns}]
    return table_schema(schema, keyed, extra + ([] if keyed else CHANGELOG_COLUMNS))
