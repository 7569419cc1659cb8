"""Exactly once with kill -9: a kafka -> files pipeline and a datagen -> kafka pipeline, killed
at random moments and between a durable checkpoint and its commit, end with the same output as
a run that never failed."""
from __future__ import annotations

import json

import pytest

from tests.e2e.lake import hidden_files, lake_rows
from tests.integration.kafka.helpers import (assert_committed_as, committed_by_key,
                                             exactly_once_sink)
from tests.killing import assert_resumed_after, crash_at, kill_at_random, run_to_end

pytestmark = [pytest.mark.integration, pytest.mark.kafka, pytest.mark.e2e]

ROWS = 30_000

KAFKA_TO_FILES = """
[pipeline]
name = "k2f"
parallelism = 2
[checkpoint]
interval = "200ms"
dir = "{d}/state"
[source]
type = "kafka"
bootstrap-servers = "{bootstrap}"
topics = ["{topic}"]
bounded = "latest-offset"
max-batch-messages = {batch}
format = "json"
format-options = {{ columns = {{ id = "BIGINT", name = "STRING", amount = "DECIMAL(10,2)" }}, primary-key = ["id"], table = "shop.orders" }}
[sink]
type = "files"
path = "{d}/lake"
format = "parquet"
"""

DATAGEN_TO_KAFKA = """
[pipeline]
name = "d2k"
parallelism = 2
[checkpoint]
interval = "200ms"
dir = "{d}/state"
[source]
type = "datagen"
tables = ["orders"]
rows = {rows}
rows-per-second = {rps}
batch-size = 500
update-ratio = 0.2
delete-ratio = 0.05
event-time-start = "2026-11-24T09:30:00Z"
"""




@pytest.fixture(scope="module")
def filled_topic(kafka_server):
    topic = kafka_server.create_topic(partitions=3)
    records = []
    for i in range(ROWS):
        k = i % 10_000  # later records update and delete earlier keys
        op = "c" if i < 10_000 else ("d" if i % 7 == 0 else "u")
        records.append((json.dumps({"id": k}).encode(), json.dumps(
            {"id": k, "name": f"n{i}", "amount": f"{i}.50", "op": op, "ts_ms": 1_700_000_000_000 + i}
        ).encode()))
    kafka_server.produce(topic, records)
    return topic


def _k2f(d, kafka_server, topic, batch=200) -> str:
    (d / "p.toml").write_text(KAFKA_TO_FILES.format(d=d, bootstrap=kafka_server.bootstrap,
                                                    topic=topic, batch=batch))
    return str(d / "p.toml")


@pytest.fixture(scope="module")
def k2f_reference(kafka_server, filled_topic, tmp_path_factory):
    d = tmp_path_factory.mktemp("k2f-ref")
    run_to_end(_k2f(d, kafka_server, filled_topic))
    rows = lake_rows(str(d / "lake"))
    assert sum(rows.values()) == ROWS
    return rows


def test_kafka_to_files_kill_9_at_random_moments(kafka_server, filled_topic, k2f_reference,
                                                 tmp_path):
    # small polls: the run lasts long enough to be killed several times
    pipeline = _k2f(tmp_path, kafka_server, filled_topic, batch=5)
    kill_at_random(pipeline, str(tmp_path / "state"), times=3, between=(0.0, 0.7))
    assert "resuming from checkpoint" in run_to_end(pipeline)
    assert lake_rows(str(tmp_path / "lake")) == k2f_reference
    assert hidden_files(str(tmp_path / "lake")) == []


@pytest.mark.parametrize("point", ["checkpoint-stored", "checkpoint-committed"])
def test_kafka_to_files_crash_between_checkpoint_and_commit(kafka_server, filled_topic,
                                                            k2f_reference, tmp_path, point):
    pipeline = _k2f(tmp_path, kafka_server, filled_topic, batch=5)
    crash_at(pipeline, point, 2)
    assert "resuming from checkpoint 2" in run_to_end(pipeline)
    assert lake_rows(str(tmp_path / "lake")) == k2f_reference


def _d2k(d, kafka_server, rows: int, rps: int) -> tuple[str, str]:
    topic = kafka_server.create_topic(partitions=3)
    (d / "p.toml").write_text(DATAGEN_TO_KAFKA.format(d=d, rows=rows, rps=rps)
                              + exactly_once_sink(kafka_server, topic))
    return str(d / "p.toml"), topic


@pytest.fixture(scope="module")
def d2k_reference(kafka_server, tmp_path_factory):
    """Each key's records (a run that never failed)."""
    d = tmp_path_factory.mktemp("d2k-ref")
    pipeline, topic = _d2k(d, kafka_server, 20_000, 0)
    run_to_end(pipeline)
    records = committed_by_key(kafka_server, topic)
    assert sum(map(len, records.values())) == 20_000
    return records


def test_datagen_to_kafka_kill_9_at_random_moments(kafka_server, d2k_reference, tmp_path):
    pipeline, topic = _d2k(tmp_path, kafka_server, 20_000, 8_000)
    kill_at_random(pipeline, str(tmp_path / "state"), times=3, between=(0.0, 0.8))
    assert "resuming from checkpoint" in run_to_end(pipeline)
    # each record once, in order (in the log, records of aborted transactions told apart by
    # their markers, and as a read_committed consumer sees them)
    assert_committed_as(kafka_server, topic, d2k_reference)


@pytest.mark.parametrize("point", ["checkpoint-stored", "checkpoint-committed"])
def test_datagen_to_kafka_crash_between_checkpoint_and_commit(kafka_server, d2k_reference,
                                                              tmp_path, point):
    pipeline, topic = _d2k(tmp_path, kafka_server, 20_000, 20_000)
    crash_at(pipeline, point, 3)
    err = run_to_end(pipeline)
    assert_resumed_after(err, point, 3)
    if point == "checkpoint-stored":
        assert "re-sending" in err or "was committed already" in err, err[-2000:]
    assert_committed_as(kafka_server, topic, d2k_reference)
