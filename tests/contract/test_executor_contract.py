"""The contract every executor keeps (runtime/executor/base.py), parametrised by executor.

A second executor (Ray actors, issue 17) joins by adding its factory to ``EXECUTORS``: a
function of the run's metrics that returns a fresh :class:`~runtime.executor.base.Executor`.
The connectors (tests/contract/connectors.py) share nothing in memory: writers and the
committer meet only in files, faults count their firings in files, so the suite holds for an
executor that runs subtasks in other processes.  ``local-serialized`` is the local executor
pickling every message and giving each subtask its own copy of the source and sink, as a
distributed executor would.
"""
from __future__ import annotations

import importlib.util
import json
import os
import pickle
import threading
import time
from collections.abc import Callable

import pytest

from runtime.checkpoint.storage import CheckpointStorage, load_checkpoint
from runtime.deadletter import DeadLetterQueue
from runtime.errors import ConfigError, HubError, TerminalError, TransientError
from runtime.executor import messages as m
from runtime.executor.base import Executor
from runtime.executor.failure import ErrorRecord, describe, where
from runtime.executor.job import Job
from runtime.executor.local import LocalExecutor
from runtime.executor.restart import RestartStrategy
from runtime.metrics import PipelineMetrics
from runtime.retry import Backoff
from tests.contract.connectors import (ContractBug, DeadLetteringFileSink, Fault, FileSink,
                                       FileStore, RangeSource, RescalingFileSink,
                                       SelfCommittingFileSink, expected_rows)

ExecutorFactory = Callable[[PipelineMetrics], Executor]

EXECUTORS: dict[str, ExecutorFactory] = {
    "local": lambda metrics: LocalExecutor(metrics=metrics),
    "local-serialized": lambda metrics: LocalExecutor(metrics=metrics, serialize=True),
}
if importlib.util.find_spec("ray") is not None:
    # the Ray executor on a throwaway two-node cluster (tests/servers/ray.py), when installed
    from runtime.executor.ray.executor import RayExecutor
    from tests.servers.ray import ray_cluster

    EXECUTORS["ray"] = lambda metrics: RayExecutor(metrics=metrics, address=ray_cluster().address)

OPERATOR = "tests.contract"  # the package of the contract connectors, as errors name it


@pytest.fixture(params=[pytest.param(name, marks=pytest.mark.ray) if name == "ray" else name
                        for name in sorted(EXECUTORS)])
def new_executor(request) -> ExecutorFactory:
    return EXECUTORS[request.param]


@pytest.fixture(autouse=True)
def _short_grace(monkeypatch):
    monkeypatch.setattr("runtime.executor.local.FAILED_JOIN_S", 0.5)


def job_of(tmp_path, source, sink, parallelism=2, interval_s=0.05, restore=None, **kw) -> Job:
    return Job("contract", source, sink, CheckpointStorage(str(tmp_path / "state")),
               parallelism=parallelism, checkpoint_interval_s=interval_s, restore=restore,
               checkpoint_timeout_s=kw.pop("checkpoint_timeout_s", 30.0), **kw)


def run(new_executor, job: Job):
    return new_executor(PipelineMetrics(job.parallelism)).run(job)


def stop_later(executor: Executor, after_s: float, savepoint: str | None = None):
    """Stop ``after_s`` after the first row reached a sink (subtasks start in milliseconds as
    threads, in seconds as Ray actors: the stop must come in the middle of the data)."""
    def stop():
        deadline = time.monotonic() + 60
        while not any(out for _, out in executor.metrics.totals().values()) \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(after_s)
        executor.request_stop(savepoint)
    timer = threading.Thread(target=stop, daemon=True)
    timer.start()
    return timer


# -- a bounded job ---------------------------------------------------------------------------
def test_a_bounded_job_finishes_with_a_final_checkpoint(tmp_path, new_executor):
    store = FileStore(str(tmp_path / "sink"))
    job = job_of(tmp_path, RangeSource(4, 5, 10), FileSink(store.root), interval_s=3600)
    result = run(new_executor, job)
    assert result.status == "finished"
    latest = job.storage.latest()
    assert latest.data["final"] is True and result.last_checkpoint == latest.checkpoint_id
    assert store.rows() == expected_rows(4, 5, 10)


