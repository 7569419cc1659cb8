"""The runtime's counters as Prometheus metrics, built at scrape time.

A custom ``prometheus_client`` collector reads every pipeline's
:class:`~runtime.metrics.PipelineMetrics` when ``/metrics`` is scraped: the hot path keeps its
plain per-subtask counters and pays nothing for Prometheus.  Every metric carries a
``pipeline`` label; rows carry ``table`` (and ``op`` for rows in), queues ``subtask``.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from hub.service.handle import STATES, PipelineHandle

PREFIX = "hub"


class HubCollector(Collector):
    """Collects the metrics of the pipelines ``handles()`` returns."""

    def __init__(self, handles: Callable[[], Iterable[PipelineHandle]]):
        self.handles = handles

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        f = _Families()
        for h in self.handles():
            _collect_one(h, f, now)
        yield from f.all()


def registry_for(handles: Callable[[], Iterable[PipelineHandle]]) -> CollectorRegistry:
    """A registry of its own (not the process-global one) holding the hub's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(handles))
    return registry


class _Families:
    def __init__(self) -> None:
        self._all: dict[str, Metric] = {}

    def counter(self, name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
        if name not in self._all:
            self._all[name] = CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)
        return self._all[name]  # type: ignore[return-value]

    def gauge(self, name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
        if name not in self._all:
            self._all[name] = GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)
        return self._all[name]  # type: ignore[return-value]

    def all(self) -> Iterable[Metric]:
        return self._all.values()


def _collect_one(h: PipelineHandle, f: _Families, now: float) -> None:
    m, p = h.metrics, h.name
    state = h.current_state()
    g = f.gauge("pipeline_state", "1 for the state the pipeline is in", ["pipeline", "state"])
    for s in STATES:
        g.add_metric([p, s], 1.0 if s == state else 0.0)
    f.gauge("pipeline_parallelism", "Subtasks per operator", ["pipeline"]).add_metric(
        [p], m.parallelism)
    f.gauge("pipeline_uptime_seconds", "Seconds since the current run started",
            ["pipeline"]).add_metric([p], now - m.started_at)

    rows_in = f.counter("records_in", "Change events emitted by the source",
                        ["pipeline", "table", "op"])
    for (table, op), n in m.ops_totals().items():
        rows_in.add_metric([p, table, op], n)
    rows_out = f.counter("records_out", "Change events the sink's writers received (after "
                         "transforms and routes, under the sink's table names)",
                         ["pipeline", "table", "op"])
    for (table, op), n in m.ops_totals("out").items():
        rows_out.add_metric([p, table, op], n)

    lag = m.event_time_lag_s(now)
    if lag is not None:
        f.gauge("event_time_lag_seconds", "Now minus the source commit time of the newest "
                "change emitted", ["pipeline"]).add_metric([p], lag)
    idle = m.idle_s(now)
    if idle is not None:
        f.gauge("seconds_since_last_event", "Seconds since the source last emitted a change",
                ["pipeline"]).add_metric([p], idle)
    wm = m.watermark_ms
    if wm is not None and wm < 2**62:
        f.gauge("watermark_lag_seconds", "Now minus the watermark of the last checkpoint",
                ["pipeline"]).add_metric([p], max(0.0, now - wm / 1000))
    gauges = m.gauge_values()
    if "binlog_lag_s" in gauges:
        f.gauge("fetch_lag_seconds", "How far behind the source's log the reader fetches",
                ["pipeline"]).add_metric([p], gauges["binlog_lag_s"])
    for key, name, doc in (("snapshot_chunks_done", "snapshot_chunks_finished",
                            "Snapshot chunks finished"),
                           ("snapshot_chunks_started", "snapshot_chunks_assigned",
                            "Snapshot chunks handed out to readers"),
                           ("snapshot_tables_done", "snapshot_tables_finished",
                            "Tables whose snapshot is complete"),
                           ("snapshot_tables_remaining", "snapshot_tables_remaining",
                            "Tables whose snapshot is still to read")):
        if key in gauges:
            f.gauge(name, doc, ["pipeline"]).add_metric([p], gauges[key])
    conn = f.gauge("connector_gauge", "Gauges the connectors report", ["pipeline", "name"])
    for name, value in gauges.items():
        conn.add_metric([p, name], value)

    f.counter("checkpoints_completed", "Checkpoints completed in this run",
              ["pipeline"]).add_metric([p], m.checkpoints_completed)
    f.counter("checkpoints_failed", "Checkpoints that timed out or could not be stored",
              ["pipeline"]).add_metric([p], m.checkpoints_failed)
    cp = m.last_checkpoint
    if cp is not None:
        f.gauge("last_checkpoint_id", "Id of the newest completed checkpoint",
                ["pipeline"]).add_metric([p], cp.checkpoint_id)
        f.gauge("last_checkpoint_duration_seconds", "Trigger to durable, newest checkpoint",
                ["pipeline"]).add_metric([p], cp.duration_s)
        f.gauge("last_checkpoint_age_seconds", "Seconds since the newest checkpoint completed",
                ["pipeline"]).add_metric([p], now - cp.completed_at)
        size = h.checkpoint_size(cp.checkpoint_id)
        if size is not None:
            f.gauge("last_checkpoint_size_bytes", "Bytes of the newest checkpoint's metadata",
                    ["pipeline"]).add_metric([p], size)

    queued = f.gauge("queue_batches", "Batches buffered before the sink subtask",
                     ["pipeline", "subtask"])
    fill = f.gauge("queue_fill_ratio", "Buffered batches over capacity (1: the source waits, "
                   "backpressure)", ["pipeline", "subtask"])
    waited = f.counter("backpressure_seconds", "Seconds the source subtask waited for room "
                       "before its sink subtask in this run (backpressure)",
                       ["pipeline", "subtask"])
    for sub in h.subtasks():
        queued.add_metric([p, str(sub["id"])], sub["queued"])
        waited.add_metric([p, str(sub["id"])], sub["backpressure_s"])
        # no queue while no attempt runs: empty, not full
        fill.add_metric([p, str(sub["id"])],
                        sub["queued"] / sub["capacity"] if sub["capacity"] else 0.0)

    f.counter("schema_changes", "Schema changes emitted by the source", ["pipeline"]).add_metric(
        [p], sum(m.schema_changes))
    f.counter("dead_letters", "Records sent to the dead letters", ["pipeline"]).add_metric(
        [p], m.dead_letters)
    f.counter("errors", "Errors met (failures and the errors restarts were made for)",
              ["pipeline"]).add_metric([p], h.error_count)
    f.counter("restarts", "Restarts from the latest checkpoint after transient errors",
              ["pipeline"]).add_metric([p], h.restarts)
