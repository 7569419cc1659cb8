from collections import defaultdict

from hub.progress import render
from runtime.metrics import PipelineMetrics


def test_gauges_combine_over_reporters_and_show_in_the_display():
    m = PipelineMetrics(2)
    m.set_gauge("reader-0", "binlog_lag_s", 1.5, "max")
    m.set_gauge("reader-1", "binlog_lag_s", 0.5, "max")
    m.set_gauge("reader-0", "snapshot_chunks_done", 3)
    m.set_gauge("reader-1", "snapshot_chunks_done", 4)
    m.set_gauge("reader-1", "snapshot_chunks_done", 5)  # replaces its own earlier value
    assert m.gauge_values() == {"binlog_lag_s": 1.5, "snapshot_chunks_done": 8}
    text = "\n".join(render(m, {}, "p"))
    assert "binlog lag s 1.50" in text and "snapshot chunks done 8" in text


def test_totals_sum_rows_per_table_over_subtasks():
    m = PipelineMetrics(2)
    m.rows_in[0]["a.t"] += 5
    m.rows_in[1]["a.t"] += 7
    m.rows_out[1]["a.t"] += 10
    assert m.totals() == {"a.t": (12, 10)}
    assert isinstance(m.rows_in[0], defaultdict)
