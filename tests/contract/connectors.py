"""Connectors for the executor contract: picklable, and sharing nothing in memory.

A distributed executor ships the source and sink to its workers, so these keep everything that
must outlive a subtask, or be seen by both a writer and the committer, in files under a root
folder: the sink's pending and committed files, and the markers that make an injected fault
fire a given number of times across attempts and processes.
"""
from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass

from runtime.batch import ChangeBatch
from runtime.errors import BadRecordError, TerminalError, TransientError
from runtime.rescale import SupportsWriterStateRescale
from runtime.schema import Column, TableSchema
from runtime.sink import Committer, Sink, SinkWriter
from runtime.source import InputStatus, Source, SourceReader, Split, SplitEnumerator
from runtime.types import T

ITEMS = TableSchema("contract.items", (Column("id", T("BIGINT"), False), Column("v", T("STRING"))),
                    ("id",))


class ContractBug(Exception):
    """An untranslated error (a bug in a connector): not a HubError."""


@dataclass(frozen=True)
class Fault:
    """Fail ``where`` (``reader`` or ``writer``) of subtask ``subtask`` at its
    ``after_batches``-th batch, with a ``kind`` error (``transient``, ``terminal``, ``bug``),
    at most ``times`` times over all attempts (markers in ``marker_dir``); with
    ``after_commit`` (writers only) once the sink committed something of this attempt (so a
    restart has a checkpoint to resume from, and the failures are not "in a row")."""

    marker_dir: str
    where: str = "writer"
    subtask: int = 0
    after_batches: int = 3
    kind: str = "transient"
    times: int = 1
    after_commit: bool = True

    def fired(self) -> int:
        try:
            return len(os.listdir(self.marker_dir))
        except FileNotFoundError:
            return 0

    def check(self, where: str, subtask: int, batches: int, committed_dir: str | None = None,
              attempt: str = "") -> None:
        if where != self.where or subtask != self.subtask or batches < self.after_batches:
            return
        if self.after_commit and committed_dir is not None and not any(
                n.startswith(f"{attempt}-") for n in _listdir(committed_dir)):
            return
        os.makedirs(self.marker_dir, exist_ok=True)
        for i in range(self.times):
            try:  # O_EXCL: one firing per marker, whichever process gets there
                os.close(os.open(os.path.join(self.marker_dir, f"fired-{i}"),
                                 os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                continue
            text = f"injected {self.kind} failure in {where} {subtask} (#{i + 1})"
            if self.kind == "transient":
                raise TransientError(text)
            if self.kind == "terminal":
                raise TerminalError(text)
            raise ContractBug(text)


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


# -- source ----------------------------------------------------------------------------------
@dataclass
class RangeSplit(Split):
    index: int = 0
    #: batches of this split already emitted
    offset: int = 0


def expected_rows(splits: int, batches: int, rows: int) -> Counter:
    """Every row the source emits, once."""
    return Counter((i, f"v{i}") for i in range(splits * batches * rows))


class _Enumerator(SplitEnumerator):
    def __init__(self, ctx, pending: list[RangeSplit], bounded: bool):
        self.ctx, self.pending, self.bounded = ctx, pending, bounded

    def handle_split_request(self, subtask):
        if self.pending:
            self.ctx.assign_splits({subtask: [self.pending.pop(0)]})
        elif self.bounded:
            self.ctx.signal_no_more_splits(subtask)

    def snapshot_state(self, checkpoint_id):
        return {"pending": [s.to_dict() for s in self.pending]}


class _Reader(SourceReader):
    def __init__(self, ctx, source: RangeSource):
        self.ctx, self.source = ctx, source
        self.splits: list[RangeSplit] = []
        self.no_more = self.asked = False
        self.emitted = 0
        self.created = time.time()  # a hold waits for a commit of this attempt (see _held)

    def _held(self) -> bool:
        """Idle after ``hold[0]`` batches until ``hold[1]`` holds a file written since this
        reader was made: a commit of this attempt (a replay of an earlier attempt's files at a
        restart does not count), however slow the executor's first checkpoint."""
        hold = self.source.hold
        if hold is None or self.emitted < hold[0]:
            return False
        for name in _listdir(hold[1]):
            try:
                if os.stat(os.path.join(hold[1], name)).st_mtime >= self.created:
                    return False
            except FileNotFoundError:
                continue
        return True

    def start(self):
        self.ctx.send_split_request()
        self.asked = True

    def add_splits(self, splits):
        self.splits.extend(splits)
        self.asked = False

    def notify_no_more_splits(self):
        self.no_more = True

    def poll_next(self, output):
        src = self.source
        if not self.splits:
            if self.no_more:
                return InputStatus.END_OF_INPUT
            if not self.asked:
                self.ctx.send_split_request()
                self.asked = True
            return InputStatus.NOTHING_AVAILABLE
        if self._held():
            return InputStatus.NOTHING_AVAILABLE  # idle: barriers go on, a checkpoint commits
        split = self.splits[0]
        if src.fault is not None:
            src.fault.check("reader", self.ctx.subtask, self.emitted, None)
        base = (split.index * src.batches + split.offset) * src.rows
        ids = list(range(base, base + src.rows))
        output.collect(ChangeBatch(ITEMS, "c" * len(ids), rows=[(i, f"v{i}") for i in ids],
                                   ts_ms=1_700_000_000_000 + base), split.split_id)
        split.offset += 1
        self.emitted += 1
        if split.offset >= src.batches:
            output.split_finished(split.split_id)
            self.splits.pop(0)
        if src.delay_s:
            self.wait_available(src.delay_s)
        return InputStatus.MORE_AVAILABLE

    def wait_available(self, timeout_s):
        time.sleep(timeout_s)

    def snapshot_state(self, checkpoint_id):
        return [RangeSplit(**s.to_dict()) for s in self.splits]


class RangeSource(Source):
    """``splits`` splits of ``batches`` batches of ``rows`` rows (ids 0, 1, ... once each);
    ``unbounded``: it never ends (its readers idle once everything was read); ``hold``
    ``(n, folder)``: each reader idles after ``n`` batches until ``folder`` holds a file written
    in its attempt (e.g. until the sink committed something of this attempt, however slow the
    executor's first checkpoint)."""

    split_type = RangeSplit

    def __init__(self, splits: int = 4, batches: int = 5, rows: int = 10,
                 unbounded: bool = False, delay_s: float = 0.0, fault: Fault | None = None,
                 hold: tuple[int, str] | None = None):
        self.splits, self.batches, self.rows = splits, batches, rows
        self.unbounded, self.delay_s, self.fault = unbounded, delay_s, fault
        self.hold = hold

    @property
    def bounded(self):
        return not self.unbounded

    def create_enumerator(self, context, state):
        if state is not None:
            pending = [RangeSplit.from_dict(d) for d in state["pending"]]
        else:
            pending = [RangeSplit(f"s{i}", i) for i in range(self.splits)]
        return _Enumerator(context, pending, self.bounded)

    def create_reader(self, context):
        return _Reader(context, self)


# -- sink ------------------------------------------------------------------------------------
class FileStore:
    """The sink's external system: ``pending/`` holds what writers prepared, ``committed/``
    what the committer made visible; one JSON file per writer and checkpoint."""

    def __init__(self, root: str):
        self.root = root
        self.pending = os.path.join(root, "pending")
        self.committed = os.path.join(root, "committed")

    def rows(self) -> Counter:
        out: Counter = Counter()
        for name in _listdir(self.committed):
            with open(os.path.join(self.committed, name)) as f:
                out.update(tuple(r) for r in json.load(f)["rows"])
        return out

    def writer_states(self) -> list[dict]:
        """The state each committed file's writer started from (for rescale tests)."""
        out = []
        for name in sorted(_listdir(self.committed)):
            with open(os.path.join(self.committed, name)) as f:
                out.append(json.load(f)["started_from"])
        return out


class _Writer(SinkWriter):
    def __init__(self, store: FileStore, context, state, fault: Fault | None):
        self.store, self.ctx, self.fault = store, context, fault
        self.state = state or {"rows": 0}
        self.started_from = dict(self.state)
        self.buffer: list[list] = []
        self.batches = 0

    def write(self, batch):
        self.batches += 1
        if self.fault is not None:
            self.fault.check("writer", self.ctx.subtask, self.batches, self.store.committed,
                             self.ctx.attempt)
        self.buffer.extend([list(r) for r in batch.rows()])

    def prepare_commit(self, checkpoint_id):
        if not self.buffer:
            return []  # nothing to commit (and a committed file always holds rows)
        name = f"{self.ctx.attempt}-{self.ctx.subtask}-{checkpoint_id}.json"
        os.makedirs(self.store.pending, exist_ok=True)
        tmp = os.path.join(self.store.pending, f".{name}.tmp")
        with open(tmp, "w") as f:
            json.dump({"rows": self.buffer, "started_from": self.started_from}, f)
        os.replace(tmp, os.path.join(self.store.pending, name))
        self.state = {"rows": self.state["rows"] + len(self.buffer)}
        self.buffer = []
        return [{"file": name}]

    def snapshot_state(self, checkpoint_id):
        return dict(self.state)


class _Committer(Committer):
    def __init__(self, store: FileStore):
        self.store = store

    def commit(self, committables, context):
        os.makedirs(self.store.committed, exist_ok=True)
        for c in committables:
            src = os.path.join(self.store.pending, c["file"])
            dst = os.path.join(self.store.committed, c["file"])
            if os.path.exists(dst):
                continue  # committed before: a replay
            if not os.path.exists(src):
                raise TerminalError(f"pending file {c['file']} is gone: it can't be committed")
            os.replace(src, dst)
        return []

    def recover(self, committables, context):
        self.commit(committables, context)
        for name in _listdir(self.store.pending):  # prepared after the restored checkpoint
            os.remove(os.path.join(self.store.pending, name))
        return []

    def abort(self, committables, context):
        for c in committables:
            try:
                os.remove(os.path.join(self.store.pending, c["file"]))
            except FileNotFoundError:
                pass  # never written or already gone: nothing to release


class FileSink(Sink):
    """Two-phase commit into a :class:`FileStore`; writer state: rows prepared so far."""

    def __init__(self, root: str, fault: Fault | None = None):
        self.root, self.fault = root, fault

    def create_writer(self, context, state):
        return _Writer(FileStore(self.root), context, state, self.fault)

    def create_committer(self):
        return _Committer(FileStore(self.root))


class _SelfCommittingWriter(_Writer):
    """Commits its own prepared files when told their checkpoint is stored, as a writer whose
    transaction only its client can finish does (the Kafka sink's), and logs the runtime's
    notifications to ``events-<attempt>-<subtask>`` in the store."""

    def __init__(self, store: FileStore, context, state, fault: Fault | None):
        super().__init__(store, context, state, fault)
        self.prepared: list[tuple[int, str]] = []

    def prepare_commit(self, checkpoint_id):
        out = super().prepare_commit(checkpoint_id)
        self.prepared += [(checkpoint_id, c["file"]) for c in out]
        return out

    def notify_checkpoint_stored(self, checkpoint_id):
        self._event(f"stored {checkpoint_id}")
        os.makedirs(self.store.committed, exist_ok=True)
        for cid, name in self.prepared:
            if cid <= checkpoint_id:
                os.replace(os.path.join(self.store.pending, name),
                           os.path.join(self.store.committed, name))
        self.prepared = [(cid, name) for cid, name in self.prepared if cid > checkpoint_id]

    def notify_checkpoint_complete(self, checkpoint_id):
        self._event(f"complete {checkpoint_id}")

    def close(self):
        self._event("close")

    def _event(self, what: str) -> None:
        # the root exists only once something was prepared: a writer told of a checkpoint
        # before it prepared any data would find no folder to note it in
        os.makedirs(self.store.root, exist_ok=True)
        with open(os.path.join(self.store.root, f"events-{self.ctx.attempt}-{self.ctx.subtask}"),
                  "a") as f:
            f.write(what + "\n")


class _ConfirmingCommitter(_Committer):
    """Confirms the writers' own commits (waits, bounded, for each file to be committed);
    after a crash, when the writers are gone, commits what they prepared itself."""

    def commit(self, committables, context):
        deadline = time.monotonic() + 10
        for c in committables:
            while not os.path.exists(os.path.join(self.store.committed, c["file"])):
                if time.monotonic() > deadline:
                    raise TransientError(f"{c['file']} was not committed by its writer")
                time.sleep(0.01)
        return []


class SelfCommittingFileSink(FileSink):
    """A :class:`FileSink` whose writers commit on the stored notification."""

    def create_writer(self, context, state):
        return _SelfCommittingWriter(FileStore(self.root), context, state, self.fault)

    def create_committer(self):
        return _ConfirmingCommitter(FileStore(self.root))

    @staticmethod
    def events(root: str) -> dict[str, list[str]]:
        """The notifications each writer got, by ``<attempt>-<subtask>``."""
        out = {}
        for name in sorted(_listdir(root)):
            if name.startswith("events-"):
                with open(os.path.join(root, name)) as f:
                    out[name[len("events-"):]] = f.read().splitlines()
        return out


class RescalingFileSink(FileSink, SupportsWriterStateRescale):
    """A :class:`FileSink` whose writer states follow a change of parallelism: the rows
    counted by all old writers go to the first new one."""

    def rescale_writer_states(self, states, parallelism):
        total = sum((s or {}).get("rows", 0) for s in states)
        return [{"rows": total if i == 0 else 0} for i in range(parallelism)]


class _DeadLetteringCommitter(_Committer):
    def commit(self, committables, context):
        fresh = [c for c in committables
                 if not os.path.exists(os.path.join(self.store.committed, c["file"]))]
        super().commit(committables, context)
        for c in fresh:  # as a store refusing a record at commit: to the job's dead letters
            context.dead_letter.report(BadRecordError(f"refused {c['file']}"), c,
                                       origin="contract")
        return []


class DeadLetteringFileSink(FileSink):
    """A :class:`FileSink` whose committer sends every file it commits to the dead letters it
    gets with the commit (``CommitContext.dead_letter``): the job's, whatever its writers
    did (none of them is created in the committer's process)."""

    def create_committer(self):
        return _DeadLetteringCommitter(FileStore(self.root))
