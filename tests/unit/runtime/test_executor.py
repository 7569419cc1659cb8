"""The local executor with small in-test sources and sinks."""
from __future__ import annotations

import threading
import time

import pytest

from runtime.checkpoint.storage import CheckpointStorage
from runtime.errors import TerminalError
from runtime.executor.job import Job
from runtime.executor.local import LocalExecutor
from runtime.sink import Committer, Sink, SinkWriter
from runtime.source import Split
from runtime.watermark import WatermarkStrategy
from tests.conformance.harness import (CollectSink, CollectStore, FailingSink, ListSource,
                                       make_batches)
from tests.unit.runtime.ticking import UnboundedOneSplit, OneSplitEnumerator


class WatermarkSink(Sink):
    def __init__(self):
        self.watermarks = []

    def create_writer(self, context, state):
        class W(SinkWriter):
            def write(self, batch):
                pass

            def prepare_commit(self, checkpoint_id):
                return []

        return W()

    def create_committer(self):
        outer = self

        class C(Committer):
            def commit(self, committables, context):
                outer.watermarks.append(context.watermark_ms)
                return []

        return C()


def test_subtask_without_splits_goes_idle_and_does_not_stop_event_time(tmp_path):
    sink = WatermarkSink()
    job = Job("idle", UnboundedOneSplit(), sink, CheckpointStorage(str(tmp_path)), parallelism=2,
              checkpoint_interval_s=0.05, watermarks=WatermarkStrategy(0, idle_timeout_s=0.2))
    ex = LocalExecutor(job)
    threading.Timer(1.0, ex.request_stop).start()
    result = ex.run()
    assert result.status == "stopped"
    assert sink.watermarks[0] is None  # before the idle timeout the empty reader holds back
    assert isinstance(sink.watermarks[-1], int) and sink.watermarks[-1] > 0


def test_a_failing_subtask_stops_the_job_with_its_error(tmp_path):
    job = Job("fail", ListSource(make_batches(2, 3, 10)),
              FailingSink(CollectStore(), ValueError("disk on fire")),
              CheckpointStorage(str(tmp_path)), parallelism=2, checkpoint_interval_s=0.05)
    with pytest.raises(ValueError, match="disk on fire"):
        LocalExecutor(job).run()
    alive = [t.name for t in threading.enumerate() if t.name.startswith(("source-", "sink-"))]
    assert alive == []


def test_bounded_job_finishes_with_a_final_checkpoint(tmp_path):
    store = CollectStore()
    storage = CheckpointStorage(str(tmp_path))
    job = Job("bounded", ListSource(make_batches(3, 2, 10)), CollectSink(store), storage,
              parallelism=2, checkpoint_interval_s=3600)
    result = LocalExecutor(job).run()
    assert result.status == "finished"
    assert storage.latest().data["final"] is True
    assert sum(store.rows().values()) == 60
    assert storage.latest().data["watermark_ms"] == 2**63 - 1  # ended: all event time passed


class BrokenEnumeratorSource(ListSource):
    def create_enumerator(self, context, state):
        enumerator = super().create_enumerator(context, state)

        def start():
            raise ValueError("table shop.t has no primary key")

        enumerator.start = start
        return enumerator


def test_an_error_before_subtasks_start_is_the_error_reported(tmp_path):
    job = Job("early", BrokenEnumeratorSource(make_batches(1, 1, 1)), CollectSink(CollectStore()),
              CheckpointStorage(str(tmp_path)), parallelism=2)
    with pytest.raises(ValueError, match="no primary key"):
        LocalExecutor(job).run()


class _SlowIoEnumerator(OneSplitEnumerator):
    """Finding the split takes blocking I/O (a slow metadata call): through call_async."""

    def __init__(self, ctx, given, io_s, threads, found):
        super().__init__(ctx, given)
        self.io_s, self.threads, self.found, self.waiting = io_s, threads, found, []

    def handle_split_request(self, subtask):
        if self.given:
            return
        self.waiting.append(subtask)
        if len(self.waiting) == 1:
            def lookup():
                self.threads.append(threading.current_thread().name)
                time.sleep(self.io_s)
                return Split("only")

            self.ctx.call_async(lookup, self._found)

    def _found(self, split, error):
        if error is not None:
            raise error
        self.threads.append(threading.current_thread().name)
        self.found()
        self.given = True
        self.ctx.assign_splits({self.waiting[0]: [split]})


class SlowIoSource(UnboundedOneSplit):
    def __init__(self, io_s):
        self.io_s, self.threads, self.found = io_s, [], lambda: None

    def create_enumerator(self, context, state):
        return _SlowIoEnumerator(context, bool(state and state["given"]), self.io_s, self.threads,
                                 self.found)


def test_enumerator_io_runs_off_the_control_thread_and_checkpoints_go_on(tmp_path):
    """A slow call_async must not hold checkpoints back: they complete while it runs, and its
    result reaches the enumerator in the control thread."""
    source = SlowIoSource(io_s=1.0)
    job = Job("async", source, WatermarkSink(), CheckpointStorage(str(tmp_path)),
              checkpoint_interval_s=0.05)
    ex = LocalExecutor(job)
    before_split = []
    source.found = lambda: before_split.append(ex.metrics.checkpoints_completed)
    threading.Timer(1.6, ex.request_stop).start()
    ex.run()
    assert source.threads[0].startswith("enumerator-io")
    assert source.threads[1] == threading.current_thread().name  # the handler: control thread
    assert before_split[0] >= 3  # checkpoints completed during the second the lookup took
    assert ex.metrics.checkpoints_completed > before_split[0]


def test_serialized_subtasks_get_their_own_copies(tmp_path):
    """With serialize=True each subtask gets its own copy of the source and sink, as a
    distributed executor's would: a sink that can't be shipped (here: the in-memory reference
    sink, whose writers and committer share a dict and a lock) fails in one line, before it
    works by accident in one process.  That is what the executor contract suite relies on."""
    store = CollectStore()
    job = Job("copies", ListSource(make_batches(3, 2, 10)), CollectSink(store),
              CheckpointStorage(str(tmp_path)), parallelism=2, checkpoint_interval_s=3600)
    with pytest.raises(TerminalError, match=r"the tests.conformance sink can't be sent to its "
                                            r"subtasks: TypeError: cannot pickle"):
        LocalExecutor(job, serialize=True).run()


def test_a_restore_at_another_parallelism_drops_no_writer_state(tmp_path):
    """Before: writer states were replaced by None when the count differed."""
    from runtime.errors import ConfigError
    from runtime.rescale import writer_states_for

    assert writer_states_for(CollectSink(CollectStore()), [None, None], 3) == [None] * 3
    assert writer_states_for(CollectSink(CollectStore()), [{"a": 1}, None], 2) == [{"a": 1}, None]
    with pytest.raises(ConfigError, match=r"checkpoint 4 holds the state of 2 writers of the "
                                          r"collect sink, which can't redistribute it to 3"):
        writer_states_for(CollectSink(CollectStore()), [{"a": 1}, None], 3, 4, "collect")
