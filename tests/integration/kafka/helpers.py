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
