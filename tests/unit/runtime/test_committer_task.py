"""The committer task: commits run off the control thread, in checkpoint order, with
per-committable outcomes and the one retry policy; writers hear of done commits."""
from __future__ import annotations

import queue
import threading
import time

import pytest

from runtime.checkpoint.committer_task import (CheckpointCommitted, CommitCheckpoint,
                                               CommitFailed, CommitterTask)
from runtime.checkpoint.coordinator import CheckpointCoordinator
from runtime.checkpoint.storage import CheckpointStorage
from runtime.errors import TerminalError, TransientError
from runtime.executor.job import Job
from runtime.executor.local import LocalExecutor
from runtime.metrics import PipelineMetrics
from runtime.retry import Backoff
from runtime.sink import CommitOutcome, Committer, Sink, SinkWriter
from tests.conformance.harness import ListSource, make_batches
from tests.unit.runtime.ticking import UnboundedOneSplit


class GatedCommitter(Committer):
    """Commit of checkpoint ``slow`` waits for ``gate`` (a slow store); records the order."""

    def __init__(self, slow: int | None = None):
        self.slow, self.gate = slow, threading.Event()
        self.commits: list[tuple[int, list]] = []
        self.recovered: list[list] = []

    def commit(self, committables, context):
        if context.checkpoint_id == self.slow:
            assert self.gate.wait(10), "never released"
        self.commits.append((context.checkpoint_id, sorted(c["id"] for c in committables)))
        return []

    def recover(self, committables, context):
        self.recovered.append(sorted(c["id"] for c in committables))
        return []


def complete(coord, cid, ids):
    coord.ack_source(0, cid, [])
    return coord.ack_sink(0, cid, [{"id": i} for i in ids], None, None)


def test_a_slow_commit_does_not_delay_the_next_checkpoint(tmp_path):
    storage = CheckpointStorage(str(tmp_path))
    storage.ensure()
    committer = GatedCommitter(slow=1)
    coord = CheckpointCoordinator("p", storage, committer, 1, 1, interval_s=0, timeout_s=60,
                                  metrics=PipelineMetrics(1))
    reports: queue.Queue = queue.Queue()
    coord.start_committer(reports)
    try:
        assert complete(coord, coord.trigger({}).checkpoint_id, ["a1"])
        assert coord.due()  # checkpoint 1 commits meanwhile: the next one may start
        started = time.monotonic()
        assert complete(coord, coord.trigger({}).checkpoint_id, ["a2"])
        assert time.monotonic() - started < 1.0
        # checkpoint 2 completed while 1 commits: it holds 1's committables too, so that a
        # restart from it commits them
        assert sorted(c["id"] for c in storage.latest().data["sink"]["committables"]) == \
            ["a1", "a2"]
        assert committer.commits == [] and reports.empty()
        assert not coord.due()  # two commits in flight: no third checkpoint on the interval
        committer.gate.set()
        got = [coord.commit_reported(reports.get(timeout=5)) for _ in range(2)]
        assert got == [1, 2] and coord.last_committed == 2  # in checkpoint order
        assert committer.commits == [(1, ["a1"]), (2, ["a2"])]
        assert coord.committing == {} and coord.due()
    finally:
        committer.gate.set()
        assert coord.stop_committer(failed=False, wait_s=5)


def test_a_committer_can_have_the_next_checkpoint_wait_for_its_commit(tmp_path):
    """JDBC: its writers' next transactions need the commit anyway (and would run into each
    other's locks if they all began the moment it is done with the barrier right behind)."""
    storage = CheckpointStorage(str(tmp_path))
    storage.ensure()
    committer = GatedCommitter(slow=1)
    committer.max_commits_in_flight = 1
    coord = CheckpointCoordinator("p", storage, committer, 1, 1, interval_s=0, timeout_s=60,
                                  metrics=PipelineMetrics(1))
    reports: queue.Queue = queue.Queue()
    coord.start_committer(reports)
    try:
        assert complete(coord, coord.trigger({}).checkpoint_id, ["a1"])
        assert not coord.due()  # checkpoint 1 commits: no trigger on the interval meanwhile
        committer.gate.set()
        assert coord.commit_reported(reports.get(timeout=5)) == 1
        assert coord.due()
    finally:
        committer.gate.set()
        assert coord.stop_committer(failed=False, wait_s=5)


