"""The Kafka source factory (``type = "kafka"``)."""
from __future__ import annotations

from typing import Any, ClassVar

from runtime.source import EnumeratorContext, ReaderContext, Source, SourceReader, SplitEnumerator
from sources.kafka.config import KafkaSourceConfig
from sources.kafka.enumerator import KafkaEnumerator
from sources.kafka.reader import KafkaReader
from sources.kafka.split import KafkaPartitionSplit


class KafkaSource(Source):
    """Change events decoded from Kafka records (see :mod:`formats.message` for the formats).

    Splits are topic-partitions; each is read by one subtask (a stable function of topic and
    partition), from the offset in the checkpoint, else from ``startup-mode``.  Records of
    aborted transactions are skipped (``read_committed``).  Offsets are committed to
    ``group-id`` after each completed checkpoint, for monitoring.  Unbounded unless
    ``bounded = "latest-offset"``.  Connects nowhere before the pipeline starts.
    """

    config_class: ClassVar = KafkaSourceConfig
    split_type: ClassVar = KafkaPartitionSplit

    def __init__(self, config: KafkaSourceConfig):
        self.config = config

    @property
    def bounded(self) -> bool:
        return self.config.bounded != "none"

    def create_enumerator(self, context: EnumeratorContext,
                          state: dict[str, Any] | None) -> SplitEnumerator:
        return KafkaEnumerator(context, self.config, state)

    def create_reader(self, context: ReaderContext) -> SourceReader:
        return KafkaReader(context, self.config)
