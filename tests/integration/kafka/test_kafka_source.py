"""The Kafka source against a real broker: startup modes, bounded reads, bad records, group
offsets, partition discovery, read_committed."""
from __future__ import annotations

import json
import threading
import time

import pytest

from runtime.deadletter import DeadLetterQueue
from runtime.errors import BadRecordError
from tests.conformance.harness import CollectSink, CollectStore
from tests.integration.kafka.helpers import collect, source

pytestmark = [pytest.mark.integration, pytest.mark.kafka]


def records(ids, **extra):
    return [(json.dumps({"id": i}).encode(), json.dumps({"id": i, "v": f"v{i}", **extra}).encode())
            for i in ids]


@pytest.fixture
def topic(kafka_server):
    t = kafka_server.create_topic(partitions=3)
    kafka_server.produce(t, records(range(30)))
    return t


def test_reads_every_record_once_across_partitions(kafka_server, topic, tmp_path):
    rows = collect(source(kafka_server, topics=[topic]), str(tmp_path))
    assert sorted(r[2] for r in rows) == list(range(30)) and set(rows.values()) == {1}
    assert all(r[0] == topic and r[1] == "c" for r in rows)


def test_startup_modes(kafka_server, tmp_path):
    t = kafka_server.create_topic(partitions=1)
    kafka_server.produce(t, records(range(5)), timestamp=1_000)
    kafka_server.produce(t, records(range(5, 10)), timestamp=5_000)
    ids = lambda rows: sorted(r[2] for r in rows)  # noqa: E731
    assert ids(collect(source(kafka_server, topics=[t], **{"startup-mode": "timestamp",
                                                           "startup-timestamp": 3_000}),
                       str(tmp_path / "a"))) == list(range(5, 10))
    assert ids(collect(source(kafka_server, topics=[t], **{
        "startup-mode": "specific-offsets", "startup-specific-offsets": {f"{t}:0": 8}}),
        str(tmp_path / "b"))) == [8, 9]
    assert ids(collect(source(kafka_server, topics=[t], **{"startup-mode": "latest"}),
                       str(tmp_path / "c"))) == []


def test_group_offsets_are_committed_after_checkpoints_and_read_back(kafka_server, topic,
                                                                     tmp_path):
    from confluent_kafka import Consumer, TopicPartition

    group = f"g-{topic}"
    # unbounded: offsets of the checkpoints completed while running are committed
    store, stop = run_unbounded(source(kafka_server, topics=[topic], bounded="none",
                                       **{"group-id": group}), tmp_path / "a")
    wait_for(lambda: sum(store.rows().values()) == 30)
    time.sleep(0.5)  # a few more checkpoints complete
    stop()
    c = Consumer({"bootstrap.servers": kafka_server.bootstrap, "group.id": group})
    committed = c.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
    c.close()
    assert sum(tp.offset for tp in committed) == 30
    kafka_server.produce(topic, records(range(30, 33)))
    rows = collect(source(kafka_server, topics=[topic], **{"group-id": group,
                                                           "startup-mode": "group-offsets"}),
                   str(tmp_path / "b"))
    assert sorted(r[2] for r in rows) == [30, 31, 32]


def test_bad_record_names_topic_partition_offset(kafka_server, tmp_path):
    t = kafka_server.create_topic(partitions=1)
    kafka_server.produce(t, records([1]) + [(b"k", b"{oops")] + records([2]))
    with pytest.raises(BadRecordError, match=rf"kafka {t}\[0\] offset 1: not a json message"):
        collect(source(kafka_server, topics=[t]), str(tmp_path / "a"), parallelism=1)
    dlq = DeadLetterQueue("all", str(tmp_path / "dlq"), "p")
    rows = collect(source(kafka_server, topics=[t]), str(tmp_path / "b"), parallelism=1,
                   dead_letter=dlq)
    assert sorted(r[2] for r in rows) == [1, 2] and dlq.count == 1
    line = json.loads((tmp_path / "dlq" / "p.deadletter.jsonl").read_text())
    assert line["origin"] == f"kafka:{t}/0/1" and line["record"]["value"]["base64"]