class FlakyCommitter(Committer):
    """Commits one by one; ``flaky`` fails with a transient error its first ``times`` tries."""

    def __init__(self, flaky: str, times: int, error=TransientError):
        self.flaky, self.times, self.error = flaky, times, error
        self.calls: list[list[str]] = []

    def commit(self, committables, context):
        raise AssertionError("commit_each is the one the task calls")

    def commit_each(self, committables, context):
        self.calls.append([c["id"] for c in committables])
        outcomes = []
        for c in committables:
            if c["id"] == self.flaky and self.times:
                self.times -= 1
                outcomes.append(CommitOutcome.failure(c, self.error(f"{c['id']}: lock wait")))
            elif c["id"] == "partition":
                outcomes.append(CommitOutcome.not_yet(c))
            else:
                outcomes.append(CommitOutcome.done(c))
        return outcomes


def _task(committer):
    return CommitterTask(committer, "p", "", "job", Backoff(0.01, 0.05, retries=4))


def test_a_commit_that_fails_on_one_committable_retries_only_that_one():
    committer = FlakyCommitter("b", times=2)
    report = _task(committer).process(CommitCheckpoint(
        3, [{"id": "a"}, {"id": "b"}, {"id": "c"}, {"id": "partition"}], None))
    assert committer.calls == [["a", "b", "c", "partition"], ["b"], ["b"]]
    assert isinstance(report, CheckpointCommitted) and report.checkpoint_id == 3
    assert report.not_yet == [{"id": "partition"}]  # kept for the next checkpoint
    assert report.outcomes == {"done": 3, "retry later": 1}


def test_retries_used_up_or_a_failed_committable_fail_the_commit():
    committer = FlakyCommitter("b", times=99)
    report = _task(committer).process(CommitCheckpoint(3, [{"id": "a"}, {"id": "b"}], None))
    assert len(committer.calls) == 5 and committer.calls[1:] == [["b"]] * 4
    assert isinstance(report, CommitFailed) and report.transient
    assert "committing checkpoint 3 failed after 4 retries: 1 of 2 committables not " \
           "committed: b: lock wait" in report.error
    committer = FlakyCommitter("b", times=1, error=TerminalError)
    report = _task(committer).process(CommitCheckpoint(3, [{"id": "a"}, {"id": "b"}], None))
    assert committer.calls == [["a", "b"]]  # never retried
    assert isinstance(report, CommitFailed) and not report.transient
    with pytest.raises(TerminalError, match="b: lock wait"):
        raise report.exception()


def test_a_whole_checkpoint_committer_keeps_working_through_the_default():
    class Whole(Committer):
        def __init__(self):
            self.calls, self.fail = [], 1

        def commit(self, committables, context):
            self.calls.append([c["id"] for c in committables])
            if self.fail:
                self.fail -= 1
                raise TransientError("store unavailable")
            return [c for c in committables if c["id"] == "partition"]

    committer = Whole()
    report = _task(committer).process(CommitCheckpoint(1, [{"id": "a"}, {"id": "partition"}],
                                                       None))
    assert committer.calls == [["a", "partition"]] * 2  # as a whole, as it was
    assert report.not_yet == [{"id": "partition"}]


# -- in the executor ----------------------------------------------------------------------------
class _NotifiedWriter(SinkWriter):
    def __init__(self, seen):
        self.seen = seen

    def write(self, batch):
        pass

    def prepare_commit(self, checkpoint_id):
        return [{"id": f"w-{checkpoint_id}"}]

    def notify_checkpoint_complete(self, checkpoint_id):
        self.seen.append(checkpoint_id)


