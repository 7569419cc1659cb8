"""An exception no connector translated ends the job as a bug to report: the report names its
type and where it happened (subtask and operator, or the committer of which checkpoint)."""
from __future__ import annotations

import logging
import threading
import time

import pytest

from runtime.checkpoint.committer_task import CommitterBug
from runtime.checkpoint.storage import CheckpointStorage
from runtime.executor.failure import describe, operator_of, where
from runtime.executor.job import Job
from runtime.executor.local import LocalExecutor
from tests.conformance.harness import (CollectSink, CollectStore, FailingSink, ListSource,
                                       make_batches)


class AdminShutdown(Exception):
    """Stands for a driver's error that escaped untranslated."""


class _BrokenCommitterSink(CollectSink):
    def create_committer(self):
        committer = super().create_committer()

        commit_ok = committer.commit

        def commit(committables, context):
            if context.checkpoint_id == 0:  # the recovery at start
                return commit_ok(committables, context)
            raise AdminShutdown("server closed the connection unexpectedly")

        committer.commit = commit
        return committer


def run(tmp_path, sink, error=AdminShutdown):
    job = Job("p", ListSource(make_batches(1, 2, 5)), sink, CheckpointStorage(str(tmp_path)),
              parallelism=1, checkpoint_interval_s=60)
    with pytest.raises(error) as info:
        LocalExecutor(job).run()
    return info.value


def test_a_writer_error_names_the_subtask_and_operator(tmp_path):
    sink = FailingSink(CollectStore(),
                       AdminShutdown("terminating connection due to administrator command"))
    exc = run(tmp_path, sink)
    op = operator_of(sink)  # the package of the sink's module
    assert where(exc) == f"sink-0 ({op} writer)"
    assert describe(exc) == (f"in sink-0 ({op} writer): {AdminShutdown.__module__}."
                             "AdminShutdown: terminating connection due to administrator command")


def test_a_committer_error_names_the_committer_and_checkpoint(tmp_path):
    # the committer task reports plain data: the error's type and message as text
    exc = run(tmp_path, _BrokenCommitterSink(CollectStore()), CommitterBug)
    assert where(exc) == "the committer (tests.conformance) committing checkpoint 1"
    assert str(exc) == (f"{AdminShutdown.__module__}.AdminShutdown: server closed the "
                        "connection unexpectedly")


class _TwoFailuresSink(CollectSink):
    """Writer 0 fails; writer 1 fails a moment later (as a writer whose connection the
    cancel closed would)."""

    def __init__(self, store):
        super().__init__(store)
        self.first = threading.Event()

    def create_writer(self, context, state):
        if context.subtask == 0:
            self.first.set()
            raise AdminShutdown("the first failure")
        self.first.wait(5)
        time.sleep(0.2)
        raise ConnectionResetError("the second failure")


def test_an_error_after_the_cancel_is_logged_not_dropped(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="hub.runtime")
    job = Job("p", ListSource(make_batches(2, 2, 5)), _TwoFailuresSink(CollectStore()),
              CheckpointStorage(str(tmp_path)), parallelism=2, checkpoint_interval_s=60)
    with pytest.raises(AdminShutdown):
        LocalExecutor(job).run()
    assert "ConnectionResetError: the second failure after the job was cancelled" in caplog.text
