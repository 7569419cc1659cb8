"""Shared machinery of the conformance suites every source and every sink must pass.

* :class:`CollectSink` is a reference two-phase sink that keeps everything in memory: sources
  are checked against it.
* :class:`ListSource` is a reference split-based source over given batches: sinks are checked
  with it.
* :func:`run_job` runs a job on an executor (``"local"``, or ``"ray"``: the Ray executor on
  the two-node cluster of tests/servers/ray.py), optionally failing it on purpose after a
  number of batches once some checkpoint has completed (the Bytewax ``ABORT()`` idea), and
  :func:`run_with_failures` restarts it from its latest checkpoint until it finishes.

What a sink's writers and its committer share to fail on purpose (:class:`Abort`) meets in
files, not in memory: on Ray each writer is an unpickled copy in its own process.
"""
from __future__ import annotations

import os
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from runtime.batch import ChangeBatch
from runtime.checkpoint.storage import CheckpointStorage
from runtime.executor.base import Executor
from runtime.executor.job import Job
from runtime.executor.local import LocalExecutor
from runtime.metrics import PipelineMetrics
from runtime.schema import Column, TableSchema
from runtime.sink import Committer, Sink, SinkWriter
from runtime.source import InputStatus, Source, SourceReader, Split, SplitEnumerator
from runtime.types import T


class InjectedFailure(Exception):
    """Raised on purpose to abort a job mid-way."""


