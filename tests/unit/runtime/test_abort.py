"""Checkpoints that will never complete: what they prepared is released at once
(Committer.abort), whoever waits for them is told, and a final checkpoint that never completes
does not hold the stop."""
from __future__ import annotations

import threading
import time

import pytest

from runtime.checkpoint.coordinator import CheckpointCoordinator, CheckpointsFailed
from runtime.checkpoint.storage import CheckpointStorage
from runtime.executor.job import Job
from runtime.executor.local import FinalCheckpointTimeout, LocalExecutor
from runtime.metrics import PipelineMetrics
from runtime.sink import Committer, Sink, SinkWriter
from runtime.batch import ChangeBatch
from runtime.source import InputStatus, Source, SourceReader, Split, SplitEnumerator
from tests.conformance.harness import ORDERS, ListSource, make_batches


class AbortRecordingCommitter(Committer):
    """Records commit and abort calls: (checkpoint id, committable ids)."""

    def __init__(self):
        self.commits: list[tuple[int, list[str]]] = []
        self.aborts: list[tuple[int, list[str]]] = []

    def commit(self, committables, context):
        self.commits.append((context.checkpoint_id, sorted(c["id"] for c in committables)))
        return []

    def abort(self, committables, context):
        self.aborts.append((context.checkpoint_id, sorted(c["id"] for c in committables)))


def make(tmp_path, timeout_s=60.0, tolerable_failures=3):
    storage = CheckpointStorage(str(tmp_path))
    storage.ensure()
    committer = AbortRecordingCommitter()
    coord = CheckpointCoordinator("p", storage, committer, num_sources=1, num_sinks=2,
                                  interval_s=0, timeout_s=timeout_s, metrics=PipelineMetrics(2),
                                  tolerable_failures=tolerable_failures)
    return coord, committer, storage


def complete(coord, cid, ids):
    coord.ack_source(0, cid, [])
    coord.ack_sink(0, cid, [{"id": ids[0]}], None, None)
    return coord.ack_sink(1, cid, [{"id": ids[1]}], None, None)


def test_storage_failure_aborts_what_the_checkpoint_prepared(tmp_path, monkeypatch):
    coord, committer, storage = make(tmp_path, tolerable_failures=0)
    assert complete(coord, coord.trigger({}).checkpoint_id, ["a1", "b1"])

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage, "store", full)
    cp = coord.trigger({})
    with pytest.raises(CheckpointsFailed, match="tolerable-failures = 0\\): checkpoint 2: "
                                                "can't store it"):
        complete(coord, cp.checkpoint_id, ["a2", "b2"])
    # the stored checkpoint 1 is committed, never aborted; checkpoint 2 is released at once
    assert committer.commits == [(1, ["a1", "b1"])]
    assert committer.aborts == [(2, ["a2", "b2"])]


def test_storage_failure_after_the_checkpoint_became_durable_aborts_nothing(tmp_path,
                                                                            monkeypatch):
    coord, committer, storage = make(tmp_path, tolerable_failures=0)
    store = storage.store

    def stored_then_failed(*args, **kwargs):
        store(*args, **kwargs)
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(storage, "store", stored_then_failed)
    with pytest.raises(CheckpointsFailed):
        complete(coord, coord.trigger({}).checkpoint_id, ["a1", "b1"])
    assert committer.aborts == []  # the restart commits them: aborting would lose them


def test_a_timed_out_checkpoint_is_carried_and_a_timed_out_final_one_aborted(tmp_path):
    coord, committer, _ = make(tmp_path, timeout_s=0.01)
    cp = coord.trigger({})
    coord.ack_sink(0, cp.checkpoint_id, [{"id": "a1"}], None, None)
    time.sleep(0.02)
    assert coord.check_timeout() is False  # carried into the next checkpoint: not aborted
    assert committer.aborts == [] and [c["id"] for c in coord.carried] == ["a1"]
    coord.ack_sink(1, cp.checkpoint_id, [{"id": "b1"}], None, None)  # late ack
    final = coord.trigger({}, final=True)
    coord.ack_sink(0, final.checkpoint_id, [{"id": "a2"}], None, None)
    time.sleep(0.02)
    assert coord.check_timeout() is True  # the final one has no next one: released, stop
    assert committer.aborts == [(1, ["a1", "b1"]), (2, ["a2"])]
    assert coord.pending is None and coord.carried == [] and committer.commits == []


def test_an_abort_that_fails_is_logged_and_the_stop_goes_on(tmp_path, caplog):
    coord, committer, _ = make(tmp_path, timeout_s=0.01)

    def broken(committables, context):
        raise RuntimeError("connection refused")

    committer.abort = broken
    final = coord.trigger({}, final=True)
    coord.ack_sink(0, final.checkpoint_id, [{"id": "a1"}], None, None)
    time.sleep(0.02)
    assert coord.check_timeout() is True
    assert "releasing what it prepared failed (RuntimeError: connection refused)" in caplog.text