def test_writers_hear_stored_before_complete_and_the_final_checkpoint_before_closing(
        tmp_path, new_executor):
    """A writer that commits its own transactions (on the stored notification; its committer
    only confirms) gets every checkpoint it prepared for told stored before complete, and the
    final one's too before it is closed: else the last rows are never committed."""
    store = FileStore(str(tmp_path / "sink"))
    job = job_of(tmp_path, RangeSource(4, 5, 10, delay_s=0.01),
                 SelfCommittingFileSink(store.root), interval_s=0.05)
    result = run(new_executor, job)
    assert result.status == "finished"
    assert store.rows() == expected_rows(4, 5, 10)
    events = SelfCommittingFileSink.events(store.root)
    assert len(events) == 2  # one writer per subtask, one attempt
    final = f"{result.last_checkpoint}"
    for seen in events.values():
        assert seen[-2:] == [f"complete {final}", "close"], seen
        stored = [int(e.split()[1]) for e in seen if e.startswith("stored")]
        complete = [int(e.split()[1]) for e in seen if e.startswith("complete")]
        assert stored == sorted(stored) and complete == sorted(complete)
        assert stored[-1] == result.last_checkpoint
        for cid in complete:  # a commit is done only after its checkpoint was stored
            before = seen[:seen.index(f"complete {cid}")]
            assert any(e.startswith("stored") and int(e.split()[1]) >= cid
                       for e in before), seen


# -- stop, savepoints ------------------------------------------------------------------------
def test_stop_with_savepoint_and_resume_from_it_exactly_once(tmp_path, new_executor):
    store = FileStore(str(tmp_path / "sink"))
    # 40 ms a batch: the stop comes mid-way on Ray too, whose driver sees the first rows only
    # at its next pull of the job master's counters (every 0.25 s)
    source = RangeSource(4, 40, 5, unbounded=True, delay_s=0.04)
    job = job_of(tmp_path, source, FileSink(store.root))
    executor = new_executor(PipelineMetrics(2))
    timer = stop_later(executor, 0.6, "sp-1")
    result = executor.run(job)
    timer.join()
    assert result.status == "stopped" and result.savepoint_path
    savepoint = load_checkpoint(result.savepoint_path)
    assert savepoint.data["savepoint"] == "sp-1" and savepoint.data["final"] is True
    before = store.rows()
    assert 0 < sum(before.values()) < 4 * 40 * 5  # stopped mid-way
    # the rest, from the savepoint, with the source bounded now: every row once
    rest = job_of(tmp_path, RangeSource(4, 40, 5), FileSink(store.root), restore=savepoint)
    assert run(new_executor, rest).status == "finished"
    assert store.rows() == expected_rows(4, 40, 5)


def test_a_savepoint_is_answered_with_its_folder(tmp_path, new_executor):
    store = FileStore(str(tmp_path / "sink"))
    job = job_of(tmp_path, RangeSource(2, 1000, 5, unbounded=True, delay_s=0.01),
                 FileSink(store.root))
    executor = new_executor(PipelineMetrics(2))
    answers: list[tuple[str, bool]] = []
    answered = threading.Event()

    def reply(text, ok):
        answers.append((text, ok))
        answered.set()

    def ask():
        executor.request_savepoint("mid", reply)
        answered.wait(10)
        executor.request_stop()

    threading.Timer(0.3, ask).start()
    result = executor.run(job)
    assert result.status == "stopped" and result.savepoint_path is None
    assert len(answers) == 1 and answers[0][1] is True
    assert load_checkpoint(answers[0][0]).data["savepoint"] == "mid"


def test_a_savepoint_asked_for_after_the_end_is_refused(tmp_path, new_executor):
    job = job_of(tmp_path, RangeSource(1, 1, 1), FileSink(str(tmp_path / "sink")))
    executor = new_executor(PipelineMetrics(2))
    executor.run(job)
    answers = []
    executor.request_savepoint("late", lambda text, ok: answers.append((text, ok)))
    assert answers and answers[0][1] is False


