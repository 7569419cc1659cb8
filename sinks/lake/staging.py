"""Data files staged by the lake writers, for the committer to add to a table as they are.

Flink's Iceberg writer model: snapshot reads and inserts (ops ``r`` and ``c``) of a table
that can take them (see :class:`Layout`) are written by the writer itself, as the table's
Parquet data files (the table's columns in the format's Arrow types, the format's file
naming, under the table's location), streamed as batches come: one open file per table,
row groups of :data:`ROW_GROUP_ROWS` rows, a new file past ``target-file-size``.  At the
barrier the files are closed and made durable, and the committable names them
(:class:`StagedFile`: path, rows, bytes, null counts and the key columns' min/max).  Every
other change stays on the write-ahead-log segment path.

Beside each data file a *side record* (Arrow IPC, in the pipeline's state folder) holds what
the committer needs without reading the data file: the key columns, the source order
(``seq``: the batches' versions) and the op of each row, and the row's table schema in its
metadata.  The committer checks the staged keys for collisions (with each other, the
checkpoint's segment changes, the table's rows) and adds the files when there are none;
otherwise it reads them back as changes (:func:`read_staged`) into the format's MERGE path.

Garbage: an *intent* file (``<id>.path``, the data file's path) is written in the staging
folder before the data file is created, and deleted with the side record once the checkpoint
is committed.  At restore, the committer deletes the data file of every intent that no
committable of the restored checkpoint names (:func:`discard_except`): files of a checkpoint
that never completed.  A file a committable names is never deleted.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from formats.file.parquet import dictionary_columns
from runtime.batch import ChangeBatch
from runtime.fs.local import fsync_path
from runtime.schema import TableSchema
from runtime.wal import wal_root

log = logging.getLogger(__name__)

#: Rows of a row group of a staged file (a writer holds up to this many rows per table).
ROW_GROUP_ROWS = 1 << 17
#: ... or this many bytes, whichever comes first.
ROW_GROUP_BYTES = 48 << 20
#: Columns of a side record beside the key columns (NUL: no source column has it).
SEQ, OPS = "\0seq", "\0op"
_SCHEMA_KEY = b"hub.table_schema"
_PATH_KEY = b"hub.data_file"
#: Ops a writer stages as data files: snapshot reads and inserts.
INSERT_CODES = np.array([ord("r"), ord("c")], dtype=np.uint8)


def _remove(*paths: str) -> None:
    """Delete ``paths``; one already gone is fine (a crash after deleting it, a replay)."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def staging_root(state_dir: str, pipeline: str, sink: str) -> str:
    """The staging folder of ``sink`` (its type name) in ``pipeline``: intents and side
    records, next to (not inside) the sink's write-ahead log."""
    return wal_root(state_dir, pipeline, sink + ".staged")


class Layout(ABC):
    """What a format tells its writers about staging data files (plain data: it travels to
    the writer's subtask)."""

    @abstractmethod
    def stageable(self, schema: TableSchema) -> bool:
        """Whether the snapshot reads and inserts of ``schema``'s table are staged as data
        files (else they go to the write-ahead log, as every other change)."""

    @abstractmethod
    def location(self, schema: TableSchema) -> str:
        """The local folder the data files of ``schema``'s table are written in."""

    @abstractmethod
    def shape(self, rows: pa.Table, schema: TableSchema) -> pa.Table:
        """``rows`` (the hub's Arrow types, of ``schema``) in the table's columns and Arrow
        types (the format's field ids, if it has them)."""

    def merges_mixed(self) -> bool:
        """Whether the committer merges a table's staged rows back whenever the checkpoint
        has other changes of the table too (Delta, one commit per checkpoint): then a writer
        stages a table's inserts only while its checkpoints bring nothing else of it (a
        snapshot, an append stream), not in a change stream, where staging would write them
        twice.  Default: no (the staged files are added beside the other changes)."""
        return False

    def file_name(self) -> str:
        """A new, unique data file name (Delta's naming by default)."""
        return f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"


@dataclass(frozen=True)
class StagedFile:
    """A closed, durable staged data file of one table (a committable names it)."""

    table: str
    path: str          # the data file (absolute, under the table's location)
    side: str          # its side record (keys, seq, ops; the table schema)
    intent: str        # its intent file (see the module docs)
    rows: int
    size: int
    seq_min: int
    seq_max: int
    nulls: dict[str, int] = field(default_factory=dict)
    min: dict[str, Any] = field(default_factory=dict)   # key columns, JSON values
    max: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StagedFile:
        return cls(**d)


