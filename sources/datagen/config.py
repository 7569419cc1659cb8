"""Options of the datagen source."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from runtime.config import ConnectorConfig, Duration, check_declared_columns
from sources.datagen.tables import TEMPLATES


class DatagenConfig(ConnectorConfig):
    summary = "generated change data (inserts, updates, deletes), deterministic by seed"

    tables: list[str] = Field(["orders"], description=(
        f"built-in tables to generate, each with its own typed columns: {', '.join(TEMPLATES)}"))
    database: str = Field("datagen", description="database part of the generated table ids")
    columns: dict[str, str] | None = Field(None, description=(
        "a custom table instead of the built-ins: column name -> logical type "
        "(e.g. { id = \"BIGINT\", price = \"DECIMAL(10,2)\" })"))
    table: str = Field("custom", description="name of the custom table (with `columns`)")
    primary_key: list[str] = Field([], description=(
        "primary key of the custom table; default: its first column"))
    rows: int | None = Field(None, ge=0, description=(
        "change events per table, then the source ends; omit for an unbounded source"))
    rows_per_second: float = Field(0, ge=0, description=(
        "events per second over all tables and subtasks; 0 = as fast as possible"))
    seed: int = Field(42, description="seed of the generated values: same seed, same data")
    update_ratio: float = Field(0.0, ge=0, le=1, description=(
        "share of events that update an existing row"))
    delete_ratio: float = Field(0.0, ge=0, le=1, description=(
        "share of events that delete an existing row (oldest first; deletes carry the key)"))
    batch_size: int = Field(65536, ge=1, le=1_000_000, description=(
        "events per batch: what a transform and the sink's writer handle in one go. Bigger "
        "batches cost less per row (a transform's Python between its Arrow calls is per "
        "batch) and hold more memory in flight: 64k rows of the orders table are about 15 MB"))
    splits: int | None = Field(None, ge=1, description=(
        "splits per table (default: the pipeline parallelism)"))
    event_time_start: str = Field("now", description=(
        "event time of the first event: ISO-8601 time, or \"now\" (fixed when the pipeline "
        "first starts, then kept in its checkpoints)"))
    event_time_step: Duration = Field(0.001, description=(
        "event time between consecutive events of a table (e.g. \"1ms\")"))
    op: Literal["c", "r"] = Field("c", description=(
        "op of generated inserts: c (insert) or r (snapshot read)"))

    @model_validator(mode="after")
    def _check(self) -> DatagenConfig:
        if self.update_ratio + self.delete_ratio > 1:
            raise ValueError("update-ratio + delete-ratio must not exceed 1")
        if self.columns is not None:
            check_declared_columns(self.columns, self.primary_key)
        else:
            unknown = [t for t in self.tables if t not in TEMPLATES]
            if unknown:
                raise ValueError(f"tables: unknown table {unknown[0]!r}; built-in tables: "
                                 f"{', '.join(TEMPLATES)}")
        return self
