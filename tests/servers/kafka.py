"""A throwaway Apache Kafka broker (4.x, KRaft: broker and controller in one JVM, from Maven
Central through :mod:`tests.servers.maven`) on free ports with its own data folder, or the
broker named by ``HUB_TEST_KAFKA`` (``host:port``, e.g. docker-compose's Apache Kafka at
``127.0.0.1:9092``).

:meth:`KafkaServer.transactional_log` reads a partition's log with its transaction markers
(:mod:`tests.servers.kafka_log`): the exactly-once tests compare with it besides what a
read_committed consumer sees, so a record of an aborted transaction in the log is told apart.
"""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass

from tests.servers.common import (RestartableServer, free_port, shared_server, stop_server,
                                   wait_until)


@dataclass(frozen=True)
class KafkaServer:
    bootstrap: str

    def create_topic(self, name: str | None = None, partitions: int = 1,
                     exist_ok: bool = False) -> str:
        """A new topic (a unique name when none is given); ``exist_ok``: or the one there
        (a producer's first record may have had the broker create it)."""
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import AdminClient, NewTopic

        name = name or f"t-{uuid.uuid4().hex[:10]}"
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        for f in admin.create_topics([NewTopic(name, partitions, 1)]).values():
            try:
                f.result(30)
            except KafkaException as exc:
                if not (exist_ok and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS):
                    raise
                return name
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
        (:mod:`tests.servers.kafka_log`)."""
        from confluent_kafka.admin import AdminClient

        from tests.servers.kafka_log import read_log

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        committed, still_open = [], []
        for p in sorted(admin.list_topics(topic, timeout=10).topics[topic].partitions):
            c, o = read_log(self.bootstrap, topic, p)
            committed.extend(c)
            still_open.extend(o)
        return committed, still_open


#: The broker's settings besides its ports and folder: one node, internal topics of one
#: replica and one partition (the first transaction and the first consumer group create them:
#: 50 partitions each by default, seconds on a 2-core machine), few threads, no delay before
#: the first rebalance, no waiting at a controlled shutdown.
SETTINGS = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.listener.names": "CONTROLLER",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "inter.broker.listener.name": "PLAINTEXT",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
    "num.network.threads": "2",
    "num.io.threads": "4",
    "background.threads": "2",
    "group.coordinator.threads": "1",
    "num.recovery.threads.per.data.dir": "1",
    "log.cleaner.dedupe.buffer.size": str(8 << 20),
    "log.index.size.max.bytes": str(1 << 20),
    "controlled.shutdown.enable": "false",
    # a broker killed and started again registers anew only once the controller fenced its
    # previous incarnation, when its session expired (9 s by default)
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    # the tests' transactional producers ask for up to 15 minutes
    "transaction.max.timeout.ms": "900000",
    # never delete records: the tests' event times lie days back (datagen's start at a fixed
    # date), and the default retention (7 days, by record timestamp) would delete them while
    # a test reads them
    "log.retention.ms": "-1",
}

#: A small heap and the serial collector (a 2-core machine shared with the other servers and
#: the hub's processes: parallel collector threads only compete with them), the JIT's first
#: tier only (the broker's start is mostly class loading and interpreting; C1 code is fast
#: enough for the tests' volumes), and no JMX agent.
JVM = ["-Xms256m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
       "-XX:-UsePerfData", "-Djava.awt.headless=true",
       "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
       "-Dorg.slf4j.simpleLogger.showDateTime=true"]

#: A fixed cluster id: every throwaway broker has its own data folder anyway.
CLUSTER_ID = "aHViLXRlc3RzLWthZmthMQ"


class ThrowawayKafka(RestartableServer):
    """``kafka.Kafka`` of its own: ``start`` formats its data folder and starts it,
    ``kill`` ends the process with SIGKILL (as a crash: no clean shutdown, open transactions
    left in the log) and ``restart`` starts it again on the same ports and data folder, for
    tests of a broker failing in the middle of a stream; ``stop`` ends it and removes its
    folder.  ``jvm`` replaces :data:`JVM` (the benchmark runs the JIT's every tier)."""

    def __init__(self, jvm: list[str] | None = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="hub-kafka-")
        self.port, self.controller_port = free_port(), free_port()
        self.jvm = JVM if jvm is None else jvm
        self.proc: subprocess.Popen | None = None
        self.log = os.path.join(self.dir, "kafka.log")
        self.config = os.path.join(self.dir, "server.properties")
        #: seconds from the process start to the broker answering metadata (the last start)
        self.started_in = 0.0
        self._dumping: tuple[str, str] | None = None  # (being written, final) class archive

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _java(self, main: str, *args: str, dump: bool = True) -> list[str]:
        from tests.servers import maven

        java, jars = maven.java(17), maven.jars("kafka")
        return [java, *self.jvm, *self._class_archive(java, jars, dump), "-cp",
                os.path.join(jars, "*"), main, *args]

    def _class_archive(self, java: str, jars: str, dump: bool) -> list[str]:
        """Java's class data sharing: the classes a broker loaded, as the JVM keeps them in
        memory, dumped into an archive beside the jars when the first broker exits cleanly
        and mapped by every later start (which then takes about 40% less time).  One
        archive per JDK and JVM options; an archive the JVM can't use is ignored by it."""
        key = hashlib.sha256("\0".join([os.path.realpath(java), *self.jvm]).encode())
        archive = os.path.join(jars, f"classes-{key.hexdigest()[:12]}.jsa")
        if os.path.exists(archive):
            return [f"-XX:SharedArchiveFile={archive}"]
        if not dump:
            return []
        if self._dumping is None:
            self._dumping = (f"{archive}.{os.getpid()}-{uuid.uuid4().hex[:6]}", archive)
        return [f"-XX:ArchiveClassesAtExit={self._dumping[0]}"]

    def start(self) -> KafkaServer:
        c = f"127.0.0.1:{self.controller_port}"
        settings = {**SETTINGS, "controller.quorum.voters": f"1@{c}",
                    "listeners": f"PLAINTEXT://{self.bootstrap},CONTROLLER://{c}",
                    "advertised.listeners": f"PLAINTEXT://{self.bootstrap}",
                    "log.dirs": os.path.join(self.dir, "data")}
        with open(self.config, "w") as f:
            f.writelines(f"{k}={v}\n" for k, v in settings.items())
        fmt = subprocess.run(self._java("kafka.tools.StorageTool", "format", "-t", CLUSTER_ID,
                                        "-c", self.config, dump=False),
                             capture_output=True, text=True)
        if fmt.returncode != 0:
            raise RuntimeError(f"formatting Kafka's data folder failed:\n"
                               f"{(fmt.stdout + fmt.stderr)[-3000:]}")
        self._launch()
        server = KafkaServer(self.bootstrap)
        _warm_up(server)
        return server

    def _launch(self) -> None:
        from confluent_kafka.admin import AdminClient

        started = time.monotonic()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self._java("kafka.Kafka", self.config),
                                         stdout=out, stderr=subprocess.STDOUT)
        # quiet: the connections refused until the broker listens are expected
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})

        def ready() -> bool:  # the broker is registered and unfenced: it names itself
            return bool(admin.list_topics(timeout=1).brokers)

        wait_until(ready, 90, "Apache Kafka", self.proc, self.log)
        self.started_in = time.monotonic() - started

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        stop_server(proc, self.dir)
        if self._dumping is None or not os.path.exists(self._dumping[0]):
            return
        if proc is not None and proc.returncode == -signal.SIGKILL:
            os.remove(self._dumping[0])  # killed while writing it, maybe
        else:
            os.replace(*self._dumping)  # whole or not at all, for brokers starting meanwhile


