"""The Kafka sink factory (``type = "kafka"``)."""
from __future__ import annotations

from typing import Any, ClassVar

from runtime.errors import HubError
from runtime.sink import Committer, Sink, SinkWriter, WriterContext
from sinks.kafka.committer import KafkaCommitter
from sinks.kafka.config import KafkaSinkConfig
from sinks.kafka.writer import KafkaWriter
from sinks.noop import NoOpCommitter


class KafkaSink(Sink):
    """Change events as Kafka records: topic from a template by table, key = primary key,
    value in the chosen format, partitioned by key (murmur2, as the Java client) so per-key
    order holds.  ``delivery = "exactly-once"`` (default) writes in transactions committed
    after each checkpoint (:mod:`sinks.kafka.transactions`); ``at-least-once`` flushes at
    checkpoints; ``none`` doesn't wait."""

    config_class: ClassVar = KafkaSinkConfig

    def __init__(self, config: KafkaSinkConfig):
        self.config = config

    def check(self) -> None:
        """The brokers answer (within 10 seconds)."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        conf = {k: v for k, v in self.config.producer_config().items()
                if k.startswith(("bootstrap.", "security.", "sasl.", "ssl."))}
        try:
            AdminClient(conf).list_topics(timeout=10)
        except KafkaException as exc:
            raise HubError(f"kafka sink: no broker answers at {self.config.bootstrap_servers}: "
                           f"{exc.args[0].str()}") from None

    def create_writer(self, context: WriterContext, state: dict[str, Any] | None) -> SinkWriter:
        return KafkaWriter(self.config, context)

    def create_committer(self) -> Committer:
        if self.config.delivery != "exactly-once":
            return NoOpCommitter()
        return KafkaCommitter(self.config)
