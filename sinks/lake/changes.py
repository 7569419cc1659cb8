"""A checkpoint's changes of one table, in the form a lake-table commit takes.

The committer reads the write-ahead-log segments of a checkpoint (one per writer) and gets,
per table, :class:`TableChanges`: Arrow columns, no per-row Python.  In upsert mode (a table
with a primary key) the changes are collapsed to the last one of each key in source order:
by ``seq`` (the batches' versions), so changes of one key that reached different writers (a
snapshot row and a later binlog change) still come out in source order.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runtime.batch import DELETE, OP_COLUMN, SEQ_COLUMN, TS_COLUMN, ChangeBatch
from runtime.errors import TerminalError
from runtime.schema import Column, TableSchema
from runtime.versioned import VersionClock, last_per_key


@dataclass(frozen=True)
class TableChanges:
    """The changes of one table in one checkpoint.

    * ``schema``: the columns of ``rows`` with their logical types and the primary key: the
      table's latest schema in the checkpoint, then columns an earlier schema of the
      checkpoint had and the latest lacks (a dropped column stays, null in later rows).
    * ``rows``: one row image per change (the row after it, the row before it for a delete).
    * ``ops``, ``ts_ms``, ``seq``: per row, the op (``r``, ``c``, ``u``, ``d``), the event time
      and the source order.
    * ``collapsed``: True when there is one row per primary key, its last change in source
      order (upsert mode); False when every change is there, in the order writers got them.
    """

    table: str
    schema: TableSchema
    checkpoint_id: int
    rows: pa.Table
    ops: pa.Array
    ts_ms: pa.Array
    seq: pa.Array
    collapsed: bool

    def __len__(self) -> int:
        return self.rows.num_rows

    def is_delete(self) -> pa.Array:
        """Boolean mask of the rows whose change is a delete."""
        return pc.equal(self.ops, DELETE)

    def upserts(self) -> pa.Table:
        """The rows whose change is not a delete (with ``collapsed``: what each key holds
        after the checkpoint, for the keys that still exist)."""
        return self.rows.filter(pc.invert(self.is_delete()))

    def deleted_keys(self) -> pa.Table:
        """The key columns of the rows whose change is a delete."""
        return self.rows.select(list(self.schema.primary_key)).filter(self.is_delete())

    def only_inserts(self) -> bool:
        """Whether every change is a snapshot read or an insert (no key existed before, as
        far as the source knows: a fast append may apply where the target has none of them)."""
        return bool(pc.all(pc.is_in(self.ops, pa.array(["r", "c"]))).as_py()) if len(self) else True

    def changelog(self) -> pa.Table:
        """``rows`` plus the ``op``, ``ts_ms`` and ``seq`` columns (append mode).  Raises a
        one-line :class:`TerminalError` when the table has a column of one of those names."""
        clash = [c for c in (OP_COLUMN, TS_COLUMN, SEQ_COLUMN) if c in self.rows.column_names]
        if clash:
            raise TerminalError(
                f"table {self.table}: column {clash[0]!r} has the name of a change column "
                f"({OP_COLUMN}, {TS_COLUMN}, {SEQ_COLUMN}) that change rows carry: use "
                f"write-mode = \"upsert\" for a table with a primary key, or rename the column")
        return (self.rows.append_column(OP_COLUMN, self.ops)
                .append_column(TS_COLUMN, self.ts_ms)
                .append_column(SEQ_COLUMN, self.seq))


def collect(batches: Iterable[ChangeBatch], checkpoint_id: int, upsert: bool,
            sink: str) -> Iterator[TableChanges]:
    """One :class:`TableChanges` per table of ``batches`` (in order of first appearance),
    collapsed by key where ``upsert`` and the table has a primary key.  ``sink`` names the
    sink in errors.  Batches without versions get them from a :class:`VersionClock` (in the
    order given).  A table's batches are let go once its changes are built, so a caller that
    hands in a generator and commits each table before taking the next holds about one
    table's changes twice, not the whole checkpoint."""
    clock = VersionClock()
    by_table: dict[str, list[ChangeBatch]] = {}
    for b in batches:
        if len(b):
            by_table.setdefault(b.table, []).append(clock.stamp(b))
    while by_table:
        table = next(iter(by_table))
        group = by_table.pop(table)
        changes = _table_changes(table, group, checkpoint_id, upsert, sink)
        del group
        yield changes


def _table_changes(table: str, group: list[ChangeBatch], checkpoint_id: int, upsert: bool,
                   sink: str) -> TableChanges:
    schema = _merged_schema(group)
    arrow_schema = _unified_arrow_schema(table, group, schema, sink)
    parts = [_conform(pa.Table.from_batches([b.arrow()]), arrow_schema) for b in group]
    rows = pa.concat_tables(parts).combine_chunks() if len(parts) > 1 else parts[0]
    ops = pa.concat_arrays([b.ops_array() for b in group])
    ts = pa.concat_arrays([b.ts_ms_array().cast(pa.int64()) for b in group])
    seq_np = np.concatenate([np.asarray(b.versions, dtype=np.int64) for b in group])
    collapsed = upsert and bool(schema.primary_key)
    if collapsed:
        keep = last_per_key(rows.select(list(schema.primary_key)), seq_np)
        if keep is not None:
            idx = pa.array(keep)
            rows, ops, ts, seq_np = rows.take(idx), ops.take(idx), ts.take(idx), seq_np[keep]
    return TableChanges(table, schema, checkpoint_id, rows, ops, ts,
                        pa.array(seq_np, type=pa.int64()), collapsed)


def _merged_schema(group: list[ChangeBatch]) -> TableSchema:
    """The latest schema, then the columns only earlier schemas had (nullable)."""
    latest = group[-1].schema
    columns = list(latest.columns)
    names = set(latest.names)
    for b in reversed(group[:-1]):
        for c in b.schema.columns:
            if c.name not in names:
                names.add(c.name)
                columns.append(Column(c.name, c.type, True, c.comment))
    return latest.with_columns(tuple(columns)) if len(columns) > len(latest.columns) else latest


def _unified_arrow_schema(table: str, group: list[ChangeBatch], schema: TableSchema,
                          sink: str) -> pa.Schema:
    """The Arrow schema all of a table's batches are cast to: per column the type of its
    latest batch, widened where an earlier batch had a wider one; dropped columns nullable."""
    fields: dict[str, pa.Field] = {}
    for b in group:
        for f in b.schema.arrow_schema:
            prev = fields.get(f.name)
            if prev is None or prev.type == f.type:
                fields[f.name] = f
                continue
            try:
                merged = pa.unify_schemas([pa.schema([prev]), pa.schema([f])],
                                          promote_options="permissive")
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                raise TerminalError(
                    f"{sink}: table {table}: column {f.name!r} changed type from {prev.type} "
                    f"to {f.type} within one checkpoint, and the first can't be widened to "
                    f"the second: recreate the table in the sink (or map the column with a "
                    f"transform) and restart") from None
            fields[f.name] = merged.field(0)
    latest = set(schema.primary_key) | set(group[-1].schema.names)
    return pa.schema([fields[n] if n in latest else fields[n].with_nullable(True)
                      for n in schema.names])


def _conform(t: pa.Table, schema: pa.Schema) -> pa.Table:
    """``t`` with ``schema``'s columns in its order: missing ones null, others cast."""
    n = t.num_rows
    cols = [t.column(f.name).cast(f.type) if f.name in t.column_names
            else pa.nulls(n, f.type) for f in schema]
    return pa.Table.from_arrays(cols, schema=schema)
