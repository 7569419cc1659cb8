"""``hub run`` of a pipeline on Ray (``[pipeline] executor = "ray"``), in a subprocess: the job's
control runs in its job master's actor, and the driver still shows the job as a local run.

SIGTERM stops it as the local executor stops: a final checkpoint, exit 0, ``stopped`` in the
summary; the summary's and the progress display's counts come from the job master's counters
pulled into the driver (nothing else counts there), and equal what the sink holds.
"""
from __future__ import annotations

import json
import re
import signal
import time

import pytest

pytest.importorskip("ray")

from tests.killing import datagen_pipeline, hub, latest_checkpoint, reaped  # noqa: E402
from tests.servers.ray import ray_cluster  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.ray]

SINK = '[sink]\ntype = "files"\npath = "{lake}"\nformat = "jsonl"\n'


def test_sigterm_stops_a_ray_run_and_its_counts_reach_the_driver(tmp_path):
    state = tmp_path / "state"
    path = datagen_pipeline(tmp_path / "pipeline.toml", SINK.format(lake=tmp_path / "lake"),
                            name="ray-hub-run", state=str(state), rows=10_000_000, rps=20_000)
    text = open(path).read().replace(
        "parallelism = 2\n",
        f'parallelism = 2\nexecutor = "ray"\nray-address = "{ray_cluster().address}"\n', 1)
    with open(path, "w") as f:
        f.write(text)
    # stderr not a terminal: the progress's last draw comes at the end
    with reaped(hub("run", path)) as p:
        deadline = time.monotonic() + 90
        while latest_checkpoint(str(state)) < 1:  # running, and some rows through
            assert p.poll() is None, p.communicate()[1]
            assert time.monotonic() < deadline, "no checkpoint within 90 s"
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        err = p.communicate(timeout=90)[1]
    assert p.returncode == 0, err
    summary = re.search(r"ray-hub-run stopped: ([\d,]+) rows written .* last checkpoint (\d+)",
                        err)
    assert summary, err
    rows, last = int(summary.group(1).replace(",", "")), int(summary.group(2))
    assert last == latest_checkpoint(str(state)) and last > 1  # the final one
    written = sum(1 for f in (tmp_path / "lake").rglob("*.jsonl") if not f.name.startswith(".")
                  for line in f.read_text().splitlines() if json.loads(line))
    assert 0 < rows == written < 10_000_000
    progress = [line for line in err.splitlines() if line.startswith("ray-hub-run: running")]
    assert progress, err
    assert f"last checkpoint #{last} " in progress[-1], progress[-1]
    assert re.search(r"orders +[\d,]+ +[1-9][\d,]*", progress[-1]), progress[-1]
