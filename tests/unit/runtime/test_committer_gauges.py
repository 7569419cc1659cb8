"""A committer's gauges (e.g. writes its store refused) reach the pipeline's metrics after
each checkpoint's commit."""
from __future__ import annotations

from runtime.checkpoint.coordinator import CheckpointCoordinator
from runtime.checkpoint.storage import CheckpointStorage
from runtime.metrics import PipelineMetrics
from runtime.sink import Committer


class CountingCommitter(Committer):
    def __init__(self) -> None:
        self.n = 0

    def commit(self, committables, context):
        self.n += len(committables)
        return []

    def gauges(self) -> dict[str, float]:
        return {"refused_stale_writes": float(self.n)}


def test_committer_gauges_reach_the_metrics(tmp_path):
    storage = CheckpointStorage(str(tmp_path))
    storage.ensure()
    metrics = PipelineMetrics(1)
    coord = CheckpointCoordinator("p", storage, CountingCommitter(), num_sources=1, num_sinks=1,
                                  interval_s=0, timeout_s=60, metrics=metrics)
    for n in (1, 2):
        cp = coord.trigger({})
        coord.ack_source(0, cp.checkpoint_id, [])
        coord.ack_sink(0, cp.checkpoint_id, [{"id": i} for i in range(n)], None, None)
    assert metrics.gauge_values() == {"refused_stale_writes": 3.0}
