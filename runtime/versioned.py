"""Versioned change batches, for the sinks that make replays harmless with versioned writes
instead of transactions (Elasticsearch external versions, HBase cell timestamps).

* :class:`VersionClock` gives versions to batches whose source has none.
* :func:`runs` merges the batches of each table and schema, so a sink sends few, large
  requests.
* :func:`last_per_key` keeps only the last change of each key: the one with the highest
  version (the later one on a tie).  One write per key and request is all a versioned store
  needs, and the only way to write one key once per HBase call.
* :func:`check_versions` stops a writer whose changes of one key, in the order one writer
  received them, go to a lower version: the store would keep the older change.

Where versions may legitimately go down, and why the guard is per key, not per table: the
MySQL snapshot gives a chunk's rows ``HIGH - 1`` of that chunk, and the binlog then goes on
from the lowest HIGH of all chunks, so a table's binlog changes (of keys of other chunks) come
below versions of its snapshot rows; Kafka versions are offsets of several partitions; a
:class:`VersionClock` restarts from the wall clock.  Only per key is the order fixed: one key's
changes reach one writer in source order (a chunk's key is skipped in the binlog until its
HIGH), so a lower version after a higher one of the same key in one writer means the source's
versions went backwards (a binlog reset, a failover to another server).  Across writers (a
key's snapshot row and binlog change can reach different subtasks) and across checkpoints
nothing is checked here: the store's own version check (Elasticsearch's 409) tells those.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runtime.batch import ChangeBatch
from runtime.errors import TerminalError


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


def last_per_key(keys: pa.Array | pa.Table, versions: np.ndarray | None = None
                 ) -> np.ndarray | None:
    """Ascending positions of the last change of each key: the highest version (the later
    position among equal versions; by position alone without ``versions``).  ``keys`` is one
    key per change: an array, or a table of the key columns (composite keys).  None when every
    key occurs once, i.e. nothing needs to be dropped."""
    n = len(keys)
    order = None
    if versions is not None and n > 1:
        v = np.asarray(versions)
        if np.any(v[1:] < v[:-1]):  # rows of several writers: order them by version first
            order = np.argsort(v, kind="stable")
            keys = keys.take(pa.array(order))
    columns = keys.columns if isinstance(keys, pa.Table) else [keys]
    names = [f"k{i}" for i in range(len(columns))]
    table = pa.table(dict(zip(names, columns)) | {"i": pa.array(np.arange(n, dtype=np.int64))})
    last = table.group_by(names, use_threads=False).aggregate([("i", "max")])
    if last.num_rows == n:
        return None
    idx = last.column("i_max").to_numpy()
    return np.sort(order[idx] if order is not None else idx)


def first_regression(keys: pa.Array | pa.ChunkedArray,
                     versions: np.ndarray) -> tuple[int, int] | None:
    """Positions ``(i, j)``, ``i < j``, of two changes of one key where the later one has the
    lower version (``versions[j] < versions[i]``), or None when every key's versions are
    non-decreasing in position order.  Costs one numpy comparison when versions are
    non-decreasing overall (the usual case); else one sort by key."""
    v = np.asarray(versions, dtype=np.int64)
    n = len(v)
    if n < 2 or not np.any(v[1:] < v[:-1]):
        return None
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    codes = pc.dictionary_encode(keys).indices.to_numpy(zero_copy_only=False)
    order = np.lexsort((np.arange(n), codes))  # by key, then by position
    same = codes[order][1:] == codes[order][:-1]
    down = same & (v[order][1:] < v[order][:-1])
    if not down.any():
        return None
    at = int(np.argmax(down))
    return int(order[at]), int(order[at + 1])


def check_versions(sink: str, table: str, keys: pa.Array | pa.ChunkedArray,
                   versions: np.ndarray, remedy: str,
                   describe: Callable[[int], object] | None = None) -> None:
    """Raise a one-line :class:`TerminalError` when a key's versions go down in position
    order (:func:`first_regression`): ``keys`` and ``versions`` of the changes one writer
    received for ``table``, in order.  A versioned store keeps the higher version, so the
    later change would be lost without a word.  ``describe(i)`` names the key of change ``i``
    in the message (default: ``keys[i]``)."""
    found = first_regression(keys, versions)
    if found is None:
        return
    i, j = found
    v = np.asarray(versions)
    key = describe(i) if describe is not None else keys[i].as_py()
    raise TerminalError(
        f"{sink}: table {table}: the versions of key {key!r} go backwards (change "
        f"#{i} has version {int(v[i])}, the later change #{j} version {int(v[j])}), so the "
        f"store would keep the older change; the source's versions went backwards (a binlog "
        f"reset, a failover to another server, one key's changes in several Kafka "
        f"partitions?): {remedy}")


def check_batches(sink: str, batches: Iterable[ChangeBatch],
                  keys_of: Callable[[ChangeBatch], pa.Array],
                  remedy_of: Callable[[str], str]) -> None:
    """:func:`check_versions` for each table of ``batches`` (one writer's, in order, with
    versions), across its batches.  ``keys_of(batch)`` (the store's keys of a batch's rows)
    is only called for a table whose versions go down somewhere: rarely, except where
    versions interleave (Kafka partitions)."""
    by_table: dict[str, list[ChangeBatch]] = {}
    for b in batches:
        if len(b):
            by_table.setdefault(b.table, []).append(b)
    for table, group in by_table.items():
        versions = np.concatenate([np.asarray(b.versions, dtype=np.int64) for b in group])
        if len(versions) < 2 or not np.any(versions[1:] < versions[:-1]):
            continue
        keys = pa.concat_arrays([_flat(keys_of(b)) for b in group])
        starts = np.cumsum([0] + [len(b) for b in group])

        def describe(i: int, group: list[ChangeBatch] = group,
                     starts: np.ndarray = starts) -> object:
            at = int(np.searchsorted(starts, i, side="right")) - 1
            b = group[at]
            row = b.arrow().slice(i - int(starts[at]), 1).to_pylist()[0]
            values = tuple(row[k] for k in b.schema.primary_key)
            return values[0] if len(values) == 1 else values

        check_versions(sink, table, keys, versions, remedy_of(table), describe)


def _flat(a: pa.Array | pa.ChunkedArray) -> pa.Array:
    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a