# -- failures --------------------------------------------------------------------------------
@pytest.mark.parametrize("side,kind,error", [
    ("writer", "terminal", TerminalError),
    ("writer", "transient", TransientError),
    ("reader", "bug", ContractBug),
])
def test_a_failing_subtask_fails_the_job_naming_it(tmp_path, new_executor, side, kind, error):
    fault = Fault(str(tmp_path / "faults"), where=side, subtask=1, after_batches=2, kind=kind,
                  after_commit=False)
    source = RangeSource(4, 20, 5, delay_s=0.005, fault=fault if side == "reader" else None)
    sink = FileSink(str(tmp_path / "sink"), fault if side == "writer" else None)
    with pytest.raises(error) as info:
        run(new_executor, job_of(tmp_path, source, sink))
    exc = info.value
    assert type(exc) is error  # the class itself, not a stand-in
    assert where(exc) == f"{'sink' if side == 'writer' else 'source'}-1 ({OPERATOR} {side})"
    assert f"injected {kind} failure in {side} 1" in str(exc)
    if isinstance(exc, HubError):
        assert exc.transient is (kind == "transient")
    else:  # a bug: the one line names its type and place
        assert describe(exc).startswith(f"in source-1 ({OPERATOR} reader): "
                                        f"{ContractBug.__module__}.ContractBug: injected")
    alive = [t.name for t in threading.enumerate() if t.name.startswith(("source-", "sink-"))]
    deadline = time.monotonic() + 2
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [t.name for t in threading.enumerate()
                 if t.name.startswith(("source-", "sink-"))]
    assert alive == []


def test_restore_from_a_checkpoint_continues_exactly_once(tmp_path, new_executor):
    store = FileStore(str(tmp_path / "sink"))
    fault = Fault(str(tmp_path / "faults"), subtask=0, after_batches=8)
    storage = CheckpointStorage(str(tmp_path / "state"))
    with pytest.raises(TransientError):
        # the readers wait for a first commit before the writer's 8th batch, where it fails
        run(new_executor, job_of(tmp_path, RangeSource(4, 10, 5, delay_s=0.005,
                                                       hold=(3, store.committed)),
                                 FileSink(store.root, fault)))
    assert fault.fired() == 1
    latest = storage.latest()
    assert latest is not None and not latest.data["final"]
    partial = store.rows()
    assert 0 < sum(partial.values()) < 4 * 10 * 5
    result = run(new_executor, job_of(tmp_path, RangeSource(4, 10, 5), FileSink(store.root),
                                      restore=latest))
    assert result.status == "finished"
    assert store.rows() == expected_rows(4, 10, 5)


# -- the restart strategy on top of the executor ---------------------------------------------
def strategy(tmp_path, new_executor, retries=3) -> RestartStrategy:
    lines: list[str] = []
    s = RestartStrategy(new_executor, Backoff(0.0, 0.0, retries), CheckpointStorage(
        str(tmp_path / "state")), PipelineMetrics(2), notify=lines.append)
    s.lines = lines  # type: ignore[attr-defined]
    return s


def test_transient_errors_restart_from_the_checkpoint_exactly_once(tmp_path, new_executor):
    store = FileStore(str(tmp_path / "sink"))
    fault = Fault(str(tmp_path / "faults"), subtask=1, after_batches=4, times=2)
    s = strategy(tmp_path, new_executor)
    # each attempt's readers wait for a commit of that attempt, so the writer meets data
    # after one in both (on Ray they used to finish first: the second failure never fired)
    result = s.run(job_of(tmp_path, RangeSource(4, 30, 5, delay_s=0.005,
                                                hold=(3, store.committed)),
                          FileSink(store.root, fault)))
    assert result.status == "finished"
    assert fault.fired() == 2 and len(s.lines) == 2
    assert "restarting from the latest checkpoint in 0.0s (attempt 1 of 3)" in s.lines[0]
    assert store.rows() == expected_rows(4, 30, 5)


