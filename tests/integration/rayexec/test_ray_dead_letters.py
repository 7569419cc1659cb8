"""Dead letters on the Ray executor: readers and writers run in actors, each with its own copy
of the job's dead-letter queue, and what they send there is counted in the driver's metrics
(``hub_dead_letters_total``, the run's summary) as with the local executor."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("ray")

from hub.config import load_pipeline  # noqa: E402
from hub.runner import build_job, make_connectors, make_dead_letter  # noqa: E402
from runtime.checkpoint.storage import CheckpointStorage  # noqa: E402
from runtime.executor.ray.executor import RayExecutor  # noqa: E402
from runtime.metrics import PipelineMetrics  # noqa: E402
from tests.servers.ray import ray_cluster  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.ray]

PIPELINE = """
[pipeline]
name = "ray-dead"
parallelism = 2
executor = "ray"
ray-address = "{address}"
[checkpoint]
interval = "200ms"
dir = "{dir}/state"
[errors]
tolerance = "all"
[source]
type = "files"
path = "{dir}/in/*.csv"
format = "csv"
table = "shop.prices"
columns = {{ id = "INT", price = "DECIMAL(6,2)" }}
primary-key = ["id"]
[sink]
type = "files"
path = "{dir}/lake"
format = "jsonl"
"""


def test_bad_records_in_actors_are_counted_in_the_drivers_metrics(tmp_path):
    (tmp_path / "in").mkdir()
    # one bad price in each file: each file a split, the splits spread over both readers
    (tmp_path / "in" / "a.csv").write_text("id,price\n1,1.50\n2,not a price\n3,3.00\n")
    (tmp_path / "in" / "b.csv").write_text("id,price\n4,4.50\n5,5.5.5\n6,6.00\n")
    path = tmp_path / "pipeline.toml"
    path.write_text(PIPELINE.format(address=ray_cluster().address, dir=tmp_path))
    spec = load_pipeline(str(path))
    metrics = PipelineMetrics(2)
    dead_letter = make_dead_letter(spec, metrics=metrics)  # as hub run makes it
    job = build_job(spec, None, CheckpointStorage(spec.checkpoint.dir), make_connectors(spec),
                    dead_letter)
    assert RayExecutor(metrics=metrics, address=ray_cluster().address).run(job).status == \
        "finished"
    with open(dead_letter.file) as f:  # written by the actors
        written = [json.loads(line)["record"].strip() for line in f]
    assert sorted(written) == ["2,not a price", "5,5.5.5"], written
    assert metrics.dead_letters == 2 and dead_letter.count == 2
    rows = [json.loads(line) for p in (tmp_path / "lake").rglob("*.jsonl")
            for line in p.read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == [1, 3, 4, 6]
