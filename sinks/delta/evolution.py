"""Schema evolution of a Delta table: a checkpoint's rows against the table's columns.

* a column the rows have and the table lacks is added (nullable), in the commit that brings
  its first values (``schema_mode = "merge"``);
* a column the table has and the rows lack (dropped in the source, or written by an earlier
  schema) stays, null in the new rows;
* a column whose type changed: a narrower type than the table's (the source narrowed it) is
  cast up, exactly; a wider one the table's type widens to losslessly (INT -> BIGINT, FLOAT
  -> DOUBLE, DECIMAL(10,2) -> DECIMAL(12,2), DATE -> TIMESTAMP) is reported for the committer
  to widen the table (deltalake has no in-place type widening: it rewrites the table, see
  :meth:`~sinks.delta.table.DeltaLakeTable.rewrite_widened`); any other change stops the
  pipeline with one line naming table, column and remedy.

deltalake itself would cast values to the table's type silently (a DOUBLE into a FLOAT
column loses digits), which is why every column is checked here first.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from runtime.errors import TerminalError
from sinks.delta.types import describe, widening


@dataclass
class Evolution:
    """What a checkpoint's rows need of the table: ``data`` conformed to the table's columns
    (in its order, then the new ones), the names of ``added`` columns and the columns to
    ``widen`` (name -> the wider type)."""

    data: pa.Table
    added: list[str] = field(default_factory=list)
    widen: dict[str, pa.DataType] = field(default_factory=dict)


def evolve(table_schema: pa.Schema, data: pa.Table, table: str, uri: str,
           extra: tuple[str, ...] = ()) -> Evolution:
    """Conform ``data`` (Delta-typed rows, see :func:`~sinks.delta.types.to_delta`) to the
    columns of a table with ``table_schema``.  ``extra`` columns of ``data`` (the MERGE's op)
    are kept last and never count as added.  Raises :class:`TerminalError` for a type change
    Delta can't take."""
    n = data.num_rows
    cols, fields, widen = [], [], {}
    for f in table_schema:
        if f.name not in data.column_names:
            cols.append(pa.nulls(n, f.type))
            fields.append(pa.field(f.name, f.type, True))
            continue
        col = data.column(f.name)
        how = widening(f.type, col.type)
        if how == "cast":
            col = col.cast(f.type)
        elif how == "widen":
            widen[f.name] = col.type
        elif how == "no":
            raise TerminalError(
                f"delta: table {table}: column {f.name!r} changed type from "
                f"{describe(f.type)} to {describe(col.type)}, which the Delta table at {uri} "
                f"can't take without loss; cast it back in a transform, or move the table "
                f"away and restart the pipeline with --fresh to build it anew")
        cols.append(col)
        fields.append(pa.field(f.name, col.type, True))
    known = set(table_schema.names)
    added = [c for c in data.column_names if c not in known and c not in extra]
    for name in added + [c for c in extra if c in data.column_names]:
        cols.append(data.column(name))
        fields.append(data.schema.field(name))
    return Evolution(pa.Table.from_arrays(cols, schema=pa.schema(fields)), added, widen)
