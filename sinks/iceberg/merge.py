"""Copy-on-write upserts and deletes by key, vectorised in Arrow.

pyiceberg's own ``upsert`` and a delete with a huge ``IN`` list are slow on large batches
(iceberg-python #3129).  Instead, per table and checkpoint:

1. :func:`candidate_files`: of the current snapshot's data files, those whose key bounds
   (lower/upper bounds of the manifest entries, per key column) can hold one of the changed
   keys: a sorted search of the changed keys per file, no file read;
2. :func:`rewrite`: each candidate file is read (pyiceberg's Arrow reader: it projects older
   files onto the current schema) and the rows whose key is among the changed keys are dropped
   with an Arrow semi-join (``pc.is_in``; a hash join for composite keys).  A file without such
   a row is left alone; the others are deleted from the table and their remaining rows
   written again (files of about the target size, memory bounded by it);
3. the committer commits one overwrite snapshot: those files out, the rewritten files and the
   new rows' files in.
"""
from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.conversions import from_bytes
from pyiceberg.manifest import DataFile, DataFileContent, ManifestContent
from pyiceberg.table.metadata import TableMetadata

from runtime.errors import TerminalError
from sinks.iceberg.types import arrow_type

log = logging.getLogger(__name__)

#: Candidate files read at a time (pyarrow reads release the GIL).
READ_THREADS = 4


def live_files(metadata: TableMetadata, io) -> list[DataFile]:
    """The data files of the current snapshot.  A table with delete files (written by another
    engine, merge-on-read) is refused: rewriting its data files copy-on-write would bring the
    deleted rows back."""
    snap = metadata.current_snapshot()
    if snap is None:
        return []
    files = []
    for manifest in snap.manifests(io):
        entries = manifest.fetch_manifest_entry(io, discard_deleted=True)
        if manifest.content != ManifestContent.DATA:
            if entries:
                raise TerminalError(
                    f"iceberg: table {metadata.location} has delete files (merge-on-read, "
                    "written by another engine); the sink rewrites data files copy-on-write and "
                    "can't apply them: compact the table (rewrite_data_files) first")
            continue
        files.extend(e.data_file for e in entries if e.data_file.content == DataFileContent.DATA)
    return files


def candidate_files(files: list[DataFile], metadata: TableMetadata,
                    keys: pa.Table) -> list[DataFile]:
    """The files of ``files`` that may hold a row whose key is in ``keys`` (columns named as
    the table's key columns, in the table's Arrow types).  Per key column, a file whose
    [lower, upper] bound holds none of the changed values of that column can't hold a changed
    key; a file without bounds always is a candidate."""
    if not files or not keys.num_rows:
        return []
    schema = metadata.schema()
    maybe = np.ones(len(files), dtype=bool)
    for name in keys.column_names:
        f = schema.find_field(name)
        values = np.sort(_numpy(_array(pc.unique(keys.column(name)))))
        lo = _bounds(files, f.field_id, f.field_type, "lower_bounds")
        hi = _bounds(files, f.field_id, f.field_type, "upper_bounds")
        known = np.array([a is not None and b is not None for a, b in zip(lo, hi)])
        if not known.any():
            continue
        t = arrow_type(f.field_type)
        lo_v = _numpy(pa.array([v if v is not None else _any(lo) for v in lo], type=t))
        hi_v = _numpy(pa.array([v if v is not None else _any(hi) for v in hi], type=t))
        start = np.searchsorted(values, lo_v, side="left")
        stop = np.searchsorted(values, hi_v, side="right")
        maybe &= (stop > start) | ~known
    return [f for f, m in zip(files, maybe) if m]


def _array(a) -> pa.Array:
    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a


def _any(values: list):
    return next(v for v in values if v is not None)


def _numpy(arr: pa.Array) -> np.ndarray:
    """Sortable numpy values of a key column (objects for strings, decimals, bytes)."""
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) \
            or pa.types.is_temporal(arr.type):
        return arr.to_numpy(zero_copy_only=False)
    return np.array(arr.to_pylist(), dtype=object)


def _bounds(files: list[DataFile], field_id: int, field_type, attr: str) -> list:
    out = []
    for f in files:
        raw = (getattr(f, attr) or {}).get(field_id)
        out.append(None if raw is None else from_bytes(field_type, raw))
    return out


@dataclass
class Rewrite:
    """What a rewrite did: files to delete from the table, files to add."""

    deleted: list[DataFile] = field(default_factory=list)
    added: list[DataFile] = field(default_factory=list)
    rows_dropped: int = 0


