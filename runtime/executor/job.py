"""What an executor runs: a source, a sink and how to checkpoint them."""
from __future__ import annotations

from dataclasses import dataclass, field

from runtime.channel import DEFAULT_CHANNEL_BYTES
from runtime.checkpoint.coordinator import DEFAULT_TOLERABLE_FAILURES
from runtime.checkpoint.storage import CheckpointStorage, CompletedCheckpoint
from runtime.deadletter import DeadLetterQueue
from runtime.sink import Sink
from runtime.source import Source
from runtime.watermark import WatermarkStrategy


@dataclass
class Job:
    """A pipeline ready to run.  ``restore`` is the checkpoint or savepoint to resume from."""

    name: str
    source: Source
    sink: Sink
    storage: CheckpointStorage
    parallelism: int = 1
    checkpoint_interval_s: float = 10.0
    checkpoint_timeout_s: float = 600.0
    #: failed checkpoints in a row before the job fails (transient: the restart strategy runs)
    tolerable_failed_checkpoints: int = DEFAULT_TOLERABLE_FAILURES
    watermarks: WatermarkStrategy = field(default_factory=WatermarkStrategy)
    dead_letter: DeadLetterQueue = field(default_factory=DeadLetterQueue)
    restore: CompletedCheckpoint | None = None
    #: Batches buffered per channel before the producer blocks.
    channel_capacity: int = 8
    #: Bytes (of the batches' Arrow data) buffered per channel before the producer blocks,
    #: whatever the count; None: the count alone bounds a channel.
    channel_bytes: int | None = DEFAULT_CHANNEL_BYTES


@dataclass(frozen=True)
class JobResult:
    """How a run ended: ``finished`` (bounded input done) or ``stopped`` (on request)."""

    status: str
    last_checkpoint: int | None
    savepoint_path: str | None = None
