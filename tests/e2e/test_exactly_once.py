"""Exactly once, proven with kill -9: a datagen -> files pipeline killed at random moments and
between a durable checkpoint and its commit ends with the same lake as a run that never failed."""
from __future__ import annotations

import pytest

from tests.e2e.lake import hidden_files, lake_rows
from tests.killing import crash_at, kill_at_random, run_to_end

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


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("reference")
    run_to_end(write_pipeline(d, rows=40_000, rps=0))
    rows = lake_rows(str(d / "lake"))
    assert sum(rows.values()) == 80_000
    return rows


def test_kill_9_at_random_moments(tmp_path, reference):
    pipeline = write_pipeline(tmp_path, rows=40_000, rps=20_000)
    kill_at_random(pipeline, str(tmp_path / "state"), times=4, between=(0.0, 0.8))
    assert "resuming from checkpoint" in run_to_end(pipeline)
    assert lake_rows(str(tmp_path / "lake")) == reference
    assert hidden_files(str(tmp_path / "lake")) == []


@pytest.mark.parametrize("point", ["checkpoint-stored", "checkpoint-committed"])
def test_crash_between_checkpoint_and_commit(tmp_path, reference, point):
    pipeline = write_pipeline(tmp_path, rows=40_000, rps=40_000)
    crash_at(pipeline, point, 3)
    assert "resuming from checkpoint 3" in run_to_end(pipeline)
    assert lake_rows(str(tmp_path / "lake")) == reference
    assert hidden_files(str(tmp_path / "lake")) == []
