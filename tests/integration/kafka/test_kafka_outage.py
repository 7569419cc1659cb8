"""The Kafka connectors meeting outages and mistakes on a real broker: a broker down at start
is retried as ``[restart]`` says until it answers, and the run ends exactly once; a listed
topic that does not exist stops the source at start with one line.  (A broker killed and
restarted *mid-stream*: ``test_kafka_broker_restart.py``.)"""
from __future__ import annotations

import os
import time
from types import SimpleNamespace

import pytest

from runtime.errors import TerminalError
from tests.conformance.harness import CollectSink, CollectStore, run_job
from tests.integration.kafka.helpers import committed_by_key, exactly_once_sink, source
from tests.killing import _wait, datagen_pipeline, hub
from tests.servers.kafka import ThrowawayKafka

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

ROWS = 1500
TABLES = ("orders", "customers")


@pytest.mark.skipif(bool(os.environ.get("HUB_TEST_KAFKA")),
                    reason="starts its own broker late: HUB_TEST_KAFKA names an external one")
def test_a_broker_down_at_start_is_retried_and_the_run_ends_exactly_once(tmp_path):
    """Before: the sink's check raised an error that was neither transient nor terminal, and
    the hub ended at once."""
    broker = ThrowawayKafka()  # its ports are chosen now; it starts later
    try:
        bootstrap = broker.bootstrap
        prefix = f"late{int(time.time() * 1000)}"
        late = SimpleNamespace(bootstrap=bootstrap)  # the broker, before it runs
        path = datagen_pipeline(tmp_path / "p.toml", exactly_once_sink(late, prefix + "-{name}"),
                                name="late", state=str(tmp_path / "state"), rows=ROWS, rps=0,
                                update_ratio=0.0, delete_ratio=0.0)
        with open(path, "a") as f:
            f.write('[restart]\ndelay = "200ms"\nmax-delay = "500ms"\nattempts = 100\n')
        proc = hub("run", path, "--no-progress")
        # the sink's check waits 10 s for a broker, then the hub retries as [restart] says
        time.sleep(11.0)
        assert proc.poll() is None, _wait(proc, 5)
        server = broker.start()
        for table in TABLES:  # the retrying sink's first records may have created it
            server.create_topic(f"{prefix}-{table}", partitions=2, exist_ok=True)
        err = _wait(proc, 120)
        assert proc.returncode == 0, err
        assert f"kafka sink: connecting at {bootstrap}: " in err and \
            "restarting from the latest checkpoint" in err, err[-3000:]
        for table in TABLES:
            got = committed_by_key(server, f"{prefix}-{table}")
            assert len(got) == ROWS and all(len(v) == 1 for v in got.values()), table
    finally:
        broker.stop()


def test_a_listed_topic_that_does_not_exist_stops_the_source_at_start(kafka_server, tmp_path):
    """Before: a warning, then a bounded read ended with nothing (an unbounded one waited)."""
    missing = f"missing-{int(time.time() * 1000)}"
    src = source(kafka_server, topics=[missing])
    with pytest.raises(TerminalError, match=rf"^kafka source: topic '{missing}' does not exist "
                                            rf"at {kafka_server.bootstrap} \(create it"):
        run_job(src, CollectSink(CollectStore()), str(tmp_path), parallelism=1,
                interval_s=0.1)


@pytest.mark.parametrize("delivery", ["exactly-once", "at-least-once"])
def test_a_record_too_large_is_terminal_naming_the_topic(kafka_server, tmp_path, delivery):
    """Before: the client's exception escaped untranslated (an internal error)."""
    from runtime.batch import ChangeBatch
    from runtime.sink import WriterContext
    from tests.conformance.harness import ORDERS
    from tests.integration.kafka.helpers import sink

    topic = kafka_server.create_topic()
    s = sink(kafka_server, topic=topic, delivery=delivery,
             **{"transactional-id-prefix": f"big-{topic}", "properties": {
                 "message.max.bytes": 1000, "batch.size": 1000}})
    w = s.create_writer(WriterContext("p", 0, 1, "a", str(tmp_path)), None)
    try:
        big = ChangeBatch(ORDERS, "c", rows=[(1, "x" * 5000, None)], ts_ms=1)
        with pytest.raises(TerminalError, match=rf"^kafka sink: producing at "
                                                rf"{kafka_server.bootstrap} \(topic {topic}\): "
                                                rf"MSG_SIZE_TOO_LARGE"):
            w.write(big)
            w.prepare_commit(1)
    finally:
        w.close()


def test_a_source_whose_brokers_do_not_answer_fails_its_start_in_one_line(tmp_path):
    """Before: the first partition discovery ran beside the first checkpoints: nothing was said
    for 10 s, checkpoints completed (0 rows), and each completed checkpoint reset the restart
    count, so the source retried for ever ("attempt 1 of 10" each time).  Now the source's
    check fails each attempt before it starts, the attempts count up, and the run ends with
    one line naming the brokers, in seconds, without a checkpoint."""
    broker = ThrowawayKafka()  # its ports are chosen, nothing listens on them
    bootstrap = broker.bootstrap
    state = tmp_path / "state"
    path = tmp_path / "p.toml"
    path.write_text(f'[pipeline]\nname = "down"\n[source]\ntype = "kafka"\n'
                    f'bootstrap-servers = "{bootstrap}"\ntopics = ["t"]\n'
                    f'[sink]\ntype = "blackhole"\n[checkpoint]\ninterval = "200ms"\n'
                    f'dir = "{state}"\n[restart]\ndelay = "100ms"\nmax-delay = "200ms"\n'
                    f'attempts = 2\n')
    started = time.monotonic()
    proc = hub("run", str(path), "--no-progress")
    err = _wait(proc, 60)
    assert proc.returncode == 1, err[-2000:]
    assert time.monotonic() - started < 30
    line = f"kafka source: connecting at {bootstrap}: "
    assert f"{line}" in err and "(attempt 1 of 2)" in err and "(attempt 2 of 2)" in err, err
    assert err.rstrip().splitlines()[-1].startswith(f"error: {line}") and \
        err.rstrip().endswith("(gave up after 2 restarts)"), err[-2000:]
    assert not list((state / "checkpoints").glob("*")), "a checkpoint of a source never started"


def test_the_source_check_passes_with_the_broker_and_stops_at_a_missing_topic(kafka_server):
    topic = kafka_server.create_topic()
    source(kafka_server, topics=[topic]).check()
    source(kafka_server, **{"topic-pattern": "no-such-.*"}).check()  # a pattern may match none
    with pytest.raises(TerminalError, match=rf"^kafka source: topic 'missing-x' does not exist "
                                            rf"at {kafka_server.bootstrap} \(create it"):
        source(kafka_server, topics=["missing-x"]).check()
