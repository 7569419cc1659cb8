"""Applying change batches to HBase, and the committer that applies write-ahead-log segments
once their checkpoint is durable.

Cell timestamps.  Thrift1's ``mutateRowsTs`` carries one timestamp per call, so the changes of
a call can't each carry their own version as timestamp (grouping rows by version would be one
call per row, since binlog and Kafka positions are unique per change).  Instead the versions
decide which change of a rowkey is written, and the timestamps only order what is written:

* every commit writes at timestamps above those of every earlier commit of the pipeline
  (:class:`CellClock`, milliseconds since the epoch, kept in the checkpoint storage), so a
  change of a later checkpoint always lands above the changes of earlier ones, whichever
  writer (or parallelism) they came from;
* a commit applies its segments (one per writer) at the same time, each streamed run by run
  (:func:`~runtime.wal.segment_runs`), every run at a timestamp of its own, increasing within
  the segment: one writer's changes of a rowkey land in the order it got them, and within a
  run only the last one (the highest version: :func:`~runtime.versioned.last_per_key`) is
  written;
* a rowkey in several segments of one commit (a MySQL snapshot chunk read by one subtask and
  the binlog change of the same key read by another) is settled first
  (:func:`shared_key_losers`, from a pass over the rowkeys and versions of all segments):
  only the segment holding its highest version writes it, the others skip it.  So the order
  in which the segments are applied, and their timestamps relative to each other, do not
  matter.  (Memory: one run per applying thread, plus, when a commit has several segments,
  the rowkeys and versions of its changes for the settling pass.)

A replay (the restored checkpoint's segments after a crash before they were all applied) is
written again, as a whole and settled again, at newer timestamps: nothing newer was applied
before it (commits are applied in checkpoint order, a commit's segments are deleted only once
they were all applied, and those prepared after the restored checkpoint are discarded), so
it ends in the same cells.  Segments of a commit that was applied completely are only
deleted (:class:`CommitRecord`): one of them applied again on its own could not be settled
against the others.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runtime.batch import DELETE, ChangeBatch
from runtime.errors import BadRecordError, ConfigError
from runtime.fs import filesystem
from runtime.schema import TableSchema
from runtime.sink import CommitContext
from runtime.versioned import check_batches, last_per_key
from runtime.wal import WalCommitter, WriteAheadLog, segment_runs, wal_root
from sinks.hbase.client import HBaseClient, MutationCodec
from sinks.hbase.config import HBaseSinkConfig
from sinks.hbase.types import cell_values, rowkeys

log = logging.getLogger(__name__)

#: Rows encoded at a time (Arrow arrays of encoded rows stay well below 2 GB).
ENCODE_ROWS = 1 << 16


class CellClock:
    """Cell timestamps: milliseconds since the epoch, strictly increasing across everything
    reserved from it (also when the wall clock steps back), starting above ``last``."""

    def __init__(self, last: int = 0):
        self.last = last

    def reserve(self, n: int) -> int:
        """The first of ``n`` consecutive timestamps above every earlier one."""
        base = max(int(time.time() * 1000), self.last + 1)
        self.last = base + max(n, 1) - 1
        return base


class _Sender:
    """Runs the Thrift calls of an :class:`Applier` in order on a thread of their own, so the
    next mutations are built while the server works on the previous ones (a Thrift call is a
    synchronous round trip).  The first error stops it and is raised by ``submit``/``drain``."""

    def __init__(self) -> None:
        self._tasks: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._idle = threading.Condition()
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name="hbase-sender", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            try:
                if self._error is None:
                    task()
            except BaseException as exc:  # noqa: BLE001 - handed to the applier's thread
                self._error = exc
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def submit(self, task: Callable[[], None]) -> None:
        self._raise()
        with self._idle:
            self._pending += 1
        self._tasks.put(task)

    def drain(self) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0)
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def close(self) -> None:
        self._tasks.put(None)
        self._thread.join(timeout=30)


@dataclass
class _Run:
    """A run of one table: its rows, ops and versions, its HBase table and rowkeys."""

    table: str
    batch: ChangeBatch
    rows: pa.Table
    keys: pa.Array


class Applier:
    """Writes runs of batches to their HBase tables over a connection of its own.  Used from
    one thread at a time."""

    def __init__(self, config: HBaseSinkConfig):
        self.config = config
        self.client = HBaseClient(config)
        self.codec = MutationCodec(config.protocol)
        self._sender: _Sender | None = None
        self._targets: dict[str, str] = {}  # table id -> its HBase table
        self._owners: dict[str, tuple[str, str]] = {}  # HBase table -> (source name, table id)

    def apply(self, batches: list[ChangeBatch], timestamp: int) -> None:
        """Write ``batches`` (runs from :func:`runtime.versioned.runs`, with versions), the
        i-th at ``timestamp + i``; of all changes of a rowkey among them only the one with the
        highest version.  Returns once everything is written."""
        planned = [self._plan(batch) for batch in batches]
        keep = _last_changes(planned)
        sender = self._start()
        try:
            for i, run in enumerate(planned):
                self._send(run, keep[i], timestamp + i)
        finally:
            sender.drain()

    def apply_segment(self, path: str, skip: dict[str, pa.Array], stamp: Callable[[], int],
                      stop: threading.Event | None = None) -> None:
        """Write the changes of write-ahead-log segment ``path``, streamed run by run, each
        run at a new timestamp ``stamp()`` (increasing), of its changes of a rowkey only the
        one with the highest version, and none of the rowkeys in ``skip`` (HBase table ->
        rowkeys another segment of the commit holds a higher version of).  Stops with
        :class:`~runtime.wal.Cancelled` between runs once ``stop`` is set."""
        sender = self._start()
        try:
            for batch in segment_runs(path, stop=stop):
                check_order(self.config, [batch])
                run = self._plan(batch)
                keep = _keep(run, skip.get(run.table))
                if keep is not None and not len(keep):
                    continue
                self._send(run, keep, stamp())
        finally:
            sender.drain()

    def _plan(self, batch: ChangeBatch) -> _Run:
        schema = batch.schema
        if not schema.primary_key:
            raise BadRecordError(f"hbase: table {schema.table} has no primary key: "
                                 "rowkeys need one")
        rows = pa.Table.from_batches([batch.arrow()])
        return _Run(self._target(schema.table), batch, rows, rowkeys(rows, schema))

    def _start(self) -> _Sender:
        if self._sender is None:
            self._sender = _Sender()
        return self._sender

    def _send(self, run: _Run, keep: np.ndarray | None, timestamp: int) -> None:
        """Hand the calls writing ``run`` (``keep``: those positions only) at ``timestamp``
        to the sender."""
        sender = self._start()
        families = self._families(run.batch.schema)
        # every call goes through the sender: one connection, one thread, in order
        sender.submit(lambda: self.client.ensure_table(run.table, families))
        table = run.table.encode()
        for encoded in self._encode(run, keep, families):
            for at in range(0, len(encoded), self.config.batch_size):
                chunk = encoded.slice(at, self.config.batch_size)
                request = self.codec.request(table, chunk, timestamp)
                sender.submit(lambda request=request, n=len(chunk):
                              self.client.mutate(run.table, request, n))

    def _target(self, table_id: str) -> str:
        """The HBase table of ``table_id``; :class:`ConfigError` when a table of another
        name already wrote it (``a b`` and ``a_b``: see
        :meth:`~sinks.hbase.config.HBaseSinkConfig.table_source`)."""
        known = self._targets.get(table_id)
        if known is not None:
            return known
        target = self.config.table_for(table_id)
        source = self.config.table_source(table_id)
        owner = self._owners.setdefault(target, (source, table_id))
        if owner[0] != source:
            raise ConfigError(f"hbase: tables {owner[1]} and {table_id} both map to HBase table "
                              f"{target} (characters other than letters, digits, _ . - "
                              f"become _); set table (or a route) so that they differ",
                              key="table")
        self._targets[table_id] = target
        return target

    def _families(self, schema: TableSchema) -> list[str]:
        cfg = self.config
        return sorted({cfg.column_family} | {cfg.family_of(c.name) for c in schema.columns
                                             if c.name not in schema.primary_key})

    def _encode(self, run: _Run, keep: np.ndarray | None,
                families: list[str]) -> Iterator[pa.Array]:
        """The ``BatchMutation`` of every row to write (``keep``: those positions only), a
        slice of rows at a time: puts of the values (a NULL deletes its cell, so no older
        value stays visible), or, for a delete, deletes of the row's families."""
        cfg, codec, schema = self.config, self.codec, run.batch.schema
        value_cols = [c for c in schema.columns if c.name not in schema.primary_key]
        rows, keys = run.rows, run.keys
        deletes = np.frombuffer(run.batch.ops.encode("ascii"), dtype=np.uint8) == ord(DELETE)
        if keep is not None:
            take = pa.array(keep, pa.int64())
            rows, keys, deletes = rows.take(take), keys.take(take), deletes[keep]
        qualifiers = [f"{cfg.family_of(c.name)}:{c.name}".encode() for c in value_cols]
        delete_row: list[pa.Array | bytes] = [codec.delete(f.encode()) for f in families]
        # a table of key columns only: one empty cell makes the row exist
        marker: list[pa.Array | bytes] = [codec.put(f"{cfg.column_family}:".encode(), b"")]
        for start in range(0, len(keys), ENCODE_ROWS):
            n = min(ENCODE_ROWS, len(keys) - start)
            part, gone = keys.slice(start, n), deletes[start:start + n]
            if gone.all():
                yield codec.rows(part, delete_row)
                continue
            cells: list[pa.Array | bytes] = [
                codec.cells(q, cell_values(rows.column(c.name).slice(start, n).combine_chunks(),
                                           c.type, cfg.value_encoding))
                for q, c in zip(qualifiers, value_cols)] or marker
            encoded = codec.rows(part, cells)
            if gone.any():
                encoded = pc.if_else(pa.array(gone), codec.rows(part, delete_row), encoded)
            yield encoded

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()
        self.client.close()


