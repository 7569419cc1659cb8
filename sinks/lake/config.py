"""Options every lake-table sink (Delta, Iceberg) shares; each adds where its tables live."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from runtime.config import ConnectorConfig, Duration, Size
from sinks.lake.partition import PartitionField, parse_partition_by


class LakeSinkConfig(ConnectorConfig):
    """Base of the lake-table sinks' option models (see :mod:`sinks.lake`)."""

    write_mode: Literal["upsert", "append"] = Field(
        "upsert",
        description="upsert: a table with a primary key holds the source table's current "
                    "state (each checkpoint's changes merged by key, the last change of a key "
                    "wins); append: every change becomes a row with op, ts_ms and seq (the "
                    "source order: binlog position, Kafka offset, file offset). Tables without "
                    "a primary key always get change rows.")
    partition_by: list[str] = Field(
        default_factory=list,
        description="Partition fields: column names and transforms of them, e.g. "
                    "[\"region\", \"day(created_at)\", \"bucket(16, id)\", \"truncate(4, sku)\"] "
                    "(year, month, day, hour, bucket, truncate). Columns a table lacks are an "
                    "error for that table.")
    target_file_size: Size = Field(
        "128MB", validate_default=True,
        description="Size the data files written and compacted aim at.")
    stage_data_files: bool = Field(
        True,
        description="Writers write snapshot reads and inserts of unpartitioned tables with a "
                    "primary key straight into the table's data files, which the committer "
                    "adds as they are when their keys collide with nothing (no MERGE, no "
                    "second write: fast snapshots); false: every change goes through the "
                    "write-ahead log and the committer writes the data files.")
    maintenance_interval: Duration = Field(
        "1h", validate_default=True,
        description="How often, while running, small files are compacted and files no longer "
                    "referenced (older than retention) removed; 0 turns maintenance off.")
    retention: Duration = Field(
        "7d", validate_default=True,
        description="How long removed files and old table versions stay readable (time "
                    "travel, readers still on an old version) before maintenance deletes them.")

    @field_validator("partition_by")
    @classmethod
    def _check_partition_by(cls, v: list[str]) -> list[str]:
        parse_partition_by(v)  # raises ValueError naming the item
        return v

    @field_validator("target_file_size")
    @classmethod
    def _positive_size(cls, v: int) -> int:
        if v <= 0:
            raise ValueError("target-file-size must be positive")
        return v

    @field_validator("maintenance_interval", "retention")
    @classmethod
    def _not_negative(cls, v: float) -> float:
        if v < 0:
            raise ValueError("must not be negative")
        return v

    @property
    def partition_fields(self) -> list[PartitionField]:
        """``partition-by``, parsed."""
        return parse_partition_by(self.partition_by)
