"""The Elasticsearch writer: batches into a write-ahead-log segment at the barrier
(exactly-once), or straight into bulk requests (at-least-once)."""
from __future__ import annotations

from runtime.batch import ChangeBatch
from runtime.sink import WriterContext
from runtime.wal import WalSinkWriter
from sinks.elasticsearch.committer import Applier, RefusedWrites
from sinks.elasticsearch.config import ElasticsearchSinkConfig


class ElasticsearchSinkWriter(WalSinkWriter):
    """Writes the batches of one subtask (see :class:`~runtime.wal.WalSinkWriter`);
    at-least-once sends a bulk request once ``bulk-max-actions`` rows are buffered."""

    sink_name = "elasticsearch"
    container = "index"

    def __init__(self, config: ElasticsearchSinkConfig, context: WriterContext,
                 applier: Applier | None):
        super().__init__(context, config.delivery == "exactly-once", config.bulk_max_actions)
        self._applier = applier

    @property
    def refused_writes(self) -> dict[str, RefusedWrites]:
        """At-least-once: per table, the writes its index refused with 409 (see
        :class:`~sinks.elasticsearch.committer.RefusedWrites`); exactly-once the committer
        counts them."""
        return self._applier.refused if self._applier is not None else {}

    def apply(self, batches: list[ChangeBatch]) -> None:
        assert self._applier is not None
        self._applier.apply(batches, self.context.dead_letter)

    def close(self) -> None:
        super().close()
        if self._applier is not None:
            self._applier.close()
