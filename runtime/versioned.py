"""Versioned change batches, for the sinks that make replays harmless with versioned writes
instead of transactions (Elasticsearch external versions, HBase cell timestamps).

* :class:`VersionClock` gives versions to batches whose source has none.
* :func:`runs` merges the batches of each table and schema, so a sink sends few, large
  requests.
* :func:`last_per_key` keeps only the last change of each key: the one with the highest
  version (the later one on a tie).  One write per key and request is all a versioned store
  needs, and the only way to write one key once per HBase call.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Iterable

import numpy as np
import pyarrow as pa

from runtime.batch import ChangeBatch


class VersionClock:
    """Versions for batches whose source gives none: nanoseconds since the epoch when the
    batch reaches the writer, strictly increasing per writer.  Monotonic per key across
    checkpoints, restarts and changes of parallelism (the clock only moves forward), and fixed
    once written into a write-ahead-log segment, so replays reuse them."""

    def __init__(self) -> None:
        self._last = 0

    def stamp(self, batch: ChangeBatch) -> ChangeBatch:
        """``batch`` itself when it has versions, else a copy with versions."""
        if batch.versions is not None:
            return batch
        n = len(batch)
        base = max(time.time_ns(), self._last + 1)
        self._last = base + n - 1
        stamped = copy.copy(batch)  # the source may hold on to its batch: don't change it
        stamped.versions = np.arange(base, base + n, dtype=np.int64)
        return stamped


def runs(batches: Iterable[ChangeBatch]) -> list[ChangeBatch]:
    """The batches of each table merged into one per schema (in order of first appearance;
    every batch must have versions): what the write-ahead log does within a segment, here over
    several segments.  A table's batches of one schema that follow batches of another schema
    start a new run, so the runs of one table keep their order."""
    groups: list[list[ChangeBatch]] = []
    current: dict[str, int] = {}  # table id -> its latest group
    for b in batches:
        if not len(b):
            continue
        i = current.get(b.table)
        if i is None or groups[i][0].schema != b.schema:
            current[b.table] = len(groups)
            groups.append([b])
        else:
            groups[i].append(b)
    return [group[0] if len(group) == 1 else concat(group) for group in groups]


def concat(group: list[ChangeBatch]) -> ChangeBatch:
    """One batch of the rows, ops, event times and versions of ``group`` (one schema)."""
    arrow = pa.Table.from_batches([b.arrow() for b in group]).combine_chunks().to_batches()
    schema = group[0].schema
    rb = arrow[0] if arrow else pa.RecordBatch.from_pylist([], schema=schema.arrow_schema)
    versions = np.concatenate([np.asarray(b.versions, dtype=np.int64) for b in group])
    ts = pa.concat_arrays([b.ts_ms_array().cast(pa.int64()) for b in group])
    return ChangeBatch(schema, "".join(b.ops for b in group), arrow=rb, ts_ms=ts,
                       versions=versions)


def last_per_key(keys: pa.Array, versions: np.ndarray | None = None) -> np.ndarray | None:
    """Ascending positions of the last change of each key: the highest version (the later
    position among equal versions; by position alone without ``versions``).  None when every
    key occurs once, i.e. nothing needs to be dropped."""
    n = len(keys)
    order = None
    if versions is not None and n > 1:
        v = np.asarray(versions)
        if np.any(v[1:] < v[:-1]):  # rows of several writers: order them by version first
            order = np.argsort(v, kind="stable")
            keys = keys.take(pa.array(order))
    table = pa.table({"k": keys, "i": pa.array(np.arange(n, dtype=np.int64))})
    last = table.group_by("k", use_threads=False).aggregate([("i", "max")])
    if last.num_rows == n:
        return None
    idx = last.column("i_max").to_numpy()
    return np.sort(order[idx] if order is not None else idx)
