"""Exactly once, proven with kill -9: a datagen -> files pipeline killed at random moments and
between a durable checkpoint and its commit ends with the same lake as a run that never failed."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from tests.e2e.lake import hidden_files, lake_rows

pytestmark = pytest.mark.e2e

PIPELINE = """
[pipeline]
name = "kill-test"
parallelism = 2
[checkpoint]
interval = "{interval}"
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
type = "files"
path = "{lake}"
format = "parquet"
partition-format = "dt=%Y-%m-%d/hr=%H"
"""


def write_pipeline(d, rows: int, rps: int, interval: str = "200ms") -> str:
    path = d / "pipeline.toml"
    path.write_text(PIPELINE.format(state=d / "state", lake=d / "lake", rows=rows, rps=rps,
                                    interval=interval))
    return str(path)


def hub(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hub", *args],
                            env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_to_end(pipeline: str, env: dict | None = None, timeout: float = 120) -> str:
    p = hub("run", pipeline, "--no-progress", env=env)
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, err
    return err


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("reference")
    run_to_end(write_pipeline(d, rows=40_000, rps=0))
    rows = lake_rows(str(d / "lake"))
    assert sum(rows.values()) == 80_000
    return rows


def test_kill_9_at_random_moments(tmp_path, reference):
    pipeline = write_pipeline(tmp_path, rows=40_000, rps=20_000)
    rnd = random.Random(int(os.environ.get("HUB_TEST_SEED", time.time())))
    kills = 0
    for _ in range(4):
        p = hub("run", pipeline, "--no-progress")
        time.sleep(rnd.uniform(0.4, 1.6))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.communicate()
    assert kills >= 2, "the pipeline ended before it could be killed: the test proves nothing"
    err = run_to_end(pipeline)
    assert "resuming from checkpoint" in err
    assert lake_rows(str(tmp_path / "lake")) == reference
    assert hidden_files(str(tmp_path / "lake")) == []


@pytest.mark.parametrize("point", ["checkpoint-stored", "checkpoint-committed"])
def test_crash_between_checkpoint_and_commit(tmp_path, reference, point):
    pipeline = write_pipeline(tmp_path, rows=40_000, rps=40_000)
    p = hub("run", pipeline, "--no-progress", env={"HUB_CRASH_AT": f"{point}:3"})
    p.communicate(timeout=120)
    assert p.returncode == -signal.SIGKILL, "the crash point was not reached"
    err = run_to_end(pipeline)
    assert "resuming from checkpoint 3" in err
    assert lake_rows(str(tmp_path / "lake")) == reference
    assert hidden_files(str(tmp_path / "lake")) == []
