"""A wedge never goes unnoticed: a sink that stops acknowledging makes every checkpoint time
out; after ``checkpoint.tolerable-failures`` of them in a row the hub says which subtask it
waited for and restarts from the latest checkpoint, and the run ends with every row once."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.e2e.lake import lake_rows

pytestmark = pytest.mark.e2e

ROWS = 9000

PIPELINE = """
[pipeline]
name = "wedged"
parallelism = 2
[checkpoint]
interval = "200ms"
timeout = "500ms"
tolerable-failures = 2
dir = "{d}/state"
[restart]
delay = "100ms"
[source]
type = "datagen"
rows = {rows}
rows-per-second = 1500
batch-size = 100
[sink]
type = "files"
path = "{d}/lake"
"""

#: The sink subtasks hold checkpoint 3 for a minute (as writers stuck on a lock would), once
#: per process (:mod:`runtime.faults`): checkpoints 3, 4 and 5 time out; the restart's
#: checkpoint 3 goes through, as after a restart that released the lock.
WEDGE = {"HUB_DELAY_AT": "sink-ack:3:60"}


def test_a_wedged_sink_is_restarted_and_the_run_ends_exactly_once(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text(PIPELINE.format(d=tmp_path, rows=ROWS))
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "hub", "run", str(p), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **WEDGE})
    try:
        _, err = proc.communicate(timeout=50)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"the wedged pipeline ran on without a word:\n{err}") from None
    assert proc.returncode == 0, err
    assert time.monotonic() - started < 50
    failed = [ln for ln in err.splitlines() if "restarting from the latest checkpoint" in ln]
    assert len(failed) == 1, err
    assert "3 checkpoints in a row failed (checkpoint.tolerable-failures = 2); last: checkpoint " \
           in failed[0], failed[0]
    assert "timed out after 0.5s waiting for sink subtask" in failed[0], failed[0]
    assert "(sinks.files writer)" in failed[0], failed[0]
    assert "finished: " in err, err
    rows = lake_rows(str(tmp_path / "lake"))
    ids = [k[2] for k in rows]  # datagen ids: unique per insert
    assert len(ids) == ROWS and len(set(ids)) == ROWS, (len(ids), len(set(ids)))
    assert set(rows.values()) == {1}, "rows written twice"
