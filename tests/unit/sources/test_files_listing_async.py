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
