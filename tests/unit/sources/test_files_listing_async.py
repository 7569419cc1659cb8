"""The files source lists its files off the control thread (``call_async``): checkpoints go on
while a slow listing runs, and a bounded source does not end before the listing is in."""
from __future__ import annotations

import threading
import time
from pathlib import Path

from runtime.checkpoint.storage import CheckpointStorage
from runtime.executor.job import Job
from runtime.executor.local import LocalExecutor
from sources.files import enumerator
from tests.conformance.harness import CollectSink, CollectStore
from tests.unit.sources.test_files_source import _source, _write


def test_a_slow_listing_runs_off_the_control_thread(tmp_path: Path, monkeypatch) -> None:
    for i in range(3):
        _write(tmp_path / "in" / f"f{i}.csv", "csv", range(i * 10, i * 10 + 10))
    threads: list[str] = []
    slow = enumerator.list_files

    def list_files(pattern: str) -> list[str]:
        threads.append(threading.current_thread().name)
        time.sleep(1.0)
        return slow(pattern)

    monkeypatch.setattr(enumerator, "list_files", list_files)
    store = CollectStore()
    job = Job("files", _source(path=str(tmp_path / "in"), format="csv", table="db.t"),
              CollectSink(store), CheckpointStorage(str(tmp_path / "state")), parallelism=2,
              checkpoint_interval_s=0.05)
    executor = LocalExecutor(job)
    result = executor.run()
    assert result.status == "finished"
    assert threads == ["enumerator-io_0"]
    assert executor.metrics.checkpoints_completed >= 5  # during the second the listing took
    assert sorted(r[2] for r in store.rows()) == list(range(30))  # no reader ended early


class _Deferring:
    """An enumerator context whose ``call_async`` keeps the call for the test to finish."""

    parallelism = 1

    def __init__(self) -> None:
        self.calls: list = []
        self.assigned: list = []
        self.no_more: list[int] = []

    def call_async(self, fn, handler) -> None:
        self.calls.append((fn, handler))

    def assign_splits(self, assignment) -> None:
        self.assigned += [s for ss in assignment.values() for s in ss]

    def signal_no_more_splits(self, subtask: int) -> None:
        self.no_more.append(subtask)

    def schedule(self, fn, interval_s) -> None:
        pass


def test_a_checkpoint_during_the_first_listing_lists_again_at_the_restore(tmp_path: Path) -> None:
    _write(tmp_path / "in" / "a.csv", "csv", range(5))
    source = _source(path=str(tmp_path / "in"), format="csv", table="db.t")
    ctx = _Deferring()
    e = source.create_enumerator(ctx, None)
    e.start()
    e.handle_split_request(0)  # before the listing is in: waits, is not told "no more"
    assert ctx.no_more == [] and ctx.assigned == []
    state = e.snapshot_state(1)
    assert state["listed"] is False and state["discovered"] == []
    restored_ctx = _Deferring()
    restored = source.create_enumerator(restored_ctx, state)
    restored.start()
    assert len(restored_ctx.calls) == 1  # a bounded restore lists again: nothing is lost
    fn, handler = ctx.calls[0]
    handler(fn(), None)  # the listing's result, in the control thread
    assert [s.split_id for s in ctx.assigned] == [str((tmp_path / "in" / "a.csv").resolve())]
    e.handle_split_request(0)
    assert ctx.no_more == [0]