def check_order(config: HBaseSinkConfig, batches: list[ChangeBatch]) -> None:
    """Stop with one line when a rowkey's versions go backwards among the changes one writer
    received (:func:`~runtime.versioned.check_batches`): of a commit's changes of a rowkey
    only the highest version is written, so the later change would be lost silently."""
    check_batches("hbase", batches,
                  lambda b: rowkeys(pa.Table.from_batches([b.arrow()]), b.schema),
                  lambda table: f"truncate the HBase table {config.table_for(table)} and start "
                                f"the pipeline again with --fresh (a new snapshot)")


def _last_changes(planned: list[_Run]) -> list[np.ndarray | None]:
    """For each run, the positions to write (None: all): of all changes of a rowkey in one
    HBase table, only the one with the highest version."""
    keep: list[np.ndarray | None] = [None] * len(planned)
    by_table: dict[str, list[int]] = {}
    for i, run in enumerate(planned):
        by_table.setdefault(run.table, []).append(i)
    for members in by_table.values():
        keys = pa.concat_arrays([planned[i].keys for i in members])
        versions = np.concatenate([np.asarray(planned[i].batch.versions, dtype=np.int64)
                                   for i in members])
        last = last_per_key(keys, versions)
        if last is None:
            continue
        bounds = np.cumsum([0] + [len(planned[i].keys) for i in members])
        for j, i in enumerate(members):
            mine = last[(last >= bounds[j]) & (last < bounds[j + 1])]
            keep[i] = mine - bounds[j]
    return keep


