"""The restart strategy (runtime/executor/restart.py): what it counts, when it waits, what it
says to requests between attempts."""
from __future__ import annotations

import threading
import time

import pytest

from runtime.checkpoint.storage import CheckpointStorage
from runtime.errors import HubError, TransientError
from runtime.executor.base import NOT_RUNNING
from runtime.executor.job import Job
from runtime.executor.local import LocalExecutor
from runtime.executor.restart import RestartStrategy
from runtime.metrics import PipelineMetrics
from runtime.retry import Backoff
from tests.contract.connectors import Fault, FileSink, FileStore, RangeSource, expected_rows


def job_of(tmp_path, source, sink, interval_s=0.05):
    return Job("restart", source, sink, CheckpointStorage(str(tmp_path / "state")),
               parallelism=2, checkpoint_interval_s=interval_s)


def strategy_of(tmp_path, backoff, lines):
    return RestartStrategy(lambda metrics: LocalExecutor(metrics=metrics), backoff,
                           CheckpointStorage(str(tmp_path / "state")), PipelineMetrics(2),
                           notify=lines.append)


def test_a_completed_checkpoint_resets_the_count(tmp_path):
    """Three failures with one restart allowed: each attempt completes a checkpoint before it
    fails, so the failures are not in a row and the job finishes."""
    store = FileStore(str(tmp_path / "sink"))
    fault = Fault(str(tmp_path / "faults"), subtask=0, after_batches=4, times=3)
    lines: list[str] = []
    result = strategy_of(tmp_path, Backoff(0.0, 0.0, 1), lines).run(
        job_of(tmp_path, RangeSource(4, 40, 5, delay_s=0.01), FileSink(store.root, fault)))
    assert result.status == "finished" and fault.fired() == 3
    assert all("(attempt 1 of 1)" in line for line in lines) and len(lines) == 3
    assert store.rows() == expected_rows(4, 40, 5)


def test_the_waits_grow_as_the_backoff_says(tmp_path):
    fault = Fault(str(tmp_path / "faults"), subtask=0, after_batches=1, times=3,
                  after_commit=False)
    lines: list[str] = []
    with pytest.raises(HubError, match="gave up after 2 restarts"):
        strategy_of(tmp_path, Backoff(0.01, 0.015, 2), lines).run(
            job_of(tmp_path, RangeSource(2, 5, 5), FileSink(str(tmp_path / "sink"), fault),
                   interval_s=3600))
    assert [line.split(" in ")[-1] for line in lines] == ["0.0s (attempt 1 of 2)",
                                                         "0.0s (attempt 2 of 2)"]
    assert "restarting from the latest checkpoint" in lines[0]


def test_a_stop_during_the_wait_ends_the_run_stopped(tmp_path):
    fault = Fault(str(tmp_path / "faults"), subtask=0, after_batches=1, after_commit=False)
    lines: list[str] = []
    s = strategy_of(tmp_path, Backoff(30.0, 30.0, 3), lines)
    answers: list[tuple[str, bool]] = []

    def during_the_wait():
        while not lines:
            time.sleep(0.01)
        s.request_savepoint("sp", lambda text, ok: answers.append((text, ok)))
        s.request_stop()

    threading.Thread(target=during_the_wait, daemon=True).start()
    started = time.monotonic()
    result = s.run(job_of(tmp_path, RangeSource(2, 5, 5), FileSink(str(tmp_path / "sink"),
                                                                    fault), interval_s=3600))
    assert result.status == "stopped" and time.monotonic() - started < 10
    assert answers == [(NOT_RUNNING, False)]


def test_a_stop_goes_to_the_attempt_running(tmp_path):
    lines: list[str] = []
    s = strategy_of(tmp_path, Backoff(0.0, 0.0, 3), lines)
    threading.Timer(0.4, s.request_stop, ("last",)).start()
    result = s.run(job_of(tmp_path, RangeSource(2, 1000, 5, unbounded=True, delay_s=0.01),
                          FileSink(str(tmp_path / "sink"))))
    assert result.status == "stopped" and result.savepoint_path and lines == []


def test_an_error_building_the_job_is_retried_when_transient(tmp_path):
    """Building the job (connectors made and checked) is part of an attempt."""
    lines: list[str] = []
    s = strategy_of(tmp_path, Backoff(0.0, 0.0, 3), lines)
    calls = []

    def build(restore):
        calls.append(restore)
        if len(calls) < 3:
            raise TransientError("connection refused")
        return job_of(tmp_path, RangeSource(1, 1, 1), FileSink(str(tmp_path / "sink")))

    assert s.run_built(build, None).status == "finished"
    assert len(calls) == 3 and len(lines) == 2
