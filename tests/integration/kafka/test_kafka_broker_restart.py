"""The Kafka broker killed (SIGKILL) in the middle of a transaction and started again on the
same ports and data folder, while a pipeline runs: a datagen -> kafka exactly-once pipeline
(the sink's transactions open when the broker dies), and a kafka -> files pipeline reading a
topic whose producer's transaction is open when the broker dies.  The pipeline retries on its
own, with backoff, saying what it waits for, and its output equals that of a run that never
failed, as a read_committed consumer sees it.

Each test starts a broker of its own (it is killed), even when ``HUB_TEST_KAFKA`` names an
external one."""
from __future__ import annotations

import json
import time

import pytest

from tests.e2e.lake import hidden_files, lake_rows
from tests.integration.kafka.helpers import assert_committed_as, committed_by_key, \
    exactly_once_sink
from tests.integration.kafka.test_kafka_kill import KAFKA_TO_FILES
from tests.killing import _wait, datagen_pipeline, hub, latest_checkpoint, run_to_end
from tests.servers.kafka import ThrowawayKafka

pytestmark = [pytest.mark.integration, pytest.mark.kafka, pytest.mark.e2e]

TABLES = ("orders", "customers")
#: retried soon, then less often: the broker is back within seconds
RESTART = '[restart]\ndelay = "200ms"\nmax-delay = "2s"\nattempts = 100\n'


@pytest.fixture
def broker():
    """A broker of the test's own and its :class:`~tests.servers.kafka.KafkaServer`."""
    b = ThrowawayKafka()
    try:
        yield b, b.start()
    finally:
        b.stop()


def _kill_and_restart(broker: ThrowawayKafka, state: str, proc, after_checkpoint: int,
                      down_s: float = 1.0) -> None:
    """Once the pipeline completed ``after_checkpoint``, SIGKILL the broker; start it again
    ``down_s`` later.  Asserts the pipeline was still running when the broker died."""
    deadline = time.monotonic() + 60
    while latest_checkpoint(state) < after_checkpoint and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the pipeline ended before the broker was killed: " + \
        _wait(proc, 5)[-2000:]
    broker.kill()
    time.sleep(down_s)
    assert proc.poll() is None, "the pipeline gave up while the broker was down: " + \
        _wait(proc, 5)[-2000:]
    broker.restart()


def test_broker_killed_mid_transaction_under_a_datagen_to_kafka_pipeline(broker, tmp_path):
    broker, server = broker
    rows = 3_000

    def pipeline(d, prefix: str, rps: int) -> str:
        for table in TABLES:
            server.create_topic(f"{prefix}-{table}", partitions=2)
        path = datagen_pipeline(d / "p.toml", exactly_once_sink(server, prefix + "-{name}"),
                                name=prefix, state=str(d / "state"), rows=rows, rps=rps)
        with open(path, "a") as f:
            f.write(RESTART)
        return path

    (tmp_path / "ref").mkdir()
    (tmp_path / "run").mkdir()
    run_to_end(pipeline(tmp_path / "ref", "ref", 0))
    reference = {t: committed_by_key(server, f"ref-{t}") for t in TABLES}

    proc = hub("run", pipeline(tmp_path / "run", "run", 1_500), "--no-progress")
    _kill_and_restart(broker, str(tmp_path / "run" / "state"), proc, after_checkpoint=3)
    err = _wait(proc, 180)
    assert proc.returncode == 0, err[-3000:]
    # the sink's marker request hung in the client after the restart (librdkafka #5456): the
    # pipeline restarted, saying why
    assert "restarting from the latest checkpoint" in err, err[-3000:]
    for t in TABLES:
        assert_committed_as(server, f"run-{t}", reference[t])


def test_broker_killed_mid_transaction_under_a_kafka_to_files_pipeline(broker, tmp_path):
    from confluent_kafka import Producer

    broker, server = broker
    topic = server.create_topic(partitions=3)
    committed = 8_000

    def record(i: int) -> tuple[bytes, bytes]:
        return json.dumps({"id": i}).encode(), json.dumps(
            {"id": i, "name": f"n{i}", "amount": f"{i}.50", "op": "c",
             "ts_ms": 1_700_000_000_000 + i}).encode()

    def transaction(p, ids, end) -> None:
        p.begin_transaction()
        for i in ids:
            k, v = record(i)
            p.produce(topic, v, k)
        assert p.flush(30) == 0  # in the log (for the last one, its transaction still open)
        if end is not None:
            end(30)

    tid = f"feed-{topic}"
    p = Producer({"bootstrap.servers": server.bootstrap, "transactional.id": tid})
    p.init_transactions(30)
    transaction(p, range(committed // 2), p.commit_transaction)
    transaction(p, range(100_000, 101_000), p.abort_transaction)
    transaction(p, range(committed // 2, committed), p.commit_transaction)
    transaction(p, range(200_000, 201_000), None)  # open when the broker dies; aborted later

    d = tmp_path / "run"
    d.mkdir()
    (d / "p.toml").write_text(KAFKA_TO_FILES.format(d=d, bootstrap=server.bootstrap,
                                                    topic=topic, batch=5) + RESTART)
    proc = hub("run", str(d / "p.toml"), "--no-progress")
    _kill_and_restart(broker, str(d / "state"), proc, after_checkpoint=2)
    # the producer is gone with the broker; its successor aborts the open transaction
    Producer({"bootstrap.servers": server.bootstrap, "transactional.id": tid}
             ).init_transactions(60)
    err = _wait(proc, 180)
    assert proc.returncode == 0, err[-3000:]
    # the source rode the outage out in the client, saying what it waited for
    assert f"kafka source: consuming at {server.bootstrap}: " in err and \
        "(the client reconnects and fetches on)" in err, err[-3000:]

    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "p.toml").write_text(KAFKA_TO_FILES.format(d=ref, bootstrap=server.bootstrap,
                                                      topic=topic, batch=500))
    run_to_end(str(ref / "p.toml"))
    reference = lake_rows(str(ref / "lake"))
    assert sorted(r[2] for r in reference) == list(range(committed))  # committed ones only
    assert lake_rows(str(d / "lake")) == reference
    assert hidden_files(str(d / "lake")) == []