def _warm_up(server: KafkaServer) -> None:
    """One transaction committing a consumer-group offset: the broker creates and loads its
    transaction and group coordinators' topics now (a second or two), not in the middle of the
    first test using them, whose checkpoints would time out meanwhile."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    topic = server.create_topic("hub-warm-up")
    p = Producer({"bootstrap.servers": server.bootstrap, "transactional.id": "hub-warm-up",
                  "log_level": 3})
    c = Consumer({"bootstrap.servers": server.bootstrap, "group.id": "hub-warm-up"})
    try:
        p.init_transactions(60)
        p.begin_transaction()
        p.produce(topic, b"warm-up")
        p.send_offsets_to_transaction([TopicPartition(topic, 0, 1)],
                                      c.consumer_group_metadata(), 60)
        p.commit_transaction(60)
    finally:
        c.close()


def from_env() -> KafkaServer | None:
    bootstrap = os.environ.get("HUB_TEST_KAFKA")
    return KafkaServer(bootstrap) if bootstrap else None


def shared() -> KafkaServer:
    """The one broker of this test process (see :func:`tests.servers.common.shared_server`):
    ``HUB_TEST_KAFKA``'s, else a :class:`ThrowawayKafka` stopped at exit."""
    return shared_server("kafka", from_env, ThrowawayKafka)
