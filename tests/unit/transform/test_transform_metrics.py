"""``hub_records_out_total{table,op}`` counts what the sink's writer receives: rows after a
transform's filter, under the routed table names (counted per batch)."""
from __future__ import annotations

from collections import defaultdict

from hub.config import load_pipeline
from hub.runner import build_job
from runtime.checkpoint.storage import CheckpointStorage
from runtime.executor.local import LocalExecutor
from runtime.metrics import PipelineMetrics

PIPELINE = """
[pipeline]
name = "metrics"
parallelism = 2
[source]
type = "datagen"
tables = ["orders", "customers"]
rows = 3000
update-ratio = 0.2
delete-ratio = 0.1
[sink]
type = "print"
[checkpoint]
interval = "100ms"
dir = "{state}"
[[transform]]
source-table = 'datagen\\.orders'
projection = "id, status"
filter = "status = 'paid'"
[[route]]
source-table = 'datagen\\.(.*)'
sink-table = "dw.$1"
"""


def test_rows_out_are_the_rows_the_sinks_writer_receives(tmp_path, capsys) -> None:
    path = tmp_path / "p.toml"
    path.write_text(PIPELINE.format(state=tmp_path / "state"))
    spec = load_pipeline(str(path))
    metrics = PipelineMetrics(spec.parallelism)
    job = build_job(spec, None, CheckpointStorage(str(tmp_path / "state")))
    assert LocalExecutor(job, metrics).run().status == "finished"
    printed: dict[str, int] = defaultdict(int)  # rows the print sink's writer received
    for line in capsys.readouterr().out.splitlines():
        _, table, event = line.split(" ", 2)  # "1> dw.orders +I[...]"
        if event[:2] in ("+I", "+U", "-D"):
            printed[table] += 1
    out = metrics.ops_totals("out")
    per_table: dict[str, int] = defaultdict(int)
    for (table, _), n in out.items():
        per_table[table] += n
    assert per_table == printed
    assert sum(metrics.totals()[t][1] for t in printed) == sum(printed.values())
    assert {t for t, _ in out} == {"dw.orders", "dw.customers"}
    ins = metrics.ops_totals("in")
    assert sum(n for (t, _), n in out.items() if t == "dw.orders") < sum(
        n for (t, _), n in ins.items() if t == "datagen.orders")  # the filter dropped some