def _json_value(v: pa.Scalar) -> Any:
    """A min/max as a JSON value the formats' statistics take (ints, strings, dates), else
    None (no bound given: readers just don't prune by it)."""
    if not v.is_valid:
        return None
    t = v.type
    if pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
        return v.as_py()
    if pa.types.is_date32(t):
        return v.as_py().isoformat()
    return None


class _OpenFile:
    """One staged data file being written, with its side record."""

    def __init__(self, layout: Layout, schema: TableSchema, staging: str, target_size: int):
        self.schema, self.layout = schema, layout
        self.group_bytes = min(ROW_GROUP_BYTES, target_size)  # a row group within a file
        folder = layout.location(schema)
        os.makedirs(folder, exist_ok=True)
        os.makedirs(staging, exist_ok=True)
        self.path = os.path.join(folder, layout.file_name())
        fid = uuid.uuid4().hex
        self.intent = os.path.join(staging, f"{fid}.path")
        self.side = os.path.join(staging, f"{fid}.keys.arrow")
        with open(self.intent, "w") as f:  # before the data file: garbage is always found
            f.write(self.path)
        self.keys = list(schema.primary_key)
        self.rows = self.size = 0
        self.seq_min, self.seq_max = None, None
        self.nulls: dict[str, int] = {}
        self.lo: dict[str, pa.Scalar] = {}
        self.hi: dict[str, pa.Scalar] = {}
        self._buf: list[pa.Table] = []
        self._buf_rows = self._buf_bytes = 0
        self._out: pa.NativeFile | None = None
        self._pq: pq.ParquetWriter | None = None
        self._side_out: pa.NativeFile | None = None
        self._side: ipc.RecordBatchFileWriter | None = None

    def add(self, batch: ChangeBatch, codes: np.ndarray) -> None:
        rows = self.layout.shape(pa.Table.from_batches([batch.arrow()]), self.schema)
        seq = np.asarray(batch.versions, dtype=np.int64)
        side = rows.select(self.keys).append_column(SEQ, pa.array(seq)) \
            .append_column(OPS, pa.array(codes, pa.uint8()))
        if self._side is None:
            self._meta = {_SCHEMA_KEY: json.dumps(self.schema.to_dict()).encode(),
                          _PATH_KEY: self.path.encode()}
            self._side_out = pa.OSFile(self.side, "wb")
            self._side = ipc.new_file(self._side_out, side.schema.with_metadata(self._meta))
        self._side.write_table(side.replace_schema_metadata(self._meta))
        lo, hi = int(seq.min()), int(seq.max())
        self.seq_min = lo if self.seq_min is None else min(self.seq_min, lo)
        self.seq_max = hi if self.seq_max is None else max(self.seq_max, hi)
        for name in rows.column_names:
            col = rows.column(name)
            if not pa.types.is_nested(col.type):  # statistics of nested columns: nested
                self.nulls[name] = self.nulls.get(name, 0) + col.null_count
        for k in self.keys:
            mm = pc.min_max(rows.column(k))
            lo_k, hi_k = mm["min"], mm["max"]
            if lo_k.is_valid and (k not in self.lo or pc.less(lo_k, self.lo[k]).as_py()):
                self.lo[k] = lo_k
            if hi_k.is_valid and (k not in self.hi or pc.greater(hi_k, self.hi[k]).as_py()):
                self.hi[k] = hi_k
        self.rows += rows.num_rows
        self._buf.append(rows)
        self._buf_rows += rows.num_rows
        self._buf_bytes += rows.nbytes
        if self._buf_rows >= ROW_GROUP_ROWS or self._buf_bytes >= self.group_bytes:
            self._flush()

    def _flush(self) -> None:
        if not self._buf:
            return
        data = pa.concat_tables(self._buf)
        self._buf, self._buf_rows, self._buf_bytes = [], 0, 0
        if self._pq is None:
            self._out = pa.OSFile(self.path, "wb")
            self._pq = pq.ParquetWriter(self._out, data.schema, compression="snappy",
                                        use_dictionary=dictionary_columns(data))
        self._pq.write_table(data, row_group_size=data.num_rows)

    @property
    def written(self) -> int:
        """Bytes written to the data file so far."""
        return self._out.tell() if self._out is not None else 0

    def close(self) -> StagedFile:
        self._flush()
        assert self._pq is not None and self._side is not None
        self._pq.close()
        self._out.close()
        self._side.close()
        self._side_out.close()
        fsync_path(self.path)
        fsync_path(self.side)
        fsync_path(self.intent)
        return StagedFile(
            self.schema.table, self.path, self.side, self.intent, self.rows,
            os.path.getsize(self.path), int(self.seq_min), int(self.seq_max), dict(self.nulls),
            {k: _json_value(v) for k, v in self.lo.items()},
            {k: _json_value(v) for k, v in self.hi.items()})

    def abort(self) -> None:
        for closer in (self._pq, self._out, self._side, self._side_out):
            if closer is not None:
                try:
                    closer.close()
                except Exception:  # noqa: BLE001 - giving the file up anyway
                    log.debug("staging: closing %s failed", self.path, exc_info=True)
        _remove(self.path, self.side, self.intent)


