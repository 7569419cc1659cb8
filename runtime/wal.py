"""A write-ahead log of change batches in checkpoint storage, for sinks without transactions.

At the barrier a writer puts what it buffered since the last barrier into one *segment* and
returns the segment's path as (part of) its committable.  The committer applies the segment
only after the checkpoint is durable, with idempotent writes, and deletes it once applied.
After a crash, the restored checkpoint names the segments still to apply; segments written
after it are garbage (``discard_except``, called by :meth:`WalCommitter.recover`).

A segment is a folder with Arrow IPC files (the changelog form of the batches plus the
``_version`` column when they carry versions), written into a temporary folder, made durable
and renamed into place: a segment exists completely or not at all.  It lives wherever the
checkpoint storage does (a local folder or HDFS, through :mod:`runtime.fs`).  Order is kept
within a table, which is the order that matters (per-key order).

:class:`WalSinkWriter` and :class:`WalCommitter` are the writer and committer such a sink
(Elasticsearch, HBase) is built from: it adds how a list of batches is applied to its store.
"""
from __future__ import annotations

import json
import logging
import os
import posixpath
from abc import abstractmethod
from collections.abc import Iterable
from typing import ClassVar

import pyarrow as pa
import pyarrow.ipc as ipc

from runtime.batch import OP_COLUMN, TS_COLUMN, ChangeBatch
from runtime.fs import filesystem, normpath
from runtime.schema import SchemaChange, TableSchema
from runtime.sink import CommitContext, Committable, Committer, SinkWriter, WriterContext
from runtime.versioned import VersionClock

log = logging.getLogger(__name__)

VERSION_COLUMN = "_version"
_SCHEMA_KEY = b"hub.table_schema"


def wal_root(state_dir: str, pipeline: str, sink: str) -> str:
    """Where the segments of ``sink`` (its type name) in ``pipeline`` live: next to the
    pipeline's checkpoints (``WriterContext.state_dir``, ``CommitContext.state_dir``)."""
    return os.path.join(state_dir, "wal", pipeline, sink)


