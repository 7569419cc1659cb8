"""The API's documents, as pydantic models: they make the OpenAPI document and are what the
schema tests check responses against."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorBody(BaseModel):
    """Every error answer (Kafka Connect's shape): the status again and one message line;
    ``errors`` lists every problem when a pipeline file has several."""

    error_code: int
    message: str
    errors: list[str] = []


class PipelineInfo(BaseModel):
    name: str
    state: str
    source: str
    sink: str
    parallelism: int


class PipelineDetail(PipelineInfo):
    config: dict[str, Any] = Field(description="The validated configuration, secrets masked.")


class Validation(BaseModel):
    """What ``POST /validate`` finds: ``valid`` and, when not, one line per problem."""

    valid: bool
    name: str | None = None
    source: str | None = None
    sink: str | None = None
    errors: list[str] = []


class TableRows(BaseModel):
    table: str
    rows_in: int
    rows_out: int
    ops: dict[str, int]


class Lag(BaseModel):
    event_time_lag_s: float | None = Field(
        description="Now minus the source commit time of the newest change emitted.")
    fetch_lag_s: float | None = Field(description="How far behind its log the source reads.")
    idle_s: float | None = Field(description="Seconds since the source last emitted a change.")
    watermark_lag_s: float | None


class LastCheckpoint(BaseModel):
    id: int
    completed_at: float
    age_s: float
    duration_s: float
    savepoint: str | None


class Checkpoints(BaseModel):
    completed: int
    failed: int
    restored_from: int | None
    last: LastCheckpoint | None


class Subtask(BaseModel):
    id: int
    source: str
    sink: str
    rows_in: int
    rows_out: int
    queued: int
    capacity: int
    event_time_lag_s: float | None


class ErrorLine(BaseModel):
    at: float
    message: str


class Status(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    state: str
    source: str
    sink: str
    parallelism: int
    uptime_s: float
    rows_in: int
    rows_out: int
    tables: list[TableRows]
    lag: Lag
    checkpoints: Checkpoints
    subtasks: list[Subtask]
    source_position: dict[str, Any] | None = Field(
        description="The split states of the latest checkpoint: where a restart resumes.")
    gauges: dict[str, float]
    schema_changes: int
    dead_letters: int
    restarts: int
    last_error: str | None
    errors: list[ErrorLine]
    savepoint: str | None


class CheckpointEntry(BaseModel):
    id: int
    completed_at: float | None = None
    duration_s: float | None = None
    size_bytes: int | None = None
    path: str | None = None
    savepoint: str | None = None
    retained: bool = Field(description="Still in the checkpoint folder (restorable).")


class CheckpointHistory(BaseModel):
    completed: int
    failed: int
    history: list[CheckpointEntry]
    savepoints: list[str]


class SavepointRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$",
                             description="Folder name of the savepoint (default: generated).")
    stop: bool = Field(False, description="Stop the pipeline once the savepoint is durable.")


class SavepointDone(BaseModel):
    path: str


class Option(BaseModel):
    name: str
    type: str
    default: str
    required: bool
    description: str


class Plugin(BaseModel):
    kind: str
    name: str
    summary: str
    options: list[Option]
    error: str | None
