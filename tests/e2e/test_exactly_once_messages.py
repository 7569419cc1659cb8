"""Exactly once with files of messages, proven with kill -9: a datagen -> files(debezium-json)
pipeline and a files(debezium-json) -> files(parquet) pipeline, each killed at random moments
and restarted, end with the same output as a run that never failed."""
from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.lake import hidden_files, lake_rows
from tests.killing import datagen_pipeline, kill_at_random, run_to_end

pytestmark = pytest.mark.e2e

SINK = """\
[sink]
type = "files"
path = "{lake}"
format = "debezium-json"
format-options = {{ schema-include = true }}
partition-format = "dt=%Y-%m-%d/hr=%H"
"""

READ_BACK = """\
[pipeline]
name = "read-back"
parallelism = 2
[checkpoint]
interval = "200ms"
dir = "{state}"
[source]
type = "files"
path = "{lake}"
format = "debezium-json"
batch-size = 500
[sink]
type = "files"
path = "{out}"
format = "parquet"
"""


def _message_lines(lake: Path) -> Counter:
    """Multiset of the visible messages (digests: the lines carry Debezium's schema part)."""
    lines: Counter = Counter()
    for path in lake.rglob("*.json"):
        if not path.name.startswith("."):
            lines.update(hashlib.sha1(line).digest() for line in path.read_bytes().splitlines())
    return lines


def _write_pipeline(d: Path, rps: int) -> str:
    return datagen_pipeline(d / "pipeline.toml", SINK.format(lake=d / "lake"), name="msg-kill",
                            state=str(d / "state"), rows=40_000, rps=rps)


def _read_back_pipeline(d: Path, lake: Path) -> str:
    path = d / "read-back.toml"
    path.write_text(READ_BACK.format(state=d / "state-back", lake=lake, out=d / "back"))
    return str(path)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Counter, Counter]:
    """The debezium-json lake of a run that never failed, its messages, and what reading it
    back into parquet gives without failures."""
    d = tmp_path_factory.mktemp("reference")
    run_to_end(_write_pipeline(d, rps=0))
    lines = _message_lines(d / "lake")
    assert sum(lines.values()) == 80_000
    run_to_end(_read_back_pipeline(d, d / "lake"))
    rows = lake_rows(str(d / "back"))
    assert sum(rows.values()) == 80_000
    return d / "lake", lines, rows


def test_kill_9_of_the_debezium_json_sink(tmp_path: Path, reference) -> None:
    pipeline = _write_pipeline(tmp_path, rps=20_000)
    kill_at_random(pipeline, str(tmp_path / "state"), times=4, between=(0.0, 0.8))
    assert "resuming from checkpoint" in run_to_end(pipeline)
    assert _message_lines(tmp_path / "lake") == reference[1]
    assert hidden_files(str(tmp_path / "lake")) == []


def test_kill_9_of_the_debezium_json_source(tmp_path: Path, reference) -> None:
    pipeline = _read_back_pipeline(tmp_path, reference[0])
    kill_at_random(pipeline, str(tmp_path / "state-back"), times=4, between=(0.0, 0.3))
    assert "resuming from checkpoint" in run_to_end(pipeline)
    assert lake_rows(str(tmp_path / "back")) == reference[2]
    assert hidden_files(str(tmp_path / "back")) == []