class WriteAheadLog:
    """Segments under ``root`` (a sink's :func:`wal_root`)."""

    def __init__(self, root: str):
        self.root = normpath(root)
        self.fs = filesystem(self.root)

    def _join(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def write_segment(self, name: str, batches: Iterable[ChangeBatch]) -> dict:
        """Durably store ``batches`` as segment ``name`` (unique per writer and checkpoint).
        Returns ``{"segment": path, "rows": n}``; empty input writes nothing (``path`` None)."""
        # One file per run of batches of one table and schema, numbered in order.
        runs: list[list[ChangeBatch]] = []
        index: dict[str, int] = {}
        for b in batches:
            if not len(b):
                continue
            i = index.get(b.table)
            if i is None or runs[i][-1].schema != b.schema:
                index[b.table] = len(runs)
                runs.append([b])
            else:
                runs[i].append(b)
        if not runs:
            return {"segment": None, "rows": 0}
        final = self._join(name)
        tmp = final + ".tmp"
        self.fs.rmtree(tmp)
        self.fs.makedirs(tmp)
        rows = 0
        for i, run in enumerate(runs):
            tables = [_with_version(b) for b in run]
            meta = {_SCHEMA_KEY: json.dumps(run[0].schema.to_dict()).encode()}
            path = posixpath.join(tmp, f"{i:04d}.arrow")
            if self.fs.is_local:
                _write_local(path, meta, tables)
            else:
                out = self.fs.create(path)
                try:
                    out.write(_ipc_bytes(meta, tables))  # one call: no Python frame per buffer
                except BaseException:
                    out.abort()
                    raise
                out.close()  # durable: closed and acknowledged on HDFS
            rows += sum(len(b) for b in run)
        self.fs.sync_dir(tmp)
        self.fs.rmtree(final)  # a leftover of an interrupted earlier attempt of this segment
        if not self.fs.rename(tmp, final):
            raise OSError(f"write-ahead log: could not rename {tmp} to {final}")
        self.fs.sync_dir(self.root)
        return {"segment": final, "rows": rows}

    @staticmethod
    def read_segment(path: str) -> list[ChangeBatch]:
        """The batches of a segment; per table in write order."""
        fs = filesystem(path)
        out: list[ChangeBatch] = []
        for st in sorted(fs.listdir(path), key=lambda s: s.name):
            reader = ipc.open_file(pa.BufferReader(fs.read_bytes(st.path)))
            schema = TableSchema.from_dict(json.loads(reader.schema.metadata[_SCHEMA_KEY]))
            out.append(_from_table(schema, reader.read_all()))
        return out

    @staticmethod
    def delete_segment(path: str) -> None:
        filesystem(path).rmtree(path)

    @staticmethod
    def exists(path: str) -> bool:
        """Whether segment ``path`` is still there (not yet applied and deleted)."""
        return filesystem(path).isdir(path)

    def discard_except(self, keep: Iterable[str]) -> list[str]:
        """Delete every segment not in ``keep`` (those written after the restored checkpoint,
        and leftovers of interrupted writes).  Returns what was deleted."""
        keep_set = {normpath(k) for k in keep if k}
        try:
            entries = self.fs.listdir(self.root)
        except FileNotFoundError:
            return []
        gone = []
        for st in entries:
            if normpath(st.path) not in keep_set:
                self.fs.rmtree(st.path)
                gone.append(st.path)
        return gone


def _write_ipc(sink: pa.NativeFile, meta: dict, tables: list[pa.Table]) -> None:
    with ipc.new_file(sink, tables[0].schema.with_metadata(meta)) as w:
        for t in tables:
            w.write_table(t.replace_schema_metadata(meta))


def _write_local(path: str, meta: dict, tables: list[pa.Table]) -> None:
    """Arrow's own file: the writes never take the GIL (a Python file object takes it for
    every buffer, and waits for it while other threads run Python); then fsync."""
    try:
        with pa.OSFile(path, "wb") as f:
            _write_ipc(f, meta, tables)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        raise


def _ipc_bytes(meta: dict, tables: list[pa.Table]) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    _write_ipc(sink, meta, tables)
    return sink.getvalue()


def _with_version(b: ChangeBatch) -> pa.Table:
    t = b.changelog_table()
    if b.versions is not None:
        t = t.append_column(VERSION_COLUMN, pa.array(b.versions, type=pa.int64()))
    return t


def _from_table(schema: TableSchema, table: pa.Table) -> ChangeBatch:
    batches = table.select(list(schema.names)).combine_chunks().to_batches()
    arrow = (batches[0].cast(schema.arrow_schema) if batches
             else pa.RecordBatch.from_pylist([], schema=schema.arrow_schema))
    ops = "".join(table.column(OP_COLUMN).to_pylist())
    versions = (table.column(VERSION_COLUMN).to_numpy()
                if VERSION_COLUMN in table.column_names else None)
    return ChangeBatch(schema, ops, arrow=arrow, ts_ms=table.column(TS_COLUMN).combine_chunks(),
                       versions=versions)


class WalSinkWriter(SinkWriter):
    """The writer of a sink without transactions, for one subtask.

    * exactly-once: keeps the batches of the current checkpoint in memory (each with versions:
      the source's, else a :class:`~runtime.versioned.VersionClock`'s) and, at the barrier,
      stores them as one segment; the committable ``{"segment", "rows"}`` names it.  Nothing
      reaches the store before the committer applies it.
    * at-least-once: :meth:`apply` writes as soon as ``flush_rows`` rows are buffered, and the
      rest at the barrier; after a crash the changes since the last checkpoint are written
      again, which versioned writes make harmless.
    """

    #: The sink's type name: folder of its segments and prefix of its log lines.
    sink_name: ClassVar[str]
    #: What keeps its rows when a table is truncated or dropped (for the warning).
    container: ClassVar[str] = "table"

    def __init__(self, context: WriterContext, exactly_once: bool, flush_rows: int):
        self.context = context
        self.exactly_once = exactly_once
        self._flush_rows = flush_rows
        self._versions = VersionClock()
        self._pending: list[ChangeBatch] = []
        self._pending_rows = 0
        self._wal = WriteAheadLog(wal_root(context.state_dir, context.pipeline, self.sink_name))

    @abstractmethod
    def apply(self, batches: list[ChangeBatch]) -> None:
        """At-least-once: write ``batches`` (in order, each with versions) to the store now."""

    def write(self, batch: ChangeBatch) -> None:
        if not len(batch):
            return
        self._pending.append(self._versions.stamp(batch))
        self._pending_rows += len(batch)
        if not self.exactly_once and self._pending_rows >= self._flush_rows:
            self._flush()

    def write_schema_change(self, change: SchemaChange) -> None:
        # New and changed columns reach the store with the first batch of the new schema.
        if change.kind in ("truncate_table", "drop_table"):
            log.warning("%s: %s of %s is not applied: the %s keeps its rows", self.sink_name,
                        change.kind.replace("_", " "), change.table, self.container)

    def prepare_commit(self, checkpoint_id: int) -> list[Committable]:
        if not self.exactly_once:
            self._flush()
            return []
        ctx = self.context
        name = f"{ctx.attempt}-{ctx.subtask:03d}-{checkpoint_id:09d}"
        info = self._wal.write_segment(name, self._pending)
        self._pending, self._pending_rows = [], 0
        if info["segment"] is None:
            return []
        return [{"segment": info["segment"], "rows": info["rows"]}]

    def _flush(self) -> None:
        if self._pending:
            self.apply(self._pending)
        self._pending, self._pending_rows = [], 0

    def close(self) -> None:
        self._pending, self._pending_rows = [], 0


class WalCommitter(Committer):
    """Applies the segments named by committables ``{"segment": path, ...}`` once their
    checkpoint is durable, and deletes each once it is applied.

    Idempotent: a missing segment was applied before (a replay), and applying an existing one
    again changes nothing, thanks to versioned writes.  Never returns "not yet".
    :meth:`recover` first deletes the segments that no restored committable names: those of
    checkpoints that never completed (and leftovers of interrupted writes).
    """

    sink_name: ClassVar[str]

    @abstractmethod
    def apply(self, segments: list[str], context: CommitContext) -> None:
        """Apply the (existing) ``segments`` in order, deleting each once it is applied."""

    def commit(self, committables: list[Committable], context: CommitContext) -> list[Committable]:
        segments = []
        for path in _segments(committables):
            if WriteAheadLog.exists(path):
                segments.append(path)
            else:
                log.debug("%s: segment %s was applied before", self.sink_name, path)
        if segments:
            self.apply(segments, context)
        return []

    def recover(self, committables: list[Committable], context: CommitContext) -> list[Committable]:
        if context.state_dir:
            wal = WriteAheadLog(wal_root(context.state_dir, context.pipeline, self.sink_name))
            for path in wal.discard_except(_segments(committables)):
                log.info("%s: discarded %s, prepared after the restored checkpoint",
                         self.sink_name, path)
        return self.commit(committables, context)


def _segments(committables: list[Committable]) -> list[str]:
    return [c["segment"] for c in committables if c.get("segment")]
