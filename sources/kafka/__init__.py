"""The Kafka source: topic-partitions as splits, offsets in checkpoints (see source.py)."""
