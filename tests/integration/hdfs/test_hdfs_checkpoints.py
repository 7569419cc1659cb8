"""Checkpoint storage on HDFS: the same contract as in a local folder."""
from __future__ import annotations

import os

import pytest

from runtime.checkpoint.storage import CheckpointStorage, load_checkpoint
from runtime.errors import CheckpointError
from runtime.fs import filesystem

pytestmark = [pytest.mark.integration, pytest.mark.hdfs]


def test_store_latest_retention_and_savepoints(hdfs_dir):
    st = CheckpointStorage(hdfs_dir, retain=2)
    st.ensure()
    assert not st.is_local and st.root == hdfs_dir
    assert st.latest() is None
    sp = st.store(1, {"checkpoint_id": 1}, savepoint="keep")
    for i in range(1, 5):
        st.store(i, {"checkpoint_id": i, "x": i})
    assert st.completed_ids() == [3, 4]
    assert st.latest().data["x"] == 4
    assert load_checkpoint(sp).checkpoint_id == 1
    st.clear()
    assert st.latest() is None
    assert load_checkpoint(sp).checkpoint_id == 1  # savepoints survive --fresh


def test_incomplete_checkpoint_is_ignored_and_pruned(hdfs_dir):
    st = CheckpointStorage(hdfs_dir)
    st.ensure()
    st.store(1, {"checkpoint_id": 1})
    fs = filesystem(hdfs_dir)
    fs.write_bytes(f"{st.checkpoints_dir}/chk-000002/_metadata.tmp-1", b"{")  # died mid-write
    assert st.latest().checkpoint_id == 1
    st.store(3, {"checkpoint_id": 3})
    assert not fs.exists(f"{st.checkpoints_dir}/chk-000002")


def test_a_url_made_absolute_by_mistake_still_means_hdfs(hdfs_dir):
    # hub/config.py applies os.path.abspath to checkpoint.dir
    mangled = os.path.abspath(hdfs_dir)
    st = CheckpointStorage(mangled)
    assert st.root == hdfs_dir
    st.ensure()
    st.store(5, {"checkpoint_id": 5})
    assert load_checkpoint(os.path.abspath(f"{hdfs_dir}/checkpoints/chk-000005")).checkpoint_id == 5


def test_missing_checkpoint_is_a_clear_error(hdfs_dir):
    with pytest.raises(CheckpointError, match="no checkpoint there"):
        load_checkpoint(f"{hdfs_dir}/nothing")
