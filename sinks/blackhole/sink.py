"""The blackhole sink factory (``type = "blackhole"``) and its writer."""
from __future__ import annotations

import logging
from typing import Any, ClassVar

from runtime.batch import ChangeBatch
from runtime.sink import Committable, Committer, Sink, SinkWriter, WriterContext
from sinks.blackhole.config import BlackholeSinkConfig
from sinks.noop import NoOpCommitter

log = logging.getLogger(__name__)


class BlackholeSinkWriter(SinkWriter):
    """Counts and drops batches without looking at their rows (no conversion cost)."""

    def __init__(self, context: WriterContext):
        self._subtask = context.subtask
        self.rows = 0
        self.batches = 0

    def write(self, batch: ChangeBatch) -> None:
        self.rows += len(batch)
        self.batches += 1

    def prepare_commit(self, checkpoint_id: int) -> list[Committable]:
        return []

    def close(self) -> None:
        log.info("blackhole sink: subtask %d discarded %d rows in %d batches",
                 self._subtask, self.rows, self.batches)


class BlackholeSink(Sink):
    """Discards everything; its committer commits nothing."""

    config_class: ClassVar[type[BlackholeSinkConfig]] = BlackholeSinkConfig

    def __init__(self, config: BlackholeSinkConfig):
        self.config = config

    def create_writer(self, context: WriterContext, state: dict[str, Any] | None) -> SinkWriter:
        return BlackholeSinkWriter(context)

    def create_committer(self) -> Committer:
        return NoOpCommitter()