def test_terminal_errors_do_not_restart(tmp_path, new_executor):
    fault = Fault(str(tmp_path / "faults"), subtask=0, after_batches=2, kind="terminal",
                  times=5, after_commit=False)
    s = strategy(tmp_path, new_executor)
    with pytest.raises(TerminalError):
        s.run(job_of(tmp_path, RangeSource(2, 10, 5, delay_s=0.003),
                     FileSink(str(tmp_path / "sink"), fault)))
    assert fault.fired() == 1 and s.lines == []


def test_transient_errors_give_up_after_the_retries(tmp_path, new_executor):
    fault = Fault(str(tmp_path / "faults"), subtask=0, after_batches=1, times=10,
                  after_commit=False)
    s = strategy(tmp_path, new_executor, retries=2)
    with pytest.raises(HubError, match="gave up after 2 restarts"):  # no checkpoint between
        s.run(job_of(tmp_path, RangeSource(2, 10, 5, delay_s=0.003),
                     FileSink(str(tmp_path / "sink"), fault), interval_s=3600))
    assert fault.fired() == 3


# -- a change of parallelism -----------------------------------------------------------------
def _checkpoint_at_parallelism_2(tmp_path, new_executor, sink):
    """A checkpoint of 2 writers with state, taken mid-way (a transient failure ends it)."""
    fault = Fault(str(tmp_path / "faults"), subtask=0, after_batches=6)
    sink.fault = fault
    committed = FileStore(str(tmp_path / "sink")).committed  # both callers' sink
    with pytest.raises(TransientError):
        run(new_executor, job_of(tmp_path, RangeSource(4, 10, 5, delay_s=0.005,
                                                       hold=(3, committed)), sink))
    sink.fault = None
    return CheckpointStorage(str(tmp_path / "state")).latest()


def test_writer_state_a_sink_cannot_rescale_is_refused_in_one_line(tmp_path, new_executor):
    store = FileStore(str(tmp_path / "sink"))
    latest = _checkpoint_at_parallelism_2(tmp_path, new_executor, FileSink(store.root))
    with pytest.raises(ConfigError) as info:
        run(new_executor, job_of(tmp_path, RangeSource(4, 10, 5), FileSink(store.root),
                                 parallelism=3, restore=latest))
    text = str(info.value)
    assert "\n" not in text
    assert (f"checkpoint {latest.checkpoint_id} holds the state of 2 writers of the "
            f"{OPERATOR} sink, which can't redistribute it to 3") in text
    assert "resume with parallelism 2" in text and "--fresh" in text


def test_writer_state_is_rescaled_by_a_sink_that_says_how(tmp_path, new_executor):
    store = FileStore(str(tmp_path / "sink"))
    latest = _checkpoint_at_parallelism_2(tmp_path, new_executor, RescalingFileSink(store.root))
    counted = sum(s["rows"] for s in latest.data["sink"]["writers"])
    assert counted > 0
    result = run(new_executor, job_of(tmp_path, RangeSource(4, 10, 5),
                                      RescalingFileSink(store.root), parallelism=3,
                                      restore=latest))
    assert result.status == "finished"
    assert store.rows() == expected_rows(4, 10, 5)  # reader splits redistributed too
    started = [s["rows"] for s in store.writer_states()]
    assert counted in started  # the rows of both old writers went to one new writer


# -- runtime services reach the committer from the job ----------------------------------------
def test_the_committer_gets_the_jobs_dead_letter_queue_with_each_commit(tmp_path, new_executor):
    """Records the store refuses at commit go to the job's dead letters: the committer gets
    them from the runtime (``CommitContext.dead_letter``), not from a writer through the
    sink object."""
    store = FileStore(str(tmp_path / "sink"))
    dlq = DeadLetterQueue("all", str(tmp_path / "dead"), "contract")
    job = job_of(tmp_path, RangeSource(4, 5, 10), DeadLetteringFileSink(store.root),
                 dead_letter=dlq)
    assert run(new_executor, job).status == "finished"
    with open(dlq.file) as f:
        refused = sorted(json.loads(line)["record"]["file"] for line in f)
    assert refused and refused == sorted(os.listdir(store.committed))