def _keep(run: _Run, skip: pa.Array | None) -> np.ndarray | None:
    """The positions of ``run`` to write (None: all): not those of rowkeys in ``skip``, and of
    the changes of a rowkey only the one with the highest version."""
    n = len(run.keys)
    if skip is None or not len(skip):
        return last_per_key(run.keys, run.batch.versions)
    mine = np.flatnonzero(~pc.is_in(run.keys, value_set=skip).to_numpy(zero_copy_only=False))
    if len(mine) == n:
        return last_per_key(run.keys, run.batch.versions)
    take = pa.array(mine, pa.int64())
    last = last_per_key(run.keys.take(take), np.asarray(run.batch.versions)[mine])
    return mine if last is None else mine[last]


def segment_keys(config: HBaseSinkConfig, path: str,
                 stop: threading.Event | None = None) -> dict[str, pa.Table]:
    """Per HBase table, the rowkeys of segment ``path`` with their highest version (a table
    of ``key``, ``version``), read run by run (checking each run's order, as applying it
    does)."""
    parts: dict[str, list[pa.Table]] = {}
    for batch in segment_runs(path, stop=stop):
        check_order(config, [batch])
        keys = rowkeys(pa.Table.from_batches([batch.arrow()]), batch.schema)
        part = pa.table({"key": keys, "version": pa.array(batch.versions, pa.int64())})
        parts.setdefault(config.table_for(batch.table), []).append(
            part.group_by("key", use_threads=False).aggregate([("version", "max")]))
    out = {}
    for table, tables in parts.items():
        merged = pa.concat_tables(tables)
        if len(tables) > 1:
            merged = merged.group_by("key", use_threads=False).aggregate([("version_max",
                                                                           "max")])
            merged = merged.rename_columns(["key", "version_max"])
        out[table] = merged.select(["key", "version_max"]).rename_columns(["key", "version"])
    return out


