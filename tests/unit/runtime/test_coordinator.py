import pytest

from runtime.checkpoint.coordinator import CheckpointCoordinator
from runtime.checkpoint.storage import CheckpointStorage
from runtime.errors import TerminalError, TransientError
from runtime.metrics import PipelineMetrics
from runtime.sink import Committer


class RecordingCommitter(Committer):
    def __init__(self, storage, not_yet=(), fail_times=0, error=TransientError):
        self.storage = storage
        self.calls = []
        self.not_yet = set(not_yet)
        self.fail_times = fail_times
        self.error = error

    def commit(self, committables, context):
        # the checkpoint must already be durable when commit is called
        assert context.checkpoint_id in self.storage.completed_ids()
        if self.fail_times:
            self.fail_times -= 1
            raise self.error("store unavailable")
        self.calls.append((context.checkpoint_id, [c["id"] for c in committables], context.watermark_ms))
        return [c for c in committables if c["id"] in self.not_yet]


def make(tmp_path, **kw):
    storage = CheckpointStorage(str(tmp_path))
    storage.ensure()
    committer = RecordingCommitter(storage, **kw)
    coord = CheckpointCoordinator("p", storage, committer, num_sources=2, num_sinks=2,
                                  interval_s=0, timeout_s=60, metrics=PipelineMetrics(2))
    return coord, committer, storage


def test_completes_only_after_every_ack(tmp_path):
    coord, committer, storage = make(tmp_path)
    cp = coord.trigger({"enum": 1})
    assert not coord.ack_source(0, cp.checkpoint_id, [{"split_id": "a"}])
    assert not coord.ack_sink(0, cp.checkpoint_id, [{"id": "f0"}], None, 100)
    assert not coord.ack_source(1, cp.checkpoint_id, [])
    assert storage.latest() is None and committer.calls == []
    assert coord.ack_sink(1, cp.checkpoint_id, [{"id": "f1"}], {"w": 1}, 50)
    data = storage.latest().data
    assert data["source"]["readers"] == [[{"split_id": "a"}], []]
    assert data["sink"]["writers"] == [None, {"w": 1}]
    assert data["watermark_ms"] == 50
    assert committer.calls == [(1, ["f0", "f1"], 50)]


def test_not_yet_committables_are_carried_into_next_checkpoint(tmp_path):
    coord, committer, storage = make(tmp_path, not_yet={"partition"})
    for cid, extra in ((1, [{"id": "partition"}]), (2, [])):
        cp = coord.trigger({})
        for i in range(2):
            coord.ack_source(i, cp.checkpoint_id, [])
        coord.ack_sink(0, cp.checkpoint_id, [{"id": f"file{cid}"}] + extra, None, None)
        coord.ack_sink(1, cp.checkpoint_id, [], None, None)
    assert committer.calls[1][1] == ["partition", "file2"]
    assert [c["id"] for c in storage.latest().data["sink"]["committables"]] == ["partition", "file2"]


def test_aborted_checkpoint_keeps_prepared_committables(tmp_path):
    coord, committer, _ = make(tmp_path)
    coord.timeout_s = 0
    cp = coord.trigger({})
    coord.ack_sink(0, cp.checkpoint_id, [{"id": "early"}], None, None)
    coord.check_timeout()
    assert coord.pending is None
    coord.ack_sink(1, cp.checkpoint_id, [{"id": "late"}], None, None)  # late ack of aborted cp
    coord.timeout_s = 60
    cp2 = coord.trigger({})
    for i in range(2):
        coord.ack_source(i, cp2.checkpoint_id, [])
        coord.ack_sink(i, cp2.checkpoint_id, [], None, None)
    assert sorted(committer.calls[0][1]) == ["early", "late"]


def test_transient_commit_errors_are_retried(tmp_path, monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)
    coord, committer, _ = make(tmp_path, fail_times=2)
    cp = coord.trigger({})
    for i in range(2):
        coord.ack_source(i, cp.checkpoint_id, [])
        coord.ack_sink(i, cp.checkpoint_id, [{"id": f"f{i}"}], None, None)
    assert committer.calls == [(1, ["f0", "f1"], None)]


def test_terminal_commit_error_propagates_with_checkpoint_stored(tmp_path):
    coord, committer, storage = make(tmp_path, fail_times=1, error=TerminalError)
    cp = coord.trigger({})
    for i in range(2):
        coord.ack_source(i, cp.checkpoint_id, [])
    coord.ack_sink(0, cp.checkpoint_id, [], None, None)
    with pytest.raises(TerminalError):
        coord.ack_sink(1, cp.checkpoint_id, [], None, None)
    # durable before commit: a restart will commit it again
    assert storage.latest().checkpoint_id == 1


def test_one_checkpoint_at_a_time(tmp_path):
    coord, _, _ = make(tmp_path)
    coord.trigger({})
    assert not coord.due()
    with pytest.raises(Exception):
        coord.trigger({})


def test_job_id_is_new_at_a_fresh_start_stored_and_kept_by_a_restore(tmp_path):
    coord, committer, storage = make(tmp_path)
    seen = []
    committer.commit = lambda committables, context: seen.append(context.job_id) or []
    cp = coord.trigger({})
    for i in range(2):
        coord.ack_source(i, cp.checkpoint_id, [])
        coord.ack_sink(i, cp.checkpoint_id, [{"id": i}], None, None)
    job_id = storage.latest().data["job_id"]
    assert len(job_id) == 32 and seen == [job_id]
    other = CheckpointCoordinator("p", storage, committer, 2, 2, 0, 60, PipelineMetrics(2))
    assert other.job_id != job_id
    restored = CheckpointCoordinator("p", storage, committer, 2, 2, 0, 60, PipelineMetrics(2),
                                     job_id=job_id)
    restored.commit([{"id": 0}], 1, None, recover=True)
    assert seen == [job_id, job_id]
