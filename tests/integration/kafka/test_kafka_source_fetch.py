"""The Kafka source's fetch thread against a real broker: the thread takes records ahead of
the reader, and a checkpoint holds the offsets of the records already emitted, never those
merely fetched; a reader restored from it reads the rest, each record once; closing ends a
thread that waits for room in its queue; client calls made while the thread consumes
(assigning a partition) go through."""
from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.batch import ChangeBatch
from runtime.deadletter import DeadLetterQueue
from runtime.schema import SchemaChange
from runtime.source import InputStatus, ReaderContext, ReaderOutput
from sources.kafka.config import KafkaSourceConfig
from sources.kafka.reader import KafkaReader
from sources.kafka.split import KafkaPartitionSplit
from tests.servers.common import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

ROWS = 100
TAKE = 10  # max-batch-messages: many takes, the thread a few of them ahead


class Ctx(ReaderContext):
    def __init__(self) -> None:
        self.subtask, self.parallelism, self.dead_letter = 0, 1, DeadLetterQueue()

    def send_split_request(self) -> None:
        pass

    def send_event_to_enumerator(self, event: dict[str, Any]) -> None:
        pass


class Out(ReaderOutput):
    def __init__(self) -> None:
        self.ids: list[int] = []
        self.finished: list[str] = []

    def collect(self, batch: ChangeBatch, split_id: str) -> None:
        self.ids += batch.arrow().column("id").to_pylist()

    def collect_schema_change(self, change: SchemaChange, split_id: str) -> None:
        raise AssertionError("declared columns: no schema change")

    def split_finished(self, split_id: str) -> None:
        self.finished.append(split_id)


@pytest.fixture
def topic(kafka_server):
    """One partition whose record ``i`` (at offset ``i``) has id ``i``."""
    t = kafka_server.create_topic(partitions=1)
    kafka_server.produce(t, [(str(i).encode(), json.dumps({"id": i}).encode())
                             for i in range(ROWS)], partition=0)
    return t


def reader(kafka_server, topic: str) -> KafkaReader:
    return KafkaReader(Ctx(), KafkaSourceConfig.model_validate({
        "bootstrap-servers": kafka_server.bootstrap, "topics": [topic],
        "max-batch-messages": TAKE, "format": "json",
        "format-options": {"columns": {"id": "BIGINT"}, "primary-key": ["id"]}}))


def split(topic: str, offset: int = -2) -> KafkaPartitionSplit:
    return KafkaPartitionSplit(KafkaPartitionSplit.id_of(topic, 0), topic, 0, offset, ROWS)


def poll_one_take(r: KafkaReader, out: Out) -> None:
    """Poll until a take was emitted (the fetcher may still be on its first one)."""
    before = len(out.ids)
    while len(out.ids) == before:
        if r.poll_next(out) is InputStatus.NOTHING_AVAILABLE:
            r.wait_available(0.1)


def read_to_end(r: KafkaReader, out: Out) -> None:
    r.notify_no_more_splits()
    for _ in range(1000):
        status = r.poll_next(out)
        if status is InputStatus.END_OF_INPUT:
            return
        if status is InputStatus.NOTHING_AVAILABLE:
            r.wait_available(0.1)
    raise AssertionError("the bounded split did not end")


def test_checkpoint_holds_emitted_offsets_not_fetched_ones(kafka_server, topic):
    r, out = reader(kafka_server, topic), Out()
    r.add_splits([split(topic)])
    r.start()
    try:
        poll_one_take(r, out)
        # the thread fetches ahead until its queue is full: records fetched, not emitted
        wait_until(lambda: r.fetcher.queued() == 2, 10, "takes queued ahead")
        [state] = r.snapshot_state(1)
        assert out.ids == list(range(len(out.ids))) and 0 < len(out.ids) <= TAKE
        assert state.offset == len(out.ids)  # the next record to emit, not to fetch
        first = state.offset
        poll_one_take(r, out)
        poll_one_take(r, out)
        [state2] = r.snapshot_state(2)
        assert state2.offset == len(out.ids) < ROWS
        assert state.offset == first  # a checkpoint's copy does not move on with the reader
        wait_until(lambda: r.fetcher.queued() == 2, 10, "takes queued ahead")
    finally:
        fetcher = r.fetcher
        r.close()
    assert not fetcher.is_alive()  # close ended the thread though it waited for room
    # restored from the first checkpoint: the rest, each record once
    restored, rest = reader(kafka_server, topic), Out()
    restored.add_splits([KafkaPartitionSplit.from_dict(state.to_dict())])
    restored.start()
    try:
        read_to_end(restored, rest)
    finally:
        restored.close()
    assert out.ids[:state.offset] + rest.ids == list(range(ROWS))
    assert rest.finished == [split(topic).split_id]


def test_splits_assigned_while_the_thread_consumes(kafka_server, topic):
    """The partition comes after start: its assignment runs in the fetch thread between two
    takes (from this thread it would wait behind the consume calls)."""
    r, out = reader(kafka_server, topic), Out()
    r.start()
    try:
        assert r.poll_next(out) is InputStatus.NOTHING_AVAILABLE
        r.wait_available(0.2)  # the thread is in its consume loop, with nothing assigned
        r.add_splits([split(topic, offset=40)])
        read_to_end(r, out)
    finally:
        r.close()
    assert out.ids == list(range(40, ROWS)) and out.finished == [split(topic).split_id]
