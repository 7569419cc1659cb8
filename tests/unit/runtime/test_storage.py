import json
import os

import pytest

from runtime.checkpoint.storage import CheckpointStorage, load_checkpoint
from runtime.errors import CheckpointError, CheckpointUnreachableError


def test_store_latest_and_retention(tmp_path):
    st = CheckpointStorage(str(tmp_path), retain=2)
    st.ensure()
    for i in range(1, 5):
        st.store(i, {"checkpoint_id": i, "x": i})
    assert st.completed_ids() == [3, 4]
    assert st.latest().data["x"] == 4


def test_incomplete_checkpoint_is_ignored(tmp_path):
    st = CheckpointStorage(str(tmp_path))
    st.ensure()
    st.store(1, {"checkpoint_id": 1})
    os.makedirs(os.path.join(st.checkpoints_dir, "chk-000002"))  # died before _metadata
    with open(os.path.join(st.checkpoints_dir, "chk-000002", "_metadata.tmp-1"), "w") as f:
        f.write("{")
    assert st.latest().checkpoint_id == 1


def test_savepoint_is_kept_and_loadable(tmp_path):
    st = CheckpointStorage(str(tmp_path), retain=1)
    st.ensure()
    path = st.store(7, {"checkpoint_id": 7}, savepoint="before-upgrade")
    for i in range(8, 12):
        st.store(i, {"checkpoint_id": i})
    assert load_checkpoint(path).checkpoint_id == 7


def test_garbage_metadata_is_a_clear_error(tmp_path):
    d = tmp_path / "sp"
    d.mkdir()
    (d / "_metadata").write_text("not json")
    with pytest.raises(CheckpointError, match="unreadable checkpoint"):
        load_checkpoint(str(d))
    with pytest.raises(CheckpointError, match="no checkpoint there"):
        load_checkpoint(str(tmp_path / "missing"))


def test_unreachable_storage_is_transient():
    """A checkpoint on an HDFS that can't be reached now (nothing listens on the port) is a
    transient error the restart loop retries, not a damaged checkpoint."""
    from tests.servers.common import free_port

    with pytest.raises(CheckpointUnreachableError,
                       match="can.t read the checkpoint now: .*NameNode at .* can.t be reached "
                             r"\(connection refused\)") as e:
        load_checkpoint(f"hdfs://127.0.0.1:{free_port()}/state/checkpoints/chk-000001")
    assert e.value.transient


def test_clear_keeps_savepoints(tmp_path):
    st = CheckpointStorage(str(tmp_path))
    st.ensure()
    st.store(1, {"checkpoint_id": 1})
    st.store(2, {"checkpoint_id": 2}, savepoint="keep")
    st.clear()
    assert st.latest() is None
    assert json.loads((tmp_path / "savepoints" / "keep" / "_metadata").read_text())["checkpoint_id"] == 2


def _undeletable(st, monkeypatch, error=None):
    def rmtree(path):  # the local filesystem ignores errors: the folder just stays
        if error is not None:
            raise error

    monkeypatch.setattr(st.fs, "rmtree", rmtree)


def test_pruning_that_fails_is_said(tmp_path, monkeypatch, caplog):
    st = CheckpointStorage(str(tmp_path), retain=1)
    st.ensure()
    st.store(1, {"checkpoint_id": 1})
    _undeletable(st, monkeypatch)
    st.store(2, {"checkpoint_id": 2})
    assert "could not delete the old checkpoint" in caplog.text and "chk-000001" in caplog.text
    caplog.clear()
    _undeletable(st, monkeypatch, OSError(13, "Permission denied"))
    st.store(3, {"checkpoint_id": 3})
    assert "(Permission denied); the next checkpoint tries again" in caplog.text


def test_fresh_that_cannot_delete_a_checkpoint_is_an_error(tmp_path, monkeypatch):
    st = CheckpointStorage(str(tmp_path))
    st.ensure()
    st.store(5, {"checkpoint_id": 5})
    _undeletable(st, monkeypatch)
    with pytest.raises(CheckpointError, match=r"--fresh: can't delete .*checkpoints"):
        st.clear()
    monkeypatch.undo()
    st.clear()
    assert st.latest() is None
