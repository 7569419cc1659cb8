"""A Kafka split: one topic-partition and the offset to read next."""
from __future__ import annotations

from dataclasses import dataclass

from runtime.source import Split

#: ``offset`` value meaning "the partition's earliest offset" (librdkafka's OFFSET_BEGINNING).
EARLIEST = -2


@dataclass
class KafkaPartitionSplit(Split):
    """``offset``: the next offset to read (or :data:`EARLIEST`); ``stop_offset``: a bounded
    split ends there (exclusive), None = never."""

    topic: str = ""
    partition: int = 0
    offset: int = EARLIEST
    stop_offset: int | None = None

    @staticmethod
    def id_of(topic: str, partition: int) -> str:
        return f"{topic}:{partition}"
