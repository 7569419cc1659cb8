"""WalCommitter's generic part: segments streamed run by run, applied concurrently (one
applier per thread), each deleted once applied, the first error the commit's."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import runtime.wal as wal
from runtime.batch import ChangeBatch
from runtime.errors import TransientError
from runtime.schema import Column, TableSchema
from runtime.sink import CommitContext
from runtime.types import T
from runtime.wal import WalCommitter, WriteAheadLog, segment_runs

A = TableSchema("db.a", (Column("id", T("BIGINT"), False), Column("v", T("STRING"))), ("id",))
B = TableSchema("db.b", (Column("k", T("STRING"), False),), ("k",))


def segment(tmp_path, name, *batches):
    return WriteAheadLog(str(tmp_path / "wal")).write_segment(name, batches)["segment"]


def rows_batch(lo, hi, version=1):
    ids = range(lo, hi)
    return ChangeBatch(A, "c" * (hi - lo), rows=[(i, f"v{i}") for i in ids],
                       versions=np.full(hi - lo, version, dtype=np.int64))


class Recorder(WalCommitter[list]):
    """Applies into a list per applier; ``hook(path, run_no)`` runs before each run."""

    sink_name = "test"

    def __init__(self, threads, hook=None):
        super().__init__(threads)
        self.hook = hook or (lambda path, i: None)
        self.applied: list[tuple[str, str, int]] = []  # (thread, path, rows)
        self.lock = threading.Lock()

    def new_applier(self):
        return []

    def close_applier(self, applier):
        applier.clear()

    def apply_segment(self, applier, path, context, stop):
        self.stop = stop  # one event per commit, shared by its segments
        for i, run in enumerate(segment_runs(path, stop=stop)):
            self.hook(path, i)
            applier.append(run)
            with self.lock:
                self.applied.append((threading.current_thread().name, path, len(run)))


CTX = CommitContext("p", 1, None)


def test_segment_runs_streams_runs_of_about_max_rows_per_table_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(wal, "RUN_ROWS", 250)
    batches = [rows_batch(i, i + 100) for i in range(0, 1000, 100)]
    batches.insert(3, ChangeBatch(B, "c", rows=[("x",)], versions=[1]))
    seg = segment(tmp_path, "s", *batches)
    got = list(segment_runs(seg))
    ids = [r[0] for run in got if run.table == "db.a" for r in run.rows()]
    assert ids == list(range(1000))  # per table in write order
    assert [len(run) for run in got if run.table == "db.a"] == [300, 300, 300, 100]
    assert [run.table for run in got].count("db.b") == 1


def test_segments_are_applied_at_the_same_time_and_each_deleted_once_applied(tmp_path):
    both = threading.Barrier(2, timeout=10)  # passes only while two segments are applied
    segs = [segment(tmp_path, f"s{i}", rows_batch(i * 10, i * 10 + 10)) for i in range(2)]
    committer = Recorder(2, hook=lambda path, i: both.wait())
    committer.commit([{"segment": s, "rows": 10} for s in segs], CTX)
    assert len({thread for thread, _, _ in committer.applied}) == 2
    assert sorted(path for _, path, _ in committer.applied) == sorted(segs)
    assert not any(WriteAheadLog.exists(s) for s in segs)
    assert len(committer.appliers) == 2  # one per thread, kept for the next commit
    committer.close()


def test_one_thread_applies_them_one_after_the_other(tmp_path):
    segs = [segment(tmp_path, f"s{i}", rows_batch(i * 10, i * 10 + 10)) for i in range(3)]
    committer = Recorder(1)
    committer.commit([{"segment": s} for s in segs], CTX)
    assert [path for _, path, _ in committer.applied] == segs
    assert len(committer.appliers) == 1


def test_a_failure_is_the_one_error_of_the_commit_and_stops_the_others(tmp_path, monkeypatch):
    monkeypatch.setattr(wal, "RUN_ROWS", 10)
    bad = segment(tmp_path, "bad", rows_batch(0, 10))
    good = segment(tmp_path, "good", *[rows_batch(i, i + 10) for i in range(100, 300, 10)])
    failed = threading.Event()

    def hook(path, i):
        if path == bad:
            failed.set()
            raise TransientError("test: node down")
        if i == 1:
            assert failed.wait(10)
            deadline = time.monotonic() + 10
            while not committer.stop.is_set():  # set once the failing thread's call ended
                assert time.monotonic() < deadline, "the failure did not set stop"
                time.sleep(0.005)

    committer = Recorder(2, hook)
    committables = [{"segment": good}, {"segment": bad}]
    with pytest.raises(TransientError, match="^test: node down$"):
        committer.commit(committables, CTX)
    # the other segment stopped at its next run, and neither is deleted: the commit is
    # retried as a whole
    # (no run at all when the good segment's thread starts after the failure)
    good_runs = [n for _, path, n in committer.applied if path == good]
    assert len(good_runs) <= 2 and set(good_runs) <= {10}, good_runs
    assert WriteAheadLog.exists(bad) and WriteAheadLog.exists(good)
    committer.hook = lambda path, i: None
    committer.commit(committables, CTX)
    assert not WriteAheadLog.exists(bad) and not WriteAheadLog.exists(good)
    committer.close()


def test_later_errors_are_logged(tmp_path, caplog):
    segs = [segment(tmp_path, f"s{i}", rows_batch(0, 5)) for i in range(2)]
    both = threading.Barrier(2, timeout=10)

    def hook(path, i):
        both.wait()
        raise TransientError(f"test: {path[-2:]} failed")

    with pytest.raises(TransientError, match="^test: s[01] failed$"):
        Recorder(2, hook).commit([{"segment": s} for s in segs], CTX)
    assert any("failed too: test: s" in r.getMessage() for r in caplog.records)
