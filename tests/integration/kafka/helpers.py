"""Running Kafka connectors in tests: jobs on the local executor and records read back."""
from __future__ import annotations

import json
from collections import Counter
from typing import Any

from runtime.deadletter import DeadLetterQueue
from sinks.kafka.config import KafkaSinkConfig
from sinks.kafka.sink import KafkaSink
from sources.kafka.config import KafkaSourceConfig
from sources.kafka.source import KafkaSource
from tests.conformance.harness import CollectSink, CollectStore, run_job


def source(kafka: Any, **options: Any) -> KafkaSource:
    return KafkaSource(KafkaSourceConfig.model_validate(
        {"bootstrap-servers": kafka.bootstrap, "bounded": "latest-offset", **options}))


def sink(kafka: Any, **options: Any) -> KafkaSink:
    s = KafkaSink(KafkaSinkConfig.model_validate({"bootstrap-servers": kafka.bootstrap,
                                                  **options}))
    s.check()
    return s


def collect(src: KafkaSource, state: str, parallelism: int = 2,
            dead_letter: DeadLetterQueue | None = None) -> Counter:
    store = CollectStore()
    kw = {"dead_letter": dead_letter} if dead_letter is not None else {}
    run_job(src, CollectSink(store), state, parallelism=parallelism, interval_s=0.1, **kw)
    return store.rows()


def exactly_once_sink(kafka: Any, topic: str, prefix: str | None = None) -> str:
    """The ``[sink]`` table of an exactly-once sink of JSON records into ``topic`` (a
    template), transactional ids prefixed ``prefix`` (default: ``topic``)."""
    return (f'[sink]\ntype = "kafka"\nbootstrap-servers = "{kafka.bootstrap}"\n'
            f'topic = "{topic}"\nformat = "json"\n'
            f'transactional-id-prefix = "{prefix or topic}"\n')


def json_records(kafka: Any, topic: str, read_committed: bool = True) -> Counter:
    """(key, value object without ts_ms) of every record, as a multiset."""
    out: Counter = Counter()
    for m in kafka.consume_all(topic, read_committed):
        v = m.value()
        obj = None if v is None else json.loads(v)
        if isinstance(obj, dict):
            obj.pop("ts_ms", None)
        out[(m.key(), json.dumps(obj, sort_keys=True))] += 1
    return out


def by_key(records: Any) -> dict[bytes | None, list[bytes | None]]:
    """Per key, the values of ``records`` (Kafka messages or log records) in their order."""
    out: dict[bytes | None, list[bytes | None]] = {}
    for r in records:
        key, value = (r.key(), r.value()) if callable(r.key) else (r.key, r.value)
        out.setdefault(key, []).append(value)
    return out


def committed_by_key(kafka: Any, topic: str) -> dict[bytes | None, list[bytes | None]]:
    """:func:`by_key` of the records a read_committed consumer must see in ``topic``, read
    from the log (with its transaction markers); asserts that no transaction was left
    open."""
    committed, still_open = kafka.transactional_log(topic)
    assert not still_open, f"{len(still_open)} records of transactions left open"
    return by_key(committed)


def assert_committed_as(kafka: Any, topic: str, reference: dict) -> None:
    """Each key's records in ``topic`` are ``reference`` (:func:`committed_by_key`): each
    record once, in order, in the log and as a read_committed consumer sees them."""
    got = committed_by_key(kafka, topic)
    assert set(got) == set(reference), "keys lost or made up"
    for key, values in reference.items():
        assert got[key] == values, (key, len(got[key]), len(values))
    assert by_key(kafka.consume_all(topic)) == reference