class _Sink(Sink):
    def __init__(self, committer):
        self.committer, self.notified = committer, []

    def create_writer(self, context, state):
        return _NotifiedWriter(self.notified)

    def create_committer(self):
        return self.committer


def test_checkpoints_go_on_while_a_commit_runs_and_writers_hear_of_done_commits(tmp_path):
    committer = GatedCommitter(slow=1)
    storage = CheckpointStorage(str(tmp_path))
    sink = _Sink(committer)
    job = Job("p", UnboundedOneSplit(), sink, storage, parallelism=1, checkpoint_interval_s=0.05)
    executor = LocalExecutor(job)

    def release_once_checkpoint_2_is_stored():
        deadline = time.monotonic() + 5
        while 2 not in storage.completed_ids() and time.monotonic() < deadline:
            time.sleep(0.01)
        seen_while_committing.append(storage.completed_ids())
        committer.gate.set()
        time.sleep(0.3)
        executor.request_stop()

    seen_while_committing: list = []
    helper = threading.Thread(target=release_once_checkpoint_2_is_stored)
    helper.start()
    try:
        result = executor.run()
    finally:
        committer.gate.set()
        helper.join()
    assert 2 in seen_while_committing[0]  # stored while checkpoint 1 was still committing
    assert committer.commits[-1][0] == result.last_checkpoint
    ids = [cid for cid, _ in committer.commits]
    assert ids == sorted(ids) and ids[0] == 1
    assert sink.notified and sink.notified == sorted(sink.notified)


class _FailingFinal(GatedCommitter):
    def commit(self, committables, context):
        if context.checkpoint_id == 1:
            raise TerminalError("store refused checkpoint 1")
        return super().commit(committables, context)


def test_a_failed_commit_of_the_final_checkpoint_fails_the_job(tmp_path):
    job = Job("p", ListSource(make_batches(1, 2, 5)), _Sink(_FailingFinal()),
              CheckpointStorage(str(tmp_path)), parallelism=1, checkpoint_interval_s=60)
    with pytest.raises(TerminalError, match="store refused checkpoint 1"):
        LocalExecutor(job).run()


class _FailingWriter(_NotifiedWriter):
    def __init__(self, seen, fail):
        super().__init__(seen)
        self.fail = fail

    def write(self, batch):
        if self.fail.is_set():
            raise TerminalError("disk on fire")


def test_a_failure_while_a_commit_runs_leaves_it_to_the_restart(tmp_path, monkeypatch):
    monkeypatch.setattr("runtime.executor.local.FAILED_JOIN_S", 0.5)
    committer = GatedCommitter(slow=1)
    storage = CheckpointStorage(str(tmp_path))
    fail = threading.Event()
    sink = _Sink(committer)
    sink.create_writer = lambda context, state: _FailingWriter(sink.notified, fail)
    job = Job("p", UnboundedOneSplit(), sink, storage, parallelism=1, checkpoint_interval_s=0.05)

    def fail_once_checkpoint_2_is_stored():
        deadline = time.monotonic() + 5
        while 2 not in storage.completed_ids() and time.monotonic() < deadline:
            time.sleep(0.01)
        fail.set()

    helper = threading.Thread(target=fail_once_checkpoint_2_is_stored)
    helper.start()
    try:
        with pytest.raises(TerminalError, match="disk on fire"):
            LocalExecutor(job).run()
    finally:
        helper.join()
        committer.gate.set()
    # checkpoint 1's commit hung when the job failed: the latest checkpoint holds its
    # committables, and the restart commits them before any writer starts
    latest = storage.latest()
    held = sorted(c["id"] for c in latest.data["sink"]["committables"])
    assert "w-1" in held
    restarted = GatedCommitter()
    job = Job("p", UnboundedOneSplit(), _Sink(restarted), storage, parallelism=1,
              checkpoint_interval_s=60, restore=latest)
    executor = LocalExecutor(job)
    executor.request_stop()
    executor.run()
    assert restarted.recovered == [held]
