"""The HBase writer: batches into a write-ahead-log segment at the barrier (exactly-once), or
straight into Thrift mutations (at-least-once)."""
from __future__ import annotations

from typing import Any

from runtime.batch import ChangeBatch
from runtime.sink import WriterContext
from runtime.versioned import runs
from runtime.wal import WalSinkWriter
from sinks.hbase.committer import Applier, CellClock, check_order
from sinks.hbase.config import HBaseSinkConfig


class HBaseSinkWriter(WalSinkWriter):
    """Writes the batches of one subtask (see :class:`~runtime.wal.WalSinkWriter`).

    At-least-once it writes once ``batch-size`` rows are buffered, at timestamps of its own
    :class:`~sinks.hbase.committer.CellClock` (its last timestamp is the writer's checkpoint
    state), so changes written again after a crash land above what the failed run wrote.
    Exactly-once the committer picks the timestamps.
    """

    sink_name = "hbase"

    def __init__(self, config: HBaseSinkConfig, context: WriterContext,
                 applier: Applier | None, state: dict[str, Any] | None):
        super().__init__(context, config.delivery == "exactly-once", config.batch_size)
        self._applier = applier
        self._config = config
        self._clock = CellClock(int((state or {}).get("last_timestamp", 0)))

    def apply(self, batches: list[ChangeBatch]) -> None:
        assert self._applier is not None
        check_order(self._config, batches)
        merged = runs(batches)
        self._applier.apply(merged, self._clock.reserve(len(merged)))

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any] | None:
        return None if self.exactly_once else {"last_timestamp": self._clock.last}

    def close(self) -> None:
        super().close()
        if self._applier is not None:
            self._applier.close()
