"""The Kafka sink factory (``type = "kafka"``)."""
from __future__ import annotations

from typing import Any, ClassVar

from runtime.errors import ConfigError
from runtime.sink import Committer, Sink, SinkWriter, WriterContext
from sinks.kafka.committer import KafkaCommitter
from sinks.kafka.config import KafkaSinkConfig
from sinks.kafka.writer import KafkaWriter
from sinks.noop import NoOpCommitter
from formats.clients.kafka import kafka_errors


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
        """The brokers answer (within 10 seconds): a broker down is transient (retried as
        [restart] says), refused credentials terminal."""
        from confluent_kafka.admin import AdminClient

        conf = {k: v for k, v in self.config.producer_config().items()
                if k.startswith(("bootstrap.", "security.", "sasl.", "ssl.")) or k == "logger"}
        with kafka_errors("kafka sink", "connecting", self.config.bootstrap_servers):
            AdminClient(conf).list_topics(timeout=10)

    @classmethod
    def check_checkpointing(cls, config: KafkaSinkConfig, interval_s: float,
                            timeout_s: float) -> None:
        """With exactly-once, a transaction stays open from its first record until the
        checkpoint after it is committed: up to one interval plus the time that checkpoint
        may take (``checkpoint.timeout``).  The broker aborts it after transaction-timeout."""
        if config.delivery != "exactly-once":
            return
        need = interval_s + timeout_s
        if config.transaction_timeout <= need:
            raise ConfigError(
                f"{_s(config.transaction_timeout)} is too short for checkpoint.interval "
                f"({_s(interval_s)}) plus checkpoint.timeout ({_s(timeout_s)}): a transaction "
                f"stays open that long; make it longer than {_s(need)} (within the broker's "
                "transaction.max.timeout.ms, 15min by default), or lower checkpoint.interval "
                "or checkpoint.timeout", key="transaction-timeout")

    def create_writer(self, context: WriterContext, state: dict[str, Any] | None) -> SinkWriter:
        return KafkaWriter(self.config, context)

    def create_committer(self) -> Committer:
        if self.config.delivery != "exactly-once":
            return NoOpCommitter()
        return KafkaCommitter(self.config)


def _s(seconds: float) -> str:
    return f"{seconds:g}s"