class Abort:
    """Fails the job at the ``after_batches``-th batch a writer writes once ``min_checkpoints``
    were committed, once over all writers and processes.  Its state lives in ``folder``
    (commits counted as files, the firing an ``O_EXCL`` marker), so that writers in other
    processes (Ray actors) see the driver's commits; batches are counted per process."""

    def __init__(self, folder: str | os.PathLike, after_batches: int, min_checkpoints: int = 1):
        self.folder = str(folder)
        self.after_batches = after_batches
        self.min_checkpoints = min_checkpoints
        self.batches = 0
        os.makedirs(os.path.join(self.folder, "commits"), exist_ok=True)

    @property
    def completed(self) -> int:
        return len(os.listdir(os.path.join(self.folder, "commits")))

    @property
    def fired(self) -> bool:
        return os.path.exists(os.path.join(self.folder, "fired"))

    def committed(self) -> None:
        """A commit completed (the committer calls it)."""
        path = os.path.join(self.folder, "commits", str(self.completed))
        while True:
            try:
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                return
            except FileExistsError:
                path += "+"

    def on_batch(self) -> None:
        if self.fired or self.completed < self.min_checkpoints:
            return
        self.batches += 1
        if self.batches >= self.after_batches:
            try:  # one firing, whichever writer gets there first
                os.close(os.open(os.path.join(self.folder, "fired"),
                                 os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return
            raise InjectedFailure("injected failure")


# -- reference sink --------------------------------------------------------------------------
class CollectStore:
    """What the reference sink made visible, and what it prepared."""

    def __init__(self) -> None:
        self.pending: dict[str, list[tuple]] = {}
        self.committed: dict[str, list[tuple]] = {}
        self.lock = threading.Lock()

    def rows(self) -> Counter:
        out: Counter = Counter()
        for rows in self.committed.values():
            out.update(rows)
        return out


class _CollectWriter(SinkWriter):
    def __init__(self, store: CollectStore, attempt: str, subtask: int, abort: Abort | None):
        self.store, self.attempt, self.subtask, self.abort = store, attempt, subtask, abort
        self.buffer: list[tuple] = []

    def write(self, batch: ChangeBatch) -> None:
        if self.abort:
            self.abort.on_batch()
        for op, row in zip(batch.ops, batch.rows()):
            self.buffer.append((batch.table, op) + tuple(row))

    def prepare_commit(self, checkpoint_id: int) -> list[dict]:
        cid = f"{self.attempt}-{self.subtask}-{checkpoint_id}"
        with self.store.lock:
            self.store.pending[cid] = self.buffer
        self.buffer = []
        return [{"id": cid}]


class _CollectCommitter(Committer):
    def __init__(self, store: CollectStore, abort: Abort | None):
        self.store, self.abort = store, abort

    def commit(self, committables, context):
        with self.store.lock:
            for c in committables:
                if c["id"] in self.store.pending:
                    self.store.committed[c["id"]] = self.store.pending.pop(c["id"])
        if self.abort:
            self.abort.committed()
        return []

    def recover(self, committables, context):
        self.commit(committables, context)
        with self.store.lock:
            self.store.pending.clear()  # prepared after the restored checkpoint: roll back
        return []


class CollectSink(Sink):
    def __init__(self, store: CollectStore, abort: Abort | None = None):
        self.store, self.abort = store, abort

    def create_writer(self, context, state):
        return _CollectWriter(self.store, context.attempt, context.subtask, self.abort)

    def create_committer(self):
        return _CollectCommitter(self.store, self.abort)


class FailingSink(CollectSink):
    """The reference sink whose writers raise ``error`` on every batch."""

    def __init__(self, store: CollectStore, error: BaseException):
        super().__init__(store)
        self.error = error

    def create_writer(self, context, state):
        writer = super().create_writer(context, state)

        def write(batch):
            raise self.error

        writer.write = write
        return writer


class AbortingSink(Sink):
    """Wraps a sink: fails at a chosen batch, counts completed commits (the sink conformance
    suite; here, not in the test module, so that a Ray actor can unpickle it)."""

    def __init__(self, inner: Sink, abort: Abort | None):
        self.inner, self.abort = inner, abort

    def check(self):
        self.inner.check()

    def create_writer(self, context, state):
        writer = self.inner.create_writer(context, state)
        if self.abort:
            write = writer.write

            def failing_write(batch, write=write):
                self.abort.on_batch()
                write(batch)

            writer.write = failing_write
        return writer

    def create_committer(self):
        committer = self.inner.create_committer()
        if self.abort:
            # the committer task commits through commit_each (by default: through commit)
            commit_each = committer.commit_each

            def counting_commit(committables, context, commit_each=commit_each):
                out = commit_each(committables, context)
                self.abort.committed()
                return out

            committer.commit_each = counting_commit
        return committer


# -- reference source ------------------------------------------------------------------------
ORDERS = TableSchema("test.orders", (Column("id", T("BIGINT"), False), Column("name", T("STRING")),
                                      Column("amount", T("DECIMAL(10,2)"))), ("id",))


@dataclass
class ListSplit(Split):
    index: int = 0
    offset: int = 0


class _ListEnumerator(SplitEnumerator):
    def __init__(self, ctx, pending: list[ListSplit]):
        self.ctx, self.pending = ctx, pending

    def handle_split_request(self, subtask):
        if self.pending:
            self.ctx.assign_splits({subtask: [self.pending.pop(0)]})
        else:
            self.ctx.signal_no_more_splits(subtask)

    def snapshot_state(self, checkpoint_id):
        return {"pending": [s.to_dict() for s in self.pending]}


class _ListReader(SourceReader):
    def __init__(self, ctx, data: list[list[ChangeBatch]], hold: tuple[int, str] | None = None):
        self.ctx, self.data, self.hold = ctx, data, hold
        self.emitted = 0
        self.splits: list[ListSplit] = []
        self.no_more = False
        self.asked = False

    def start(self):
        self.ctx.send_split_request()
        self.asked = True

    def add_splits(self, splits):
        self.splits.extend(splits)
        self.asked = False

    def notify_no_more_splits(self):
        self.no_more = True

    def poll_next(self, output):
        if not self.splits:
            if self.no_more:
                return InputStatus.END_OF_INPUT
            if not self.asked:
                self.ctx.send_split_request()
                self.asked = True
            return InputStatus.NOTHING_AVAILABLE
        if self.hold is not None and self.emitted >= self.hold[0] and not os.listdir(self.hold[1]):
            return InputStatus.NOTHING_AVAILABLE  # idle: barriers go on, a checkpoint commits
        split = self.splits[0]
        batches = self.data[split.index]
        if split.offset < len(batches):
            output.collect(batches[split.offset], split.split_id)
            split.offset += 1
            self.emitted += 1
        if split.offset >= len(batches):
            output.split_finished(split.split_id)
            self.splits.pop(0)
        return InputStatus.MORE_AVAILABLE

    def snapshot_state(self, checkpoint_id):
        return [ListSplit(**s.to_dict()) for s in self.splits]


class ListSource(Source):
    """``data[i]`` is the list of batches of split ``i``; ``hold`` ``(n, folder)``: each
    reader idles after ``n`` batches until ``folder`` holds a file (until the sink committed
    something, however fast the readers and slow the first checkpoint)."""

    split_type = ListSplit

    def __init__(self, data: list[list[ChangeBatch]], hold: tuple[int, str] | None = None):
        self.data = data
        self.hold = hold

    @property
    def bounded(self):
        return True

    def create_enumerator(self, context, state):
        if state is not None:
            return _ListEnumerator(context, [ListSplit.from_dict(d) for d in state["pending"]])
        return _ListEnumerator(context, [ListSplit(f"s{i}", i) for i in range(len(self.data))])

    def create_reader(self, context):
        return _ListReader(context, self.data, self.hold)


def make_batches(splits: int, batches_per_split: int, rows_per_batch: int,
                 with_changes: bool = True) -> list[list[ChangeBatch]]:
    """Deterministic orders batches; with changes, later batches update and delete keys of
    their own split (per-key order lives within one split)."""
    from decimal import Decimal

    out = []
    for s in range(splits):
        batches = []
        for b in range(batches_per_split):
            base = (s * batches_per_split + b) * rows_per_batch
            rows = [(base + i, f"name-{base + i}", Decimal(base + i) / 100) for i in range(rows_per_batch)]
            ops = "c" * rows_per_batch
            if with_changes and b > 0:
                prev = (s * batches_per_split + b - 1) * rows_per_batch
                rows[0] = (prev, f"updated-{prev}", Decimal("1.00"))
                rows[1] = (prev + 1, f"name-{prev + 1}", Decimal(prev + 1) / 100)
                ops = "ud" + "c" * (rows_per_batch - 2)
            batches.append(ChangeBatch(ORDERS, ops, rows=rows, ts_ms=1_700_000_000_000 + base))
        out.append(batches)
    return out


def new_executor(name: str, metrics: PipelineMetrics) -> Executor:
    """The executor ``name`` for one run: ``"local"`` or ``"ray"`` (the session's two-node
    cluster, tests/servers/ray.py)."""
    if name == "local":
        return LocalExecutor(metrics=metrics)
    if name == "ray":
        from runtime.executor.ray.executor import RayExecutor
        from tests.servers.ray import ray_cluster

        return RayExecutor(metrics=metrics, address=ray_cluster().address)
    raise ValueError(f"unknown executor {name!r}")


def run_job(source: Source, sink: Sink, state_dir: str, parallelism: int = 2,
            interval_s: float = 0.0, restore: bool = True, executor: str = "local", **kw: Any):
    storage = CheckpointStorage(state_dir)
    job = Job("conformance", source, sink, storage, parallelism=parallelism,
              checkpoint_interval_s=interval_s, restore=storage.latest() if restore else None, **kw)
    return new_executor(executor, PipelineMetrics(parallelism)).run(job)


def run_with_failures(make_source, make_sink, state_dir: str, aborts: list[Abort],
                      parallelism: int = 2, executor: str = "local", hold: int | None = None
                      ) -> int:
    """Run, failing at each ``Abort`` in turn and restarting from the latest checkpoint, then
    run to the end.  Returns how many failures actually fired.  ``hold`` (a
    :class:`ListSource`'s): in each failing run, its readers wait for the run's first commit
    after ``hold`` batches (an abort fires only after one: readers faster than the first
    checkpoint would leave it nothing to fail)."""
    fired = 0
    for abort in aborts:
        source = make_source()
        if hold is not None:
            source.hold = (hold, os.path.join(abort.folder, "commits"))
        try:
            run_job(source, make_sink(abort), state_dir, parallelism, executor=executor)
        except InjectedFailure:
            fired += 1
    run_job(make_source(), make_sink(None), state_dir, parallelism, executor=executor)
    return fired