class Stager:
    """A writer's staged data files of the current checkpoint: one open file per table,
    rolled past ``target_size`` bytes.  Not thread-safe (the writer's thread)."""

    def __init__(self, layout: Layout, staging: str, target_size: int):
        self.layout, self.staging, self.target_size = layout, staging, target_size
        self._open: dict[str, _OpenFile] = {}
        self._done: list[StagedFile] = []

    def add(self, batch: ChangeBatch, codes: np.ndarray) -> None:
        """Stage ``batch`` (snapshot reads and inserts only, with versions)."""
        f = self._open.get(batch.table)
        if f is not None and f.schema != batch.schema:  # a schema change: a new file
            self._done.append(self._open.pop(batch.table).close())
            f = None
        if f is None:
            f = self._open[batch.table] = _OpenFile(self.layout, batch.schema, self.staging,
                                                   self.target_size)
        f.add(batch, codes)
        if f.written >= self.target_size:
            self._done.append(self._open.pop(batch.table).close())

    def finish(self) -> list[StagedFile]:
        """Close every file: the checkpoint's staged files, durable."""
        done = self._done + [f.close() for f in self._open.values()]
        self._open, self._done = {}, []
        if done:
            fsync_path(self.staging)
            for folder in {os.path.dirname(f.path) for f in done}:
                fsync_path(folder)
        return done

    def abort(self) -> None:
        """Give up the open files and the closed ones not yet in a committable."""
        for f in self._open.values():
            f.abort()
        for s in self._done:
            _remove(s.path, s.side, s.intent)
        self._open, self._done = {}, []


# -- the committer's side ---------------------------------------------------------------------
def read_keys(files: Iterable[StagedFile]) -> tuple[TableSchema, pa.Table]:
    """The key columns, ``seq`` and ops of ``files``' rows (from their side records) and the
    table schema of the last one."""
    parts, schema = [], None
    for f in files:
        with pa.OSFile(f.side, "rb") as src:
            reader = ipc.open_file(src)
            schema = TableSchema.from_dict(json.loads(reader.schema.metadata[_SCHEMA_KEY]))
            parts.append(reader.read_all())
    assert schema is not None, "no staged file"
    return schema, pa.concat_tables(parts, promote_options="permissive")


def side_schema(f: StagedFile) -> TableSchema:
    """The table schema ``f``'s rows were written with."""
    with pa.OSFile(f.side, "rb") as src:
        return TableSchema.from_dict(json.loads(ipc.open_file(src).schema.metadata[_SCHEMA_KEY]))


def read_staged(f: StagedFile) -> Iterator[ChangeBatch]:
    """``f``'s rows as changes (their ops and versions from its side record; rows cast back
    to the hub's Arrow types), a row group at a time."""
    with pa.OSFile(f.side, "rb") as src:
        reader = ipc.open_file(src)
        schema = TableSchema.from_dict(json.loads(reader.schema.metadata[_SCHEMA_KEY]))
        side = reader.read_all()
    seq = side.column(SEQ).to_numpy()
    codes = side.column(OPS).to_numpy().astype(np.uint8)
    target = schema.arrow_schema
    at = 0
    for rb in pq.ParquetFile(f.path).iter_batches(batch_size=ROW_GROUP_ROWS):
        n = rb.num_rows
        rows = _cast_back(pa.Table.from_batches([rb]), target).combine_chunks().to_batches()
        arrow = rows[0] if rows else pa.RecordBatch.from_pylist([], schema=target)
        yield ChangeBatch(schema, codes[at:at + n].tobytes().decode("ascii"), arrow=arrow,
                          versions=seq[at:at + n])
        at += n
    if at != len(seq):
        raise OSError(f"staged file {f.path} holds {at} rows, its side record {len(seq)}")


