"""Exactly once on HDFS, proven with kill -9: a datagen -> hdfs pipeline with its checkpoints
on HDFS too, killed at random moments and between a durable checkpoint and its commit, ends
with the same files as a run that never failed."""
from __future__ import annotations

import os

import pytest

from runtime.fs import filesystem
from tests.e2e.lake import hidden_files, lake_rows
from tests.killing import (assert_resumed_after, crash_at, datagen_pipeline,
                           kill_at_random, run_to_end)

pytestmark = [pytest.mark.integration, pytest.mark.hdfs]

ROWS = 30_000


SINK = """\
[sink]
type = "hdfs"
path = "{lake}"
format = "parquet"
partition-format = "dt=%Y-%m-%d/hr=%H"
"""


def write_pipeline(local, base: str, rps: int) -> str:
    sink = SINK.format(lake=f"{base}/lake")
    return datagen_pipeline(local / "pipeline.toml", sink, name="hdfs-kill-test",
                            state=f"{base}/state", rows=ROWS, rps=rps)


@pytest.fixture(scope="module")
def reference(webhdfs_server, tmp_path_factory):
    local = tmp_path_factory.mktemp("hdfs-reference")
    base = f"{webhdfs_server.url}/it/reference-{os.getpid()}"
    filesystem(base).rmtree(base)
    # cwd: the lock and control files of a pipeline with HDFS checkpoints stay local
    run_to_end(write_pipeline(local, base, rps=0), cwd=str(local))
    rows = lake_rows(f"{base}/lake")
    assert sum(rows.values()) == 2 * ROWS
    return rows


def test_kill_9_at_random_moments(tmp_path, hdfs_dir, reference):
    pipeline = write_pipeline(tmp_path, hdfs_dir, rps=15_000)
    kill_at_random(pipeline, f"{hdfs_dir}/state", times=4, between=(0.0, 1.0),
                   cwd=str(tmp_path))
    assert "resuming from checkpoint" in run_to_end(pipeline, cwd=str(tmp_path))
    assert lake_rows(f"{hdfs_dir}/lake") == reference
    assert hidden_files(f"{hdfs_dir}/lake") == []


@pytest.mark.parametrize("point", ["checkpoint-stored", "checkpoint-committed"])
def test_crash_between_checkpoint_and_commit(tmp_path, hdfs_dir, reference, point):
    pipeline = write_pipeline(tmp_path, hdfs_dir, rps=30_000)
    crash_at(pipeline, point, 3, timeout=180, cwd=str(tmp_path))
    fs = filesystem(hdfs_dir)
    assert fs.exists(f"{hdfs_dir}/state/checkpoints/chk-000003/_metadata")  # on HDFS
    assert_resumed_after(run_to_end(pipeline, cwd=str(tmp_path)), point, 3)
    assert lake_rows(f"{hdfs_dir}/lake") == reference
    assert hidden_files(f"{hdfs_dir}/lake") == []
