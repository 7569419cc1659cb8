"""Building the committer's input (:class:`~sinks.lake.changes.TableChanges`) from plain
events, and the table state they should leave, for the iceberg tests."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from runtime.schema import TableSchema
from sinks.lake.changes import TableChanges

_seq = iter(range(1, 1 << 62))


def table_changes(schema: TableSchema, checkpoint_id: int, events: list[tuple[str, tuple]],
                  collapsed: bool = True) -> TableChanges:
    """``events`` (op, row) in source order; ``collapsed``: only the last change per key, as
    the lake committer hands an upsert table."""
    seqs = [next(_seq) for _ in events]
    if collapsed:
        last: dict = {}
        for i, (_op, row) in enumerate(events):
            last[tuple(row[j] for j in schema.key_indexes)] = i
        keep = sorted(last.values())
        events, seqs = [events[i] for i in keep], [seqs[i] for i in keep]
    cols = list(zip(*[row for _op, row in events])) if events else [[] for _ in schema.columns]
    rows = pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in
                                 zip(cols, schema.arrow_schema)], schema=schema.arrow_schema)
    return TableChanges(table=schema.table, schema=schema, checkpoint_id=checkpoint_id,
                        rows=rows, ops=pa.array([op for op, _ in events], pa.string()),
                        ts_ms=pa.array(np.full(len(events), 1_700_000_000_000), pa.int64()),
                        seq=pa.array(seqs, pa.int64()), collapsed=collapsed)


def apply(state: dict, schema: TableSchema, events: list[tuple[str, tuple]]) -> dict:
    """The live rows ``{key: row}`` after ``events``."""
    for op, row in events:
        key = tuple(row[j] for j in schema.key_indexes)
        if op == "d":
            state.pop(key, None)
        else:
            state[key] = row
    return state
