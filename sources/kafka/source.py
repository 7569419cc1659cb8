"""The Kafka source factory (``type = "kafka"``)."""
from __future__ import annotations

from typing import Any, ClassVar

from runtime.source import EnumeratorContext, ReaderContext, Source, SourceReader, SplitEnumerator
from sources.kafka.config import KafkaSourceConfig
from sources.kafka.enumerator import KafkaEnumerator, check_brokers
from sources.kafka.reader import KafkaReader
from sources.kafka.split import KafkaPartitionSplit


class KafkaSource(Source):
    """Change events decoded from Kafka records (see :mod:`formats.message` for the formats).

    Splits are topic-partitions; each is read by one subtask (a stable function of topic and
    partition), from the offset in the checkpoint, else from ``startup-mode``.  Records of
    aborted transactions are skipped (``read_committed``).  Offsets are committed to
    ``group-id`` after each completed checkpoint, for monitoring.  Unbounded unless
    ``bounded = "latest-offset"``.  Connects nowhere before :meth:`check`.
    """

    config_class: ClassVar = KafkaSourceConfig
    split_type: ClassVar = KafkaPartitionSplit

    def __init__(self, config: KafkaSourceConfig):
        self.config = config

    @property
    def bounded(self) -> bool:
        return self.config.bounded != "none"

    def check(self) -> None:
        """The brokers answer and the listed topics exist, before the pipeline starts (a
        Flink or Kafka Connect job fails its start on the same): one line naming the brokers.
        No broker answering within 10 seconds, or every broker refusing the connection, is
        transient (retried as ``[restart]`` says, each attempt counted, so a wrong address
        ends the run after the attempts with that line); a listed topic that does not exist
        or refused credentials are terminal.  Without this, the partition discovery ran
        beside the first checkpoints, which completed and reset the restart count: a broker
        down at start was retried for ever, silently at first."""
        check_brokers(self.config)

    def create_enumerator(self, context: EnumeratorContext,
                          state: dict[str, Any] | None) -> SplitEnumerator:
        return KafkaEnumerator(context, self.config, state)

    def create_reader(self, context: ReaderContext) -> SourceReader:
        return KafkaReader(context, self.config)