# -- plain data across the boundary ----------------------------------------------------------
def _samples() -> list:
    failed = m.TaskFailed("sink-1 (sinks.jdbc writer)", TransientError("connection reset"))
    return [
        m.ReaderRegistered(0), m.SplitRequest(1), m.ReaderEvent(0, {"binlog": {"pos": 4}}),
        m.SourceAck(0, 3, [{"split_id": "s0", "index": 0, "offset": 2}]),
        m.SinkAck(1, 3, [{"file": "a.json"}], {"rows": 5}, 1_700_000_000_000, False),
        m.SourceFinished(1), failed, m.SavepointRequest("sp", True, "id-1"),
        m.AddSplits([{"split_id": "s1", "index": 1, "offset": 0}]), m.NoMoreSplits(),
        m.SourceEvent({"x": 1}), m.TriggerCheckpoint(4, "sp", True), m.CheckpointComplete(4),
        m.CheckpointStored(4), m.Cancel(),
    ]


def test_every_crossing_message_survives_a_pickle_round_trip():
    samples = _samples()
    assert {type(s) for s in samples} == set(m.CROSSING)
    for msg in samples:
        assert pickle.loads(pickle.dumps(msg)) == msg


def test_an_error_crosses_as_a_record_and_comes_back_as_its_class():
    class_of = {}
    for exc in (TransientError("lost"), TerminalError("bad"), ContractBug("oops"),
                ConfigError("no such table", key="sink.table"), ValueError("x")):
        record = pickle.loads(pickle.dumps(m.TaskFailed("sink-0 (op writer)", exc).error))
        assert isinstance(record, ErrorRecord)
        back = record.rebuild()
        class_of[type(exc)] = type(back)
        assert str(back) == str(exc) and where(back) == "sink-0 (op writer)"
        assert getattr(back, "transient", False) is getattr(exc, "transient", False)
        assert "Traceback" not in str(back) and back.__cause__ is not None  # remote traceback
    assert all(k is v for k, v in class_of.items())
    assert ErrorRecord.of(ConfigError("no such table", key="sink.table")).rebuild().key \
        == "sink.table"


def test_an_error_of_a_class_unknown_here_keeps_its_kind_and_name():
    record = ErrorRecord("elsewhere.errors.Gone", "server gone", transient=True,
                         where="sink-0 (elsewhere writer)", hub_base="TransientError")
    back = record.rebuild()
    assert isinstance(back, TransientError) and back.transient
    assert describe(back) == "in sink-0 (elsewhere writer): elsewhere.errors.Gone: server gone"
    bug = ErrorRecord("elsewhere.Bug", "boom").rebuild()
    assert not isinstance(bug, HubError)
    assert describe(bug) == "elsewhere.Bug: boom"


def test_stream_elements_survive_a_pickle_round_trip():
    """What flows between a source subtask and its sink subtask may cross processes too."""
    from runtime.batch import ChangeBatch
    from runtime.elements import END_OF_INPUT, Barrier, Watermark
    from runtime.schema import SchemaChange
    from tests.contract.connectors import ITEMS

    assert pickle.loads(pickle.dumps(END_OF_INPUT)) is END_OF_INPUT  # compared with ``is``
    for el in (Barrier(3, "sp", True), Watermark(5), Watermark(0, idle=True)):
        assert pickle.loads(pickle.dumps(el)) == el
    change = SchemaChange("create_table", ITEMS.table, ITEMS)
    assert pickle.loads(pickle.dumps(change)).to_dict() == change.to_dict()
    batch = ChangeBatch(ITEMS, "cu", rows=[(1, "a"), (2, "b")], ts_ms=[5, 6])
    back = pickle.loads(pickle.dumps(batch))
    assert (back.ops, back.rows(), back.ts_ms_list(), back.schema) == \
        (batch.ops, batch.rows(), batch.ts_ms_list(), batch.schema)