def test_a_savepoint_that_times_out_is_answered(tmp_path):
    coord, _, _ = make(tmp_path, timeout_s=0.01)
    answers = []
    cp = coord.trigger({}, savepoint="sp")
    cp.on_abort.append(answers.append)
    time.sleep(0.02)
    coord.check_timeout()
    assert answers == ["checkpoint 1 timed out after 0.01s waiting for sink subtasks 0, 1 (sink) "
                       "and source subtask 0 (source)"]


# -- the executor ----------------------------------------------------------------------------
class _Writer(SinkWriter):
    def __init__(self, subtask, block):
        self.subtask, self.block = subtask, block

    def write(self, batch):
        pass

    def prepare_commit(self, checkpoint_id):
        if self.subtask == 1:
            self.block.wait()  # a writer stuck on a lock
        return [{"id": f"w{self.subtask}-{checkpoint_id}"}]


class _BlockingSink(Sink):
    def __init__(self, committer):
        self.committer, self.block = committer, threading.Event()

    def create_writer(self, context, state):
        return _Writer(context.subtask, self.block)

    def create_committer(self):
        return self.committer


@pytest.fixture(autouse=True)
def _short_grace(monkeypatch):
    # blocked subtasks are left behind after this grace (daemon threads)
    monkeypatch.setattr("runtime.executor.local.FAILED_JOIN_S", 0.3)


def test_a_final_checkpoint_that_never_completes_does_not_hold_the_stop(tmp_path):
    committer = AbortRecordingCommitter()
    sink = _BlockingSink(committer)
    storage = CheckpointStorage(str(tmp_path))
    job = Job("p", ListSource(make_batches(2, 2, 5)), sink, storage, parallelism=2,
              checkpoint_interval_s=60, checkpoint_timeout_s=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(FinalCheckpointTimeout,
                           match="final checkpoint 1 did not complete within 0.5s"):
            LocalExecutor(job).run()
        assert time.monotonic() - started < 0.5 + 0.3 + 3  # timeout, the subtasks' grace
        # what the other writer prepared for it is released now, not at the next start
        assert committer.aborts == [(1, ["w0-1"])]
        assert storage.latest() is None
    finally:
        sink.block.set()


def test_savepoint_requests_are_answered_when_the_job_fails(tmp_path):
    committer = AbortRecordingCommitter()
    sink = _BlockingSink(committer)
    job = Job("p", ListSource(make_batches(2, 2, 5)), sink, CheckpointStorage(str(tmp_path)),
              parallelism=2, checkpoint_interval_s=60, checkpoint_timeout_s=0.5)
    executor = LocalExecutor(job)
    answers = []
    executor.request_savepoint("sp", lambda text, ok: answers.append((ok, text)))
    try:
        with pytest.raises(FinalCheckpointTimeout):
            executor.run()
    finally:
        sink.block.set()
    assert len(answers) == 1 and answers[0][0] is False
    assert answers[0][1].startswith(("checkpoint 1 timed out", "the job ended"))


class _Enumerator(SplitEnumerator):
    def __init__(self, ctx):
        self.ctx = ctx

    def handle_split_request(self, subtask):
        self.ctx.assign_splits({subtask: [Split(f"s{subtask}")]})

    def snapshot_state(self, checkpoint_id):
        return {}


class _EndlessReader(SourceReader):
    def __init__(self):
        self.splits, self.t = [], 0

    def start(self):
        pass

    def add_splits(self, splits):
        self.splits.extend(splits)

    def poll_next(self, output):
        self.t += 1
        output.collect(ChangeBatch(ORDERS, "c", rows=[(self.t, "x", None)], ts_ms=self.t),
                       "s")
        time.sleep(0.005)
        return InputStatus.MORE_AVAILABLE

    def snapshot_state(self, checkpoint_id):
        return list(self.splits)


class _Endless(Source):
    def create_enumerator(self, context, state):
        return _Enumerator(context)

    def create_reader(self, context):
        reader = _EndlessReader()
        context.send_split_request()
        return reader


def test_a_stop_takes_at_most_the_checkpoint_timeout_even_with_a_checkpoint_in_flight(tmp_path):
    """The stop comes while a regular checkpoint is stuck: the stop as a whole gets
    checkpoint.timeout (before, the stuck checkpoint's timeout and then the final one's)."""
    committer = AbortRecordingCommitter()
    sink = _BlockingSink(committer)
    job = Job("p", _Endless(), sink, CheckpointStorage(str(tmp_path)),
              parallelism=2, checkpoint_interval_s=0.05, checkpoint_timeout_s=2.0)
    executor = LocalExecutor(job)
    stop = threading.Timer(0.3, executor.request_stop)
    stop.start()
    started = time.monotonic()
    try:
        with pytest.raises(FinalCheckpointTimeout, match="within 2s of the stop"):
            executor.run()
        assert time.monotonic() - started < 0.3 + 2.0 + 0.3 + 1.0  # not 2 x 2s
    finally:
        stop.cancel()
        sink.block.set()