def shared_key_losers(segments: list[dict[str, pa.Table]]) -> list[dict[str, pa.Array]]:
    """For each segment (its :func:`segment_keys`), per HBase table the rowkeys it must skip:
    those another segment holds a higher version of (on a tie, the later segment wins).  Keys
    in one segment only are skipped nowhere."""
    losers: list[dict[str, pa.Array]] = [{} for _ in segments]
    tables = {t for seg in segments for t in seg}
    for table in tables:
        members = [i for i, seg in enumerate(segments) if table in seg]
        if len(members) < 2:
            continue
        both = pa.concat_tables([segments[i][table].append_column(
            "segment", pa.array(np.full(segments[i][table].num_rows, i, dtype=np.int32)))
            for i in members])
        order = pc.sort_indices(both, sort_keys=[("key", "ascending"), ("version", "ascending"),
                                                 ("segment", "ascending")])
        both = both.take(order)
        keys = both.column("key").combine_chunks()
        n = len(keys)
        if n < 2:
            continue
        # a row followed by one of the same key is not the highest version of its key
        beaten = pc.equal(keys.slice(0, n - 1), keys.slice(1)).to_numpy(zero_copy_only=False)
        beaten = np.append(beaten, False)
        if not beaten.any():
            continue
        lost = both.filter(pa.array(beaten))
        owner = lost.column("segment").to_numpy()
        for i in np.unique(owner):
            losers[int(i)][table] = lost.column("key").filter(pa.array(owner == i)
                                                              ).combine_chunks()
    return losers


class CommitRecord:
    """What the HBase committer keeps next to the segments (atomically rewritten, at ``path``;
    in memory only without one): the last cell timestamp it handed out, and the segments of
    the last commit, once they were all applied.

    The second is what makes a commit whose segments were only partly deleted safe to replay:
    one segment applied again on its own would lose the comparison of versions with the
    others, so a recorded segment is only deleted, not applied again."""

    def __init__(self, path: str | None):
        self.path = path
        self.clock = CellClock()
        self.applied: list[str] = []
        if path is not None:
            fs = filesystem(path)
            try:
                data = json.loads(fs.read_bytes(path))
                self.clock.last, self.applied = int(data["last"]), list(data["applied"])
            except FileNotFoundError:
                fs.makedirs(os.path.dirname(path))

    def save(self) -> None:
        if self.path is not None:
            data = {"last": self.clock.last, "applied": self.applied}
            filesystem(self.path).write_atomically(self.path, json.dumps(data).encode())


class _Stamps:
    """Cell timestamps for the runs of one commit, handed to any applying thread: each from
    the commit record's clock, saved before it is used (no timestamp is handed out twice,
    even after a crash)."""

    def __init__(self, record: CommitRecord):
        self.record = record
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            timestamp = self.record.clock.reserve(1)
            self.record.save()
            return timestamp


class HBaseCommitter(WalCommitter[Applier]):
    """Applies the write-ahead-log segments of a commit at the same time (up to
    ``apply-threads``, each through an :class:`Applier` of its own), rowkeys shared between
    segments settled first (see the module docs), at timestamps of a :class:`CellClock` kept
    in a :class:`CommitRecord`; deletes them once they are all applied."""

    sink_name = "hbase"

    def __init__(self, config: HBaseSinkConfig):
        super().__init__(config.apply_threads)
        self.config = config
        self._record: CommitRecord | None = None

    def new_applier(self) -> Applier:
        return Applier(self.config)

    def apply(self, segments: list[str], context: CommitContext) -> None:
        if self._record is None:
            self._record = CommitRecord(
                wal_root(context.state_dir, context.pipeline, self.sink_name) + ".commits"
                if context.state_dir else None)
        record = self._record
        todo = [path for path in segments if path not in record.applied]
        if todo:
            skip = self._settle(todo)
            stamps = _Stamps(record)
            self.apply_concurrently(
                todo, lambda applier, path, stop: applier.apply_segment(
                    path, skip.get(path, {}), stamps.next, stop), delete_each=False)
            record.applied = todo
            record.save()
        for path in segments:
            WriteAheadLog.delete_segment(path)

    def _settle(self, segments: list[str]) -> dict[str, dict[str, pa.Array]]:
        """Per segment, the rowkeys it skips (:func:`shared_key_losers`); nothing to settle
        for one segment."""
        if len(segments) < 2:
            return {}
        found: dict[str, dict[str, pa.Table]] = {}
        lock = threading.Lock()

        def summarize(_applier: Applier, path: str, stop: threading.Event) -> None:
            keys = segment_keys(self.config, path, stop)
            with lock:
                found[path] = keys

        self.apply_concurrently(segments, summarize, delete_each=False)
        losers = shared_key_losers([found[path] for path in segments])
        return dict(zip(segments, losers))