def read_staged_keys(f: StagedFile) -> Iterator[ChangeBatch]:
    """``f``'s changes as :func:`read_staged` gives them, with only the key columns (from
    its side record: the data file is not read) -- what a scan of keys needs."""
    with pa.OSFile(f.side, "rb") as src:
        reader = ipc.open_file(src)
        schema = TableSchema.from_dict(json.loads(reader.schema.metadata[_SCHEMA_KEY]))
        side = reader.read_all()
    pk = list(schema.primary_key)
    target = pa.schema([schema.arrow_schema.field(k) for k in pk])
    keys = _cast_back(side.select(pk), target).combine_chunks().to_batches()
    codes = side.column(OPS).to_numpy().astype(np.uint8)
    if keys:
        yield ChangeBatch(schema, codes.tobytes().decode("ascii"), arrow=keys[0],
                          versions=side.column(SEQ).to_numpy())


def _cast_back(t: pa.Table, target: pa.Schema) -> pa.Table:
    """A staged file's rows (the format's types) in the hub's Arrow types ``target``.  Arrow
    has no cast from a time of day to a duration (an Iceberg ``time`` to the hub's TIME):
    within one unit the count of units is the value, so it goes through the 64-bit integer.
    Between units it is no such thing: that cast is left to Arrow, which refuses it."""
    cols = []
    for f in target:
        col = t.column(f.name)
        if pa.types.is_time(col.type) and pa.types.is_duration(f.type) \
                and col.type.unit == f.type.unit:
            col = col.cast(pa.int64())
        cols.append(col.cast(f.type))
    return pa.Table.from_arrays(cols, schema=target)


def forget(files: Iterable[StagedFile], merged: Iterable[StagedFile] = ()) -> None:
    """After the files' checkpoint is committed: delete their side records and intents (the
    data files belong to the table now), and the data files of ``merged`` (their rows went
    through the format's MERGE path instead: nothing references them)."""
    merged_paths = {f.path for f in merged}
    for f in files:
        _remove(f.side, f.intent, *((f.path,) if f.path in merged_paths else ()))


def discard_except(staging: str, keep: Iterable[StagedFile]) -> list[str]:
    """At restore: delete the data file, side record and intent of every staged file no
    committable in ``keep`` names (staged after the restored checkpoint).  Returns the data
    files deleted."""
    named = {os.path.normpath(f.intent) for f in keep}
    try:
        entries = os.listdir(staging)
    except FileNotFoundError:
        return []
    gone = []
    for name in entries:
        if not name.endswith(".path"):
            continue
        intent = os.path.join(staging, name)
        if os.path.normpath(intent) in named:
            continue
        with open(intent) as f:
            data = f.read().strip()
        _remove(data, intent[:-len(".path")] + ".keys.arrow", intent)
        gone.append(data)
    return gone


def keys_repeat(keys: pa.Table) -> bool:
    """Whether a key occurs twice in ``keys`` (key columns); a sort for one integer key
    without nulls, a hash aggregation else."""
    if keys.num_columns == 1 and pa.types.is_integer(keys.column(0).type) \
            and not keys.column(0).null_count:
        k = keys.column(0).to_numpy()
        if len(k) < 2 or bool(np.all(k[1:] > k[:-1])):
            return False
        k = np.sort(k, kind="stable")  # files of increasing keys: runs merged, not sorted
        return bool(np.any(k[1:] == k[:-1]))
    return keys.group_by(keys.column_names).aggregate([]).num_rows < keys.num_rows


def keys_overlap(a: pa.Table, b: pa.Table) -> bool:
    """Whether a key of ``a`` is in ``b`` (same key columns)."""
    if not a.num_rows or not b.num_rows:
        return False
    b = b.select(a.column_names).cast(a.schema)
    if a.num_columns == 1:
        return bool(pc.any(pc.is_in(a.column(0), value_set=b.column(0))).as_py())
    return a.join(b, a.column_names, join_type="left semi").num_rows > 0
