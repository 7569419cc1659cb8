"""Exactly once, proven with kill -9: a datagen -> files pipeline killed at random moments and
between a durable checkpoint and its commit ends with the same lake as a run that never failed."""
from __future__ import annotations

import pytest

from tests.e2e.lake import hidden_files, lake_rows
from tests.killing import (assert_resumed_after, crash_at, datagen_pipeline,
                           kill_at_random, run_to_end)

pytestmark = pytest.mark.e2e


SINK = """\
[sink]
type = "files"
path = "{lake}"
format = "parquet"
partition-format = "dt=%Y-%m-%d/hr=%H"
"""


def write_pipeline(d, rows: int, rps: int) -> str:
    sink = SINK.format(lake=d / "lake")
    return datagen_pipeline(d / "pipeline.toml", sink, name="kill-test", state=str(d / "state"),
                            rows=rows, rps=rps)


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
    assert_resumed_after(run_to_end(pipeline), point, 3)
    assert lake_rows(str(tmp_path / "lake")) == reference
    assert hidden_files(str(tmp_path / "lake")) == []
