"""The Kafka sink against a real broker: exactly-once transactions with their marker and
write-ahead log, recovery, at-least-once, tombstones, the transaction-timeout check."""
from __future__ import annotations

import json
import multiprocessing
import time

import pytest

from runtime.errors import TerminalError
from runtime.sink import CommitContext, WriterContext
from sinks.kafka import transactions
from sinks.kafka.config import KafkaSinkConfig
from sinks.kafka.sink import KafkaSink
from tests.conformance.harness import ListSource, make_batches, run_job
from tests.integration.kafka.helpers import json_records, sink

pytestmark = [pytest.mark.integration, pytest.mark.kafka]


def expected(data) -> set:
    return {(json.dumps({"id": r[0]}, separators=(",", ":")).encode(), op)
            for batches in data for b in batches for op, r in zip(b.ops, b.rows())}


def seen(records) -> set:
    return {(k, json.loads(v)["op"]) for (k, v), _ in records.items()}


@pytest.mark.parametrize("delivery", ["exactly-once", "at-least-once", "none"])
def test_pipeline_writes_every_event(kafka_server, tmp_path, delivery):
    topic = kafka_server.create_topic(partitions=3)
    data = make_batches(3, 4, 25)
    run_job(ListSource(data), sink(kafka_server, topic=topic, delivery=delivery,
                                   **{"transactional-id-prefix": f"p-{topic}"}),
            str(tmp_path), parallelism=2, interval_s=0.05)
    records = json_records(kafka_server, topic)
    assert sum(records.values()) == 300 and seen(records) == expected(data)
    # partitioned by key: every key's records sit in one partition, in order
    parts: dict = {}
    for m in kafka_server.consume_all(topic):
        parts.setdefault(m.key(), set()).add(m.partition())
    assert all(len(p) == 1 for p in parts.values())


def test_topic_template_and_tombstones(kafka_server, tmp_path):
    prefix = f"tpl{int(time.time() * 1000)}"
    topic = kafka_server.create_topic(f"{prefix}.orders")
    data = make_batches(1, 2, 10)  # table test.orders; the second batch deletes one key
    run_job(ListSource(data), sink(kafka_server, topic=prefix + ".{name}", tombstones=True),
            str(tmp_path), parallelism=1)
    msgs = kafka_server.consume_all(topic)
    tomb = [i for i, m in enumerate(msgs) if m.value() is None]
    assert len(tomb) == 1 and json.loads(msgs[tomb[0] - 1].value())["op"] == "d"
    assert msgs[tomb[0]].key() == msgs[tomb[0] - 1].key()


def _prepare(kafka_server, tmp_path, topic, prefix, attempt="a1", cid=1):
    s = sink(kafka_server, topic=topic, **{"transactional-id-prefix": prefix})
    w = s.create_writer(WriterContext("p", 0, 1, attempt, str(tmp_path)), None)
    for b in make_batches(1, 2, 10)[0]:
        w.write(b)
    return s, w, w.prepare_commit(cid)


def test_crash_before_commit_resends_from_the_write_ahead_log(kafka_server, tmp_path):
    topic = kafka_server.create_topic(partitions=2)
    prefix = f"crash-{topic}"
    s, w, committables = _prepare(kafka_server, tmp_path, topic, prefix)
    (c,) = committables
    assert c["records"] == 20 and c["marker_topic"] == topic
    # the process dies before the checkpoint is stored: its transaction stays open, never
    # committed by the writer (never told the checkpoint is stored)
    committer = s.create_committer()
    committer.recover(committables, CommitContext("p", 1, None))
    consumer, _ = committer._marker(transactions.marker_group(prefix, 0))
    assert transactions.committed_checkpoint(consumer, topic) == 1
    records = json_records(kafka_server, topic)
    assert sum(records.values()) == 20  # the crashed transaction was aborted
    assert len(records) == 20  # every record of the checkpoint is there (re-sent)
    # replayed again (a second crash after the commit): a no-op
    committer.recover(committables, CommitContext("p", 1, None))
    assert json_records(kafka_server, topic) == records
    committer.close()
    w.close()


def test_committed_transaction_is_not_sent_again(kafka_server, tmp_path):
    topic = kafka_server.create_topic()
    prefix = f"ok-{topic}"
    s, w, committables = _prepare(kafka_server, tmp_path, topic, prefix)
    w.notify_checkpoint_stored(1)  # the writer commits, the committer confirms
    committer = s.create_committer()
    committer.commit(committables, CommitContext("p", 1, None))
    before = json_records(kafka_server, topic)
    assert sum(before.values()) == 20
    committer.commit(committables, CommitContext("p", 1, None))
    committer.recover(committables, CommitContext("p", 1, None))
    assert json_records(kafka_server, topic) == before
    w.close()
    committer.close()


def test_uncommitted_records_are_invisible_to_read_committed(kafka_server, tmp_path):
    topic = kafka_server.create_topic()
    s, w, committables = _prepare(kafka_server, tmp_path, topic, f"inv-{topic}")
    assert json_records(kafka_server, topic) == {}
    w.notify_checkpoint_stored(1)
    s.create_committer().commit(committables, CommitContext("p", 1, None))
    assert sum(json_records(kafka_server, topic).values()) == 20
    w.close()


def test_transaction_open_too_long_is_a_clear_error(kafka_server, tmp_path):
    topic = kafka_server.create_topic()
    s = sink(kafka_server, topic=topic, **{"transaction-timeout": "1s"})
    w = s.create_writer(WriterContext("p", 0, 1, "a", str(tmp_path)), None)
    batches = make_batches(1, 2, 5)[0]
    w.write(batches[0])
    time.sleep(1.0)
    with pytest.raises(TerminalError, match="transaction-timeout = 1s"):
        w.write(batches[1])
    w.close()


def _confirm_elsewhere(options: dict, committables: list, out) -> None:
    """In a process of its own: a committer made from the configuration alone."""
    committer = KafkaSink(KafkaSinkConfig.model_validate(options)).create_committer()
    try:
        outcomes = committer.commit_each(committables, CommitContext("p", 1, None))
        out.put([o.outcome.value for o in outcomes])
    finally:
        committer.close()


def test_the_committer_confirms_the_writers_commit_from_another_process(kafka_server,
                                                                          tmp_path):
    """Writer and committer share nothing but the committables and the runtime's
    notifications (a distributed executor runs them in different processes): the committer,
    started before the writer hears the checkpoint is stored, waits for the writer's commit
    by the marker and confirms it; nothing is sent twice."""
    topic = kafka_server.create_topic(partitions=2)
    options = {"bootstrap-servers": kafka_server.bootstrap, "topic": topic,
               "transactional-id-prefix": f"far-{topic}"}
    s = KafkaSink(KafkaSinkConfig.model_validate(options))
    w = s.create_writer(WriterContext("p", 0, 1, "a1", str(tmp_path)), None)
    for b in make_batches(1, 2, 10)[0]:
        w.write(b)
    committables = w.prepare_commit(1)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_confirm_elsewhere, args=(options, committables, out))
    proc.start()
    try:
        time.sleep(1.0)  # the committer reads the marker while the transaction is open
        assert json_records(kafka_server, topic) == {}
        w.notify_checkpoint_stored(1)
        assert out.get(timeout=60) == ["done"]
    finally:
        proc.join(30)
        w.close()
    records = json_records(kafka_server, topic)
    assert len(records) == 20 and set(records.values()) == {1}
