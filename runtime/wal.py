"""A write-ahead log of change batches in checkpoint storage, for sinks without transactions.

Between two barriers a writer appends its batches to one *segment* as they come
(:class:`SegmentWriter`: memory stays one batch, whatever the checkpoint interval); at the
barrier it makes the segment durable and returns its path as (part of) its committable.  The committer applies the segment
only after the checkpoint is durable, with idempotent writes, and deletes it once applied.
After a crash, the restored checkpoint names the segments still to apply; segments written
after it are garbage (``discard_except``, called by :meth:`WalCommitter.recover`).

A segment is a folder with Arrow IPC files (the changelog form of the batches plus the
``_version`` column when they carry versions), written into a temporary folder, made durable
at the barrier and renamed into place: a segment exists completely or not at all.  It lives wherever the
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
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from typing import ClassVar, Generic, TypeVar

import pyarrow as pa
import pyarrow.ipc as ipc

from runtime.batch import OP_COLUMN, TS_COLUMN, ChangeBatch
from runtime.fs import filesystem, normpath
from runtime.schema import SchemaChange, TableSchema
from runtime.sink import CommitContext, Committable, Committer, SinkWriter, WriterContext
from runtime.versioned import VersionClock, runs

log = logging.getLogger(__name__)

_SCHEMA_KEY = b"hub.table_schema"
#: Names of a segment's own columns beside the rows: no source column can have them (MySQL,
#: PostgreSQL and Avro names can't hold a NUL character), so a table with columns named
#: ``op``, ``ts_ms`` or ``_version`` is stored as it is.  Segments written before these names
#: (``op``, ``ts_ms``, ``_version``) are still read.
OP, TS, VERSION = "\0op", "\0ts_ms", "\0version"
_OLD_NAMES = (OP_COLUMN, TS_COLUMN, "_version")


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

    def open_segment(self) -> SegmentWriter:
        """A segment written as its batches come (see :class:`SegmentWriter`)."""
        return SegmentWriter(self)

    def write_segment(self, name: str, batches: Iterable[ChangeBatch]) -> dict:
        """Durably store ``batches`` as segment ``name`` (unique per writer and checkpoint).
        Returns ``{"segment": path, "rows": n}``; empty input writes nothing (``path`` None)."""
        seg = self.open_segment()
        try:
            for b in batches:
                seg.append(b)
            return seg.finish(name)
        except BaseException:
            seg.abort()
            raise

    @staticmethod
    def read_segment(path: str) -> list[ChangeBatch]:
        """The batches of a segment, one per run file (a table's batches of one schema,
        concatenated); per table in write order.  Holds the whole segment in memory: for
        tests and small segments; committers stream with :meth:`iter_segment`."""
        fs = filesystem(path)
        out: list[ChangeBatch] = []
        for st in sorted(fs.listdir(path), key=lambda s: s.name):
            reader = ipc.open_file(pa.BufferReader(fs.read_bytes(st.path)))
            schema = TableSchema.from_dict(json.loads(reader.schema.metadata[_SCHEMA_KEY]))
            out.append(_from_table(schema, reader.read_all()))
        return out

    @staticmethod
    def iter_segment(path: str, columns: Callable[[TableSchema], Sequence[str]] | None = None
                     ) -> Iterator[ChangeBatch]:
        """The batches of a segment as they were appended (per table in write order), read
        one record batch at a time: memory stays about one batch, whatever the size of the
        segment.  With ``columns``, each batch holds only the row columns
        ``columns(schema)`` names (of its schema, in that order; its ``arrow()`` has just
        those), beside its ops, event times and versions: only their buffers are read (a
        pass that needs keys and ops, not row images).  A segment on another file system
        (HDFS) is copied to a local temporary file one run file at a time, removed once
        read."""
        fs = filesystem(path)
        for st in sorted(fs.listdir(path), key=lambda s: s.name):
            local, temporary = fs.local_copy(st.path)
            try:
                # a plain file, not a memory map: pages of a map stay resident until unmapped
                with pa.OSFile(local, "rb") as f:
                    reader = ipc.open_file(f)
                    schema = TableSchema.from_dict(
                        json.loads(reader.schema.metadata[_SCHEMA_KEY]))
                    arrow_schema = None
                    if columns is not None:
                        names = reader.schema.names
                        wanted = list(columns(schema))
                        arrow_schema = pa.schema([schema.arrow_schema.field(c) for c in wanted])
                        own = [n for n in ((OP, TS, VERSION) if OP in names else _OLD_NAMES)
                               if n in names]
                        reader = ipc.open_file(f, options=ipc.IpcReadOptions(
                            included_fields=[names.index(c) for c in wanted + own]))
                    for i in range(reader.num_record_batches):
                        yield _from_table(schema, pa.Table.from_batches([reader.get_batch(i)]),
                                          arrow_schema)
            finally:
                if temporary:
                    os.unlink(local)

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


class SegmentWriter:
    """One segment, written batch by batch as a writer gets them, so that a writer holds one
    batch in memory, not a checkpoint interval's worth: into a temporary folder (named when
    the first batch comes; the segment's own name is known only at the barrier), one Arrow
    IPC file per run of batches of one table and schema, numbered in order (per-table order
    is what reading back keeps).  :meth:`finish` closes the files, makes them durable and
    renames the folder into place: a segment exists completely or not at all.  A folder left
    by a crash is garbage for :meth:`WriteAheadLog.discard_except`.

    Not thread-safe: one writer thread appends and finishes (or aborts)."""

    def __init__(self, wal: WriteAheadLog):
        self.wal = wal
        self.rows = 0
        self._tmp: str | None = None
        self._files: list[_RunFile] = []
        self._open: dict[str, _RunFile] = {}   # table -> the file of its current run

    def append(self, batch: ChangeBatch) -> None:
        if not len(batch):
            return
        if self._tmp is None:
            # unique among all writers sharing the root, in any process
            self._tmp = self.wal._join(f"{uuid.uuid4().hex}.tmp")
            self.wal.fs.rmtree(self._tmp)
            self.wal.fs.makedirs(self._tmp)
        run = self._open.get(batch.table)
        if run is None or run.schema != batch.schema:
            if run is not None:
                run.close()
            path = posixpath.join(self._tmp, f"{len(self._files):04d}.arrow")
            run = self._open[batch.table] = _RunFile(self.wal.fs, path, batch.schema)
            self._files.append(run)
        run.write(_with_version(batch))
        self.rows += len(batch)

    def finish(self, name: str) -> dict:
        """Make the segment durable as ``name`` (unique per writer and checkpoint).  Returns
        ``{"segment": path, "rows": n}``; ``path`` is None when nothing was appended."""
        if self._tmp is None:
            return {"segment": None, "rows": 0}
        fs = self.wal.fs
        for run in self._files:
            run.close()
        fs.sync_dir(self._tmp)
        final = self.wal._join(name)
        fs.rmtree(final)  # a leftover of an interrupted earlier attempt of this segment
        if not fs.rename(self._tmp, final):
            raise OSError(f"write-ahead log: could not rename {self._tmp} to {final}")
        fs.sync_dir(self.wal.root)
        return {"segment": final, "rows": self.rows}

    def abort(self) -> None:
        """Give the segment up (best effort: recovery deletes leftovers too)."""
        for run in self._files:
            run.abort()
        if self._tmp is not None:
            try:
                self.wal.fs.rmtree(self._tmp)
            except OSError:
                log.debug("write-ahead log: could not delete %s (recovery will)", self._tmp)
        self._tmp = None


class _RunFile:
    """One Arrow IPC file of a segment, open for appending.  Local: Arrow's own file (its
    writes never take the GIL: a Python file object takes it for every buffer), fsynced at
    close; elsewhere the file system's output, durable at close."""

    def __init__(self, fs, path: str, schema: TableSchema):
        self.fs, self.path, self.schema = fs, path, schema
        self.meta = {_SCHEMA_KEY: json.dumps(schema.to_dict()).encode()}
        self._out = pa.OSFile(path, "wb") if fs.is_local else fs.create(path)
        self._writer: ipc.RecordBatchFileWriter | None = None
        self.closed = False

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._writer = ipc.new_file(self._out, table.schema.with_metadata(self.meta))
        self._writer.write_table(table.replace_schema_metadata(self.meta))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._writer is not None:
            self._writer.close()
        self._out.close()  # HDFS: returns once the datanodes acknowledged it
        if self.fs.is_local:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def abort(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.fs.is_local:
            self._out.close()
        else:
            self._out.abort()


def _with_version(b: ChangeBatch) -> pa.Table:
    rb = b.arrow()
    cols = list(rb.columns) + [b.ops_array(), b.ts_ms_array().cast(pa.int64())]
    names = list(rb.schema.names) + [OP, TS]
    if b.versions is not None:
        cols.append(pa.array(b.versions, type=pa.int64()))
        names.append(VERSION)
    return pa.Table.from_arrays(cols, names=names)


def _from_table(schema: TableSchema, table: pa.Table,
                arrow_schema: pa.Schema | None = None) -> ChangeBatch:
    """A batch of ``schema`` from a segment's ``table``; ``arrow_schema``: the row columns
    ``table`` holds, when not all of the schema's (see :meth:`WriteAheadLog.iter_segment`)."""
    op, ts, version = (OP, TS, VERSION) if OP in table.column_names else _OLD_NAMES
    rows = table.select([i for i, name in enumerate(table.column_names)
                         if name not in (op, ts, version)])
    batches = rows.combine_chunks().to_batches()
    arrow_schema = schema.arrow_schema if arrow_schema is None else arrow_schema
    arrow = (batches[0].cast(arrow_schema) if batches
             else pa.RecordBatch.from_pylist([], schema=arrow_schema))
    ops = ChangeBatch.ops_from_array(table.column(op))
    versions = (table.column(version).to_numpy() if version in table.column_names else None)
    return ChangeBatch(schema, ops, arrow=arrow, ts_ms=table.column(ts).combine_chunks(),
                       versions=versions)


class WalSinkWriter(SinkWriter):
    """The writer of a sink without transactions, for one subtask.

    * exactly-once: appends each batch (with versions: the source's, else a
      :class:`~runtime.versioned.VersionClock`'s) to the checkpoint's segment as it comes
      (memory stays one batch, whatever the checkpoint interval) and, at the barrier, makes
      the segment durable; the committable ``{"segment", "rows"}`` names it.  Nothing reaches
      the store before the committer applies it.
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
        self._segment: SegmentWriter | None = None

    def apply(self, batches: list[ChangeBatch]) -> None:
        """At-least-once: write ``batches`` (in order, each with versions) to the store now.
        Sinks that offer at-least-once delivery implement it; exactly-once only ones never
        get here."""
        raise NotImplementedError(f"{self.sink_name} sink: at-least-once delivery")

    def write(self, batch: ChangeBatch) -> None:
        if not len(batch):
            return
        batch = self._versions.stamp(batch)
        if self.exactly_once:
            if self._segment is None:
                self._segment = self._wal.open_segment()
            self._segment.append(batch)
            return
        self._pending.append(batch)
        self._pending_rows += len(batch)
        if self._pending_rows >= self._flush_rows:
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
        if self._segment is None:
            return []
        ctx = self.context
        segment, self._segment = self._segment, None
        info = segment.finish(f"{ctx.attempt}-{ctx.subtask:03d}-{checkpoint_id:09d}")
        return [{"segment": info["segment"], "rows": info["rows"]}]

    def _flush(self) -> None:
        if self._pending:
            self.apply(self._pending)
        self._pending, self._pending_rows = [], 0

    def close(self) -> None:
        self._pending, self._pending_rows = [], 0
        if self._segment is not None:
            self._segment.abort()  # records after the last barrier: never committed
            self._segment = None


#: Rows of a segment merged into one run when it is applied (:func:`segment_runs`): about
#: what a committer thread holds of a segment at a time, and the span over which the versions
#: of a key are checked within one writer (:func:`~runtime.versioned.check_versions`).
RUN_ROWS = 1 << 15


class Cancelled(Exception):
    """Raised by :func:`segment_runs` between two runs once its ``stop`` event is set: the
    commit failed on another segment, so this one stops early (and is not deleted)."""


def segment_runs(path: str, max_rows: int | None = None,
                 stop: threading.Event | None = None) -> Iterator[ChangeBatch]:
    """The batches of segment ``path`` (one writer's, in the order it got them) as runs of
    at least ``max_rows`` (default :data:`RUN_ROWS`) rows where the segment has them (:func:`~runtime.versioned.runs` of
    consecutive batches: per table in write order), streamed: memory is about one run,
    whatever the size of the segment.  Raises :class:`Cancelled` before the next run once
    ``stop`` is set."""
    limit = max_rows or RUN_ROWS
    buffered: list[ChangeBatch] = []
    rows = 0
    for batch in WriteAheadLog.iter_segment(path):
        buffered.append(batch)
        rows += len(batch)
        if rows >= limit:
            if stop is not None and stop.is_set():
                raise Cancelled(path)
            yield from runs(buffered)
            buffered, rows = [], 0
    if buffered:
        if stop is not None and stop.is_set():
            raise Cancelled(path)
        yield from runs(buffered)


A = TypeVar("A")


class WalCommitter(Committer, Generic[A]):
    """Applies the segments named by committables ``{"segment": path, ...}`` once their
    checkpoint is durable, and deletes each once it is applied.

    Idempotent: a missing segment was applied before (a replay), and applying an existing one
    again changes nothing, thanks to versioned writes.  Never returns "not yet".
    :meth:`recover` first deletes the segments that no restored committable names: those of
    checkpoints that never completed (and leftovers of interrupted writes).

    Concurrency.  The segments of one commit (one per writer subtask) are applied at the same
    time, up to ``threads`` at once (:meth:`apply_concurrently`), each by one thread with an
    *applier* of its own (a connection: :meth:`new_applier`), streamed run by run
    (:func:`segment_runs`).  Why the result is the one of applying them one after the other:

    * per-key order within a writer is kept: a segment holds one writer's changes in the
      order it got them, and one thread applies it in that order;
    * a key in several segments of one commit (a MySQL snapshot chunk read by one subtask,
      the binlog change of the same key read by another) ends at its highest version, not at
      the segment applied last: the sinks write with versions, and the store keeps the
      highest one whatever the order of arrival (Elasticsearch: external versions, a lower
      one is refused with 409); where the store can't compare versions per change (HBase
      over Thrift1: one cell timestamp per call), the sink settles those keys before
      applying (see :class:`sinks.hbase.committer.HBaseCommitter`);
    * a failure on one segment is the one error of the commit: the other segments stop at
      their next run, segments not fully applied are kept, and the commit is retried as a
      whole (applying a segment again changes nothing).
    """

    sink_name: ClassVar[str]
    #: segments applied at once (set by :meth:`__init__`)
    threads: int = 1
    _pool: ThreadPoolExecutor | None = None

    def __init__(self, threads: int = 1):
        self.threads = max(1, threads)
        self._reset_appliers()

    def _reset_appliers(self) -> None:
        self._appliers: list[A] = []
        self._free: queue.SimpleQueue[A] = queue.SimpleQueue()
        self._appliers_lock = threading.Lock()

    # -- what a sink adds ---------------------------------------------------------------------
    def new_applier(self) -> A:
        """A new applier (its own connection): used by one thread at a time.  Only for
        committers that use :meth:`apply_concurrently` (a subclass overriding :meth:`apply`
        with its own way may have none)."""
        raise NotImplementedError(f"{type(self).__name__}.new_applier")

    def close_applier(self, applier: A) -> None:
        applier.close()  # type: ignore[attr-defined]

    def apply_segment(self, applier: A, path: str, context: CommitContext,
                      stop: threading.Event) -> None:
        """Apply segment ``path`` with ``applier``, in order (stream it with
        :func:`segment_runs` and pass it ``stop``).  Called by :meth:`apply`; a subclass that
        keeps this default applier must define it (the lake committer overrides :meth:`apply`
        instead and never gets here)."""
        raise NotImplementedError(f"{type(self).__name__}.apply_segment: a WAL sink applying "
                                  f"segments concurrently defines how one segment is applied")

    def apply(self, segments: list[str], context: CommitContext) -> None:
        """Apply the (existing) ``segments``, deleting each once it is applied.  Default:
        :meth:`apply_segment` for each, concurrently (:meth:`apply_concurrently`)."""
        self.apply_concurrently(
            segments, lambda applier, path, stop: self.apply_segment(applier, path, context, stop),
            delete_each=True)

    # -- the generic part ---------------------------------------------------------------------
    def apply_concurrently(self, segments: list[str],
                           fn: Callable[[A, str, threading.Event], None],
                           delete_each: bool) -> None:
        """``fn(applier, path, stop)`` for every segment, up to :attr:`threads` at once (in
        the calling thread when there is one segment or one thread), each with an applier
        nobody else uses meanwhile; with ``delete_each`` a segment is deleted as soon as its
        ``fn`` returned.  The first error (in the order they happen) is raised once every
        call has ended, after setting ``stop`` so that the others end at their next run
        (:class:`Cancelled` is no error); later errors are logged."""
        stop = threading.Event()

        def one(path: str) -> None:
            if stop.is_set():
                raise Cancelled(path)
            with self.borrow_applier() as applier:
                fn(applier, path, stop)
            if delete_each:
                WriteAheadLog.delete_segment(path)

        if len(segments) == 1 or self.threads == 1:
            for path in segments:
                one(path)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads,
                                            thread_name_prefix=f"{self.sink_name}-apply")
        futures = {self._pool.submit(one, path): path for path in segments}
        errors: list[tuple[str, BaseException]] = []
        for done in as_completed(futures):
            exc = done.exception()
            if exc is None or isinstance(exc, Cancelled):
                continue
            stop.set()
            errors.append((futures[done], exc))
        if errors:
            for path, exc in errors[1:]:
                log.warning("%s: applying segment %s failed too: %s", self.sink_name, path, exc)
            raise errors[0][1]

    @contextmanager
    def borrow_applier(self) -> Iterator[A]:
        """An applier nobody else uses until the block ends."""
        applier = self._take_applier()
        try:
            yield applier
        finally:
            self._free.put(applier)

    def _take_applier(self) -> A:
        if "_free" not in self.__dict__:  # a subclass that did not call __init__
            self._reset_appliers()
        try:
            return self._free.get_nowait()
        except queue.Empty:
            applier = self.new_applier()
            with self._appliers_lock:
                self._appliers.append(applier)
            return applier

    @property
    def appliers(self) -> list[A]:
        """The appliers made so far (e.g. to sum what they counted)."""
        if "_appliers" not in self.__dict__:
            return []
        with self._appliers_lock:
            return list(self._appliers)

    # -- the Committer interface --------------------------------------------------------------
    def commit(self, committables: list[Committable], context: CommitContext) -> list[Committable]:
        segments = []
        for path in _segments(committables):
            if WriteAheadLog.exists(path):
                segments.append(path)
            else:
                log.debug("%s: segment %s was applied before", self.sink_name, path)
        if segments:
            started = time.monotonic()
            self.apply(segments, context)
            log.info("%s: checkpoint %d: applied %d segments in %.1fs (up to %d at once)",
                     self.sink_name, context.checkpoint_id, len(segments),
                     time.monotonic() - started, min(self.threads, len(segments)))
        return []

    def recover(self, committables: list[Committable], context: CommitContext) -> list[Committable]:
        if context.state_dir:
            wal = WriteAheadLog(wal_root(context.state_dir, context.pipeline, self.sink_name))
            for path in wal.discard_except(_segments(committables)):
                log.info("%s: discarded %s, prepared after the restored checkpoint",
                         self.sink_name, path)
        return self.commit(committables, context)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        for applier in self.appliers:
            try:
                self.close_applier(applier)
            except Exception:  # noqa: BLE001 - closing is best effort, the work is done
                log.warning("%s: closing a connection failed (ignored)", self.sink_name,
                            exc_info=True)
        self._reset_appliers()


def _segments(committables: list[Committable]) -> list[str]:
    return [c["segment"] for c in committables if c.get("segment")]