def key_mask(table: pa.Table, keys: pa.Table) -> pa.Array:
    """True for the rows of ``table`` whose key (the columns of ``keys``) is in ``keys``."""
    names = keys.column_names
    if len(names) == 1:
        return pc.is_in(table.column(names[0]), value_set=_array(keys.column(names[0])))
    # composite key: a hash semi-join on the row numbers
    probe = table.select(names).append_column("__row", pa.array(np.arange(table.num_rows)))
    hit = probe.join(keys.select(names).group_by(names).aggregate([]), keys=names,
                     join_type="left semi")
    mask = np.zeros(table.num_rows, dtype=bool)
    mask[hit.column("__row").to_numpy()] = True
    return pa.array(mask)


def held(candidates: list[DataFile], metadata: TableMetadata, io, keys: pa.Table) -> bool:
    """Whether a file of ``candidates`` holds a key of ``keys`` (reads their key columns)."""
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import ArrowScan
    from pyiceberg.table import FileScanTask

    scan = ArrowScan(metadata, io, metadata.schema().select(*keys.column_names), AlwaysTrue())
    for f in candidates:
        t = scan.to_table([FileScanTask(f)]).select(keys.column_names).cast(keys.schema)
        if t.num_rows and pc.any(key_mask(t, keys)).as_py():
            return True
    return False


def rewrite_all(files: list[DataFile], metadata: TableMetadata, io,
                target_size: int) -> list[DataFile]:
    """``files`` read and written again whole, as files of about ``target_size`` (compaction)."""
    return rewrite(files, metadata, io, None, target_size).added


def rewrite(candidates: list[DataFile], metadata: TableMetadata, io, keys: pa.Table | None,
            target_size: int) -> Rewrite:
    """Drop the rows of changed keys from ``candidates`` (see the module doc); ``keys`` None
    keeps every row (and rewrites every file)."""
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files
    from pyiceberg.table import FileScanTask

    schema = metadata.schema()
    scan = ArrowScan(metadata, io, schema, AlwaysTrue())
    target = pa.schema([pa.field(f.name, arrow_type(f.field_type), nullable=not f.required)
                        for f in schema.fields])
    out = Rewrite()
    keep: list[pa.Table] = []
    kept_bytes = 0
    write_uuid, counter = uuid.uuid4(), itertools.count()

    def flush() -> None:
        nonlocal keep, kept_bytes
        if keep:
            data = pa.concat_tables(keep)
            out.added.extend(_dataframe_to_data_files(metadata, data, io, write_uuid, counter))
        keep, kept_bytes = [], 0

    def read(f: DataFile) -> tuple[DataFile, pa.Table, pa.Array]:
        t = scan.to_table([FileScanTask(f)]).cast(target)
        if keys is None:
            return f, t, pa.array(np.zeros(t.num_rows, dtype=bool))
        return f, t, key_mask(t, keys)

    with ThreadPoolExecutor(READ_THREADS, thread_name_prefix="iceberg-read") as pool:
        for f, t, mask in _bounded_map(pool, read, candidates, READ_THREADS):
            hits = pc.sum(mask).as_py() or 0
            if not hits and keys is not None:
                continue  # its bounds overlapped, no key matched: the file stays
            out.deleted.append(f)
            out.rows_dropped += hits
            rest = t.filter(pc.invert(mask))
            if rest.num_rows:
                keep.append(rest)
                kept_bytes += rest.nbytes
                if kept_bytes >= target_size:
                    flush()
    flush()
    return out


def _bounded_map(pool: ThreadPoolExecutor, fn, items: list, ahead: int) -> Iterator:
    """``pool.map`` with at most ``ahead`` results waiting (memory stays bounded)."""
    it = iter(items)
    pending = [pool.submit(fn, x) for x in itertools.islice(it, ahead)]
    while pending:
        result = pending.pop(0).result()
        nxt = next(it, None)
        if nxt is not None:
            pending.append(pool.submit(fn, nxt))
        yield result


def sorted_by_first(data: pa.Table, column: str) -> bool:
    """Whether ``data`` is in strictly increasing order of ``column`` (snapshot chunks arrive
    in key order: no sort needed; strictly, so a composite key is sorted too)."""
    col = _array(data.column(column))
    if len(col) < 2:
        return True
    try:
        return bool(pc.all(pc.greater(col.slice(1), col.slice(0, len(col) - 1))).as_py())
    except pa.ArrowNotImplementedError:  # a type without comparison kernels
        return False


def write_files(data: pa.Table, metadata: TableMetadata, io) -> list[DataFile]:
    """``data`` (the table's Arrow types) as new data files of the table."""
    from pyiceberg.io.pyarrow import _dataframe_to_data_files

    if not data.num_rows:
        return []
    return list(_dataframe_to_data_files(metadata, data, io, uuid.uuid4(), itertools.count()))