def test_debezium_source_schema_and_versions(kafka_server, tmp_path):
    from formats.registry import resolve_message_format
    from runtime.batch import ChangeBatch
    from tests.unit.formats.test_format_debezium import ROWS, SCHEMA

    t = kafka_server.create_topic(partitions=1)
    enc = resolve_message_format("debezium-json", {"schema-include": True}).encoder()
    batch = ChangeBatch(SCHEMA, "cd", rows=ROWS, ts_ms=[10, 20])
    kafka_server.produce(t, list(zip(enc.encode_keys(batch, t), enc.encode(batch, t))))
    got = []

    class Keep(CollectSink):
        def create_writer(self, context, state):
            w = super().create_writer(context, state)
            w.write = lambda b, w=w: (got.append(b), type(w).write(w, b))[1]
            return w

    from tests.conformance.harness import run_job

    run_job(source(kafka_server, topics=[t], format="debezium-json",
                   **{"event-time": "payload"}),
            Keep(CollectStore()), str(tmp_path), parallelism=1)
    (b,) = got
    assert b.schema == SCHEMA and b.rows() == ROWS and b.ts_ms_list() == [10, 20]
    assert list(b.versions) == [0, 1 << 10]


def run_unbounded(src, state):
    from runtime.checkpoint.storage import CheckpointStorage
    from runtime.executor.job import Job
    from runtime.executor.local import LocalExecutor

    store = CollectStore()
    ex = LocalExecutor(Job("unbounded", src, CollectSink(store),
                           CheckpointStorage(str(state)), 1, 0.1))
    th = threading.Thread(target=ex.run, daemon=True)
    th.start()

    def stop():
        ex.request_stop()
        th.join(30)

    return store, stop


def wait_for(check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not check():
        time.sleep(0.05)
    assert check()


def test_partition_discovery_finds_new_topics_while_running(kafka_server, tmp_path):
    prefix = f"disc{int(time.time() * 1000)}"
    first = kafka_server.create_topic(f"{prefix}-a")
    kafka_server.produce(first, records([1]))
    store, stop = run_unbounded(source(kafka_server, **{
        "topic-pattern": f"{prefix}-.*", "bounded": "none",
        "partition-discovery-interval": "200ms"}), tmp_path)
    wait_for(lambda: sum(store.rows().values()) == 1)
    second = kafka_server.create_topic(f"{prefix}-b", partitions=2)
    kafka_server.produce(second, records([2, 3]))
    wait_for(lambda: sum(store.rows().values()) == 3)
    stop()
    assert sorted(r[2] for r in store.rows()) == [1, 2, 3]


def test_read_committed_skips_aborted_transactions(kafka_server, tmp_path):
    from confluent_kafka import Producer

    t = kafka_server.create_topic(partitions=1)
    p = Producer({"bootstrap.servers": kafka_server.bootstrap, "transactional.id": f"x-{t}"})
    p.init_transactions(30)
    for ids, commit in (([1], True), ([2], False), ([3], True)):
        p.begin_transaction()
        for k, v in records(ids):
            p.produce(t, v, k)
        (p.commit_transaction if commit else p.abort_transaction)(30)
    rows = collect(source(kafka_server, topics=[t]), str(tmp_path), parallelism=1)
    assert sorted(r[2] for r in rows) == [1, 3]


def test_a_bad_record_in_a_take_of_many_partitions_goes_alone_to_the_dead_letters(
        kafka_server, tmp_path):
    """One reader, three partitions: a take holds records of all three, decoded in one call
    of the json format's columnar reader (declared columns).  A record that does not fit
    (``id`` not a number) sends that call to the per-message path: it alone is a dead letter,
    named by its own partition and offset, and every other record of every partition is
    emitted once."""
    t = kafka_server.create_topic(partitions=3)
    for p in range(3):
        rows = records(range(p * 100, p * 100 + 20))
        if p == 1:
            rows[5] = (b"k", b'{"id": "not a number", "v": "x"}')
        kafka_server.produce(t, rows, partition=p)
    dlq = DeadLetterQueue("all", str(tmp_path / "dlq"), "p")
    rows = collect(source(kafka_server, topics=[t], **{"format-options": {
        "columns": {"id": "BIGINT", "v": "STRING"}, "primary-key": ["id"]}}),
        str(tmp_path / "a"), parallelism=1, dead_letter=dlq)
    expected = [i for p in range(3) for i in range(p * 100, p * 100 + 20) if i != 105]
    assert sorted(r[2] for r in rows) == expected and set(rows.values()) == {1}
    assert dlq.count == 1
    line = json.loads((tmp_path / "dlq" / "p.deadletter.jsonl").read_text())
    assert line["origin"] == f"kafka:{t}/1/5"
