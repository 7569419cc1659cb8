"""The Kafka source's fetch loop without a broker: a take of real ``confluent_kafka.Message``
objects (the client's own class, built directly) split into runs per partition, in order,
with their fields; error events; trimming a run at a bounded split's end; the collector
paused during a take and left alone when the application turned it off."""
from __future__ import annotations

import gc

import numpy as np
import pytest
from confluent_kafka import KafkaError, Message

from runtime.errors import TerminalError
from sources.kafka.fetcher import _collector_paused, runs_of


def msg(topic: str, partition: int, offset: int) -> Message:
    return Message(topic=topic, partition=partition, offset=offset,
                   key=f"k{offset}".encode(), value=f'{{"id":{offset}}}'.encode(),
                   timestamp=(1, 1000 + offset))


def fields(run) -> tuple:
    return (run.topic, run.partition, run.offsets.tolist(), run.keys, run.values,
            run.timestamps)


def test_one_partition_is_one_run_with_every_field():
    [run] = runs_of([msg("t", 2, o) for o in (5, 6, 9)])
    assert run.offsets.dtype == np.int64
    assert fields(run) == ("t", 2, [5, 6, 9], [b"k5", b"k6", b"k9"],
                           [b'{"id":5}', b'{"id":6}', b'{"id":9}'], [1005, 1006, 1009])


def test_partitions_and_topics_are_split_keeping_each_partitions_order():
    take = [msg("t", 0, 0), msg("t", 1, 0), msg("t", 0, 1), msg("t", 1, 1), msg("t", 0, 2)]
    assert [(r.partition, r.offsets.tolist()) for r in runs_of(take)] == [
        (0, [0, 1, 2]), (1, [0, 1])]
    mixed = [msg("a", 0, 0), msg("b", 0, 7), msg("a", 0, 1), msg("a", 1, 3)]
    assert [fields(r)[:3] for r in runs_of(mixed)] == [
        ("a", 0, [0, 1]), ("b", 0, [7]), ("a", 1, [3])]
    single = runs_of([msg("t", 0, 0), msg("t", 3, 4)])  # one record per partition
    assert [(r.partition, r.values) for r in single] == [(0, [b'{"id":0}']),
                                                         (3, [b'{"id":4}'])]


def test_retriable_errors_are_dropped_and_terminal_ones_raise():
    retriable = KafkaError(KafkaError._TRANSPORT, "broker down", fatal=False, retriable=True)
    take = [msg("t", 0, 0), Message(topic="t", partition=0, error=retriable), msg("t", 0, 1)]
    assert [r.offsets.tolist() for r in runs_of(take)] == [[0, 1]]
    assert runs_of([Message(topic="t", partition=0, error=retriable)]) == []
    terminal = KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "denied", fatal=False,
                          retriable=False)
    with pytest.raises(TerminalError, match=r"^kafka source: consuming at b:9092 \(topic t\[0\]\): "
                                            r"TOPIC_AUTHORIZATION_FAILED: denied \(check"):
        runs_of([msg("t", 0, 0), Message(topic="t", partition=0, error=terminal)], "b:9092")


def test_before_keeps_the_records_below_a_stop_offset():
    [run] = runs_of([msg("t", 0, o) for o in (3, 4, 6, 7)])
    assert run.before(None) is run and run.before(8) is run
    cut = run.before(6)
    assert fields(cut) == ("t", 0, [3, 4], [b"k3", b"k4"], [b'{"id":3}', b'{"id":4}'],
                           [1003, 1004])
    assert len(run.before(5)) == 2 and len(run.before(3)) == 0


def test_the_collector_is_paused_for_a_take_only_when_it_was_on():
    assert gc.isenabled()
    with _collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with _collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the application's choice stays
    finally:
        gc.enable()
    with pytest.raises(ValueError), _collector_paused():
        raise ValueError("a failing take")
    assert gc.isenabled()


def test_one_topic_named_gives_the_runs_of_the_topic_asked_for_each_record():
    take = [msg("t", 0, 0), msg("t", 1, 4), msg("t", 0, 1), msg("t", 0, 3), msg("t", 1, 5)]
    assert [fields(r) for r in runs_of(take, topic="t")] == [fields(r) for r in runs_of(take)]
    assert [r.offsets.tolist() for r in runs_of(take, topic="t")] == [[0, 1, 3], [4, 5]]
