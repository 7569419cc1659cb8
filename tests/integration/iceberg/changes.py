"""Building the committer's input (:class:`~sinks.lake.changes.TableChanges`) from plain
events, and the table state they should leave, for the iceberg tests."""
from __future__ import annotations

import numpy as np

from runtime.batch import ChangeBatch
from runtime.schema import TableSchema
from sinks.lake.changes import TableChanges, collect

_seq = iter(range(1, 1 << 62))


def table_changes(schema: TableSchema, checkpoint_id: int, events: list[tuple[str, tuple]],
                  collapsed: bool = True) -> TableChanges:
    """``events`` (op, row) in source order, as the lake committer hands them over
    (:func:`~sinks.lake.changes.collect`); ``collapsed``: only the last change per key, as
    an upsert table gets them."""
    seqs = np.array([next(_seq) for _ in events], dtype=np.int64)
    batch = ChangeBatch(schema, "".join(op for op, _ in events),
                        rows=[row for _op, row in events], ts_ms=1_700_000_000_000,
                        versions=seqs)
    [changes] = collect([batch], checkpoint_id, upsert=collapsed, sink="test")
    return changes


def apply(state: dict, schema: TableSchema, events: list[tuple[str, tuple]]) -> dict:
    """The live rows ``{key: row}`` after ``events``."""
    for op, row in events:
        key = tuple(row[j] for j in schema.key_indexes)
        if op == "d":
            state.pop(key, None)
        else:
            state[key] = row
    return state
