"""``partition-by`` of the lake-table sinks: columns with Iceberg's partition transforms.

Each item is a column name (identity) or a transform of one: ``year(c)``, ``month(c)``,
``day(c)``, ``hour(c)`` of a DATE/TIMESTAMP column, ``bucket(N, c)`` (hash into N buckets) or
``truncate(W, c)`` (strings cut to W characters, integers and decimals floored to a multiple of
W) -- the names and argument order of Iceberg's transforms and of Flink and Spark SQL's
``PARTITIONED BY``.  Iceberg applies them natively; a format without transforms (Delta)
materialises them as derived columns.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from runtime.schema import TableSchema

TRANSFORMS = ("identity", "year", "month", "day", "hour", "bucket", "truncate")
#: Transforms that take a width or count before the column.
WITH_PARAM = ("bucket", "truncate")
#: Transforms of time columns.
TIME_TRANSFORMS = ("year", "month", "day", "hour")

_CALL = re.compile(r"^\s*([A-Za-z_]+)\s*\((.*)\)\s*$", re.S)


@dataclass(frozen=True)
class PartitionField:
    """One partition field: ``transform`` of ``column`` (``param`` for bucket and truncate)."""

    transform: str
    column: str
    param: int | None = None

    def __str__(self) -> str:
        if self.transform == "identity":
            return self.column
        if self.param is not None:
            return f"{self.transform}({self.param}, {self.column})"
        return f"{self.transform}({self.column})"


def parse_partition_field(text: str) -> PartitionField:
    """One ``partition-by`` item.  Raises ValueError naming the item and what is wrong."""
    m = _CALL.match(text)
    if m is None:
        name = text.strip()
        if not name:
            raise ValueError("partition-by: an empty item")
        return PartitionField("identity", name)
    transform, args = m.group(1).lower(), [a.strip() for a in m.group(2).split(",")]
    if transform not in TRANSFORMS:
        raise ValueError(f"partition-by: {text!r}: unknown transform {m.group(1)!r} (known: "
                         f"{', '.join(TRANSFORMS)})")
    want = 2 if transform in WITH_PARAM else 1
    if len(args) != want or not all(args):
        shape = f"{transform}(N, column)" if want == 2 else f"{transform}(column)"
        raise ValueError(f"partition-by: {text!r}: write it as {shape}")
    if want == 1:
        return PartitionField(transform, args[0])
    try:
        param = int(args[0])
    except ValueError:
        raise ValueError(f"partition-by: {text!r}: {args[0]!r} is not a whole number") from None
    if param <= 0:
        raise ValueError(f"partition-by: {text!r}: the {'count' if transform == 'bucket' else 'width'}"
                         f" must be positive")
    return PartitionField(transform, args[1], param)


def fields_for(configured: list[PartitionField], schema: TableSchema) -> list[PartitionField]:
    """The partition fields of ``schema``'s table: ``partition-by`` when it is set, else the
    table's partition keys (a ``[[transform]]`` block's ``partition-keys``) as they are."""
    return configured or [PartitionField("identity", k) for k in schema.partition_keys]


def parse_partition_by(items: list[str]) -> list[PartitionField]:
    """All ``partition-by`` items; a column given twice with the same transform is an error."""
    fields = [parse_partition_field(item) for item in items]
    seen: set[tuple[str, str]] = set()
    for f in fields:
        if (f.transform, f.column) in seen:
            raise ValueError(f"partition-by: {f} is given twice")
        seen.add((f.transform, f.column))
    return fields
