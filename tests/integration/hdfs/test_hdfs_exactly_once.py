"""Exactly once on HDFS, proven with kill -9: a datagen -> hdfs pipeline with its checkpoints
on HDFS too, killed at random moments and between a durable checkpoint and its commit, ends
with the same files as a run that never failed."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime.fs import filesystem

pytestmark = [pytest.mark.integration, pytest.mark.hdfs]

ROWS = 30_000
PIPELINE = """
[pipeline]
name = "hdfs-kill-test"
parallelism = 2
[checkpoint]
interval = "200ms"
dir = "{state}"
[source]
type = "datagen"
tables = ["orders", "customers"]
rows = {rows}
rows-per-second = {rps}
batch-size = 500
update-ratio = 0.2
delete-ratio = 0.05
event-time-start = "2026-11-24T09:30:00Z"
event-time-step = "20ms"
[sink]
type = "hdfs"
path = "{lake}"
format = "parquet"
partition-format = "dt=%Y-%m-%d/hr=%H"
"""


def write_pipeline(local, base: str, rps: int) -> str:
    path = local / "pipeline.toml"
    path.write_text(PIPELINE.format(state=f"{base}/state", lake=f"{base}/lake", rows=ROWS,
                                    rps=rps))
    return str(path)


def hub(local, pipeline: str, env: dict | None = None) -> subprocess.Popen:
    # cwd: the hub keeps its lock and control files in a local folder (see the report)
    return subprocess.Popen([sys.executable, "-m", "hub", "run", pipeline, "--no-progress"],
                            cwd=local, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_to_end(local, pipeline: str) -> str:
    p = hub(local, pipeline)
    _, err = p.communicate(timeout=180)
    assert p.returncode == 0, err
    return err


def lake_rows(lake: str) -> Counter:
    """Multiset of (table folder, row) over the visible parquet files under ``lake``."""
    fs = filesystem(lake)
    rows: Counter = Counter()
    for _d, _dirs, files in fs.walk(lake):
        for f in files:
            if f.name.startswith(".") or not f.name.endswith(".parquet"):
                continue
            table = tuple(f.path[len(lake):].strip("/").split("/")[:2])
            t = pq.read_table(pa.BufferReader(fs.read_bytes(f.path)))
            rows.update((table,) + r for r in zip(*(c.to_pylist() for c in t.columns)))
    return rows


def hidden_files(lake: str) -> list[str]:
    fs = filesystem(lake)
    return sorted(f.path for _d, _s, files in fs.walk(lake) for f in files
                  if f.name.startswith(".part-"))


@pytest.fixture(scope="module")
def reference(webhdfs_server, tmp_path_factory):
    local = tmp_path_factory.mktemp("hdfs-reference")
    base = f"{webhdfs_server.url}/it/reference-{os.getpid()}"
    filesystem(base).rmtree(base)
    run_to_end(local, write_pipeline(local, base, rps=0))
    rows = lake_rows(f"{base}/lake")
    assert sum(rows.values()) == 2 * ROWS
    return rows


def test_kill_9_at_random_moments(tmp_path, hdfs_dir, reference):
    pipeline = write_pipeline(tmp_path, hdfs_dir, rps=15_000)
    seed = int(os.environ.get("HUB_TEST_SEED", time.time()))
    rnd = random.Random(seed)
    kills = 0
    for _ in range(4):
        p = hub(tmp_path, pipeline)
        time.sleep(rnd.uniform(0.8, 2.0))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.communicate()
    assert kills >= 2, f"the pipeline ended before it could be killed (seed {seed})"
    err = run_to_end(tmp_path, pipeline)
    assert "resuming from checkpoint" in err
    assert lake_rows(f"{hdfs_dir}/lake") == reference, f"seed {seed}"
    assert hidden_files(f"{hdfs_dir}/lake") == []


@pytest.mark.parametrize("point", ["checkpoint-stored", "checkpoint-committed"])
def test_crash_between_checkpoint_and_commit(tmp_path, hdfs_dir, reference, point):
    pipeline = write_pipeline(tmp_path, hdfs_dir, rps=30_000)
    p = hub(tmp_path, pipeline, env={"HUB_CRASH_AT": f"{point}:3"})
    p.communicate(timeout=180)
    assert p.returncode == -signal.SIGKILL, "the crash point was not reached"
    fs = filesystem(hdfs_dir)
    assert fs.exists(f"{hdfs_dir}/state/checkpoints/chk-000003/_metadata")  # on HDFS
    err = run_to_end(tmp_path, pipeline)
    assert "resuming from checkpoint 3" in err
    assert lake_rows(f"{hdfs_dir}/lake") == reference
    assert hidden_files(f"{hdfs_dir}/lake") == []
