"""The log reader the exactly-once tests compare with (tests/servers/kafka_log.py) tells
committed records from those of aborted and of open transactions by the transaction
markers, independently of the consumer's read_committed view it is compared with."""
from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.kafka]


def test_log_tells_committed_from_aborted_and_open(kafka_server):
    from confluent_kafka import Producer

    topic = kafka_server.create_topic(partitions=2)
    kafka_server.produce(topic, [(b"k", b"plain")], partition=0)
    p = Producer({"bootstrap.servers": kafka_server.bootstrap, "transactional.id": topic})
    p.init_transactions(30)
    for values, end in (((b"aborted-1", b"aborted-2"), p.abort_transaction),
                        ((b"committed",), p.commit_transaction), ((b"open",), None)):
        p.begin_transaction()
        for v in values:
            for partition in (0, 1):
                p.produce(topic, v, b"k", partition)
        p.flush(30)
        if end is not None:
            end(30)
    committed, still_open = kafka_server.transactional_log(topic)
    assert [(r.value, r.transactional) for r in committed] == [
        (b"plain", False), (b"committed", True), (b"committed", True)]
    assert [r.value for r in still_open] == [b"open", b"open"]
    p.abort_transaction(30)
