"""The hub command meeting faults: a bad record that would wedge the pipeline, a final
checkpoint that never completes, a savepoint that times out."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.e2e.lake import lake_rows
from tests.e2e.test_cli import hub, start, wait_for_checkpoint

pytestmark = pytest.mark.e2e

BAD_LINE = """
[pipeline]
name = "bad-line"
[checkpoint]
interval = "200ms"
dir = "{d}/state"
[source]
type = "files"
path = "{d}/in.jsonl"
format = "jsonl"
columns = {{ id = "BIGINT", v = "STRING" }}
primary-key = ["id"]
[sink]
type = "files"
path = "{d}/lake"
format = "jsonl"
"""


def test_a_bad_record_stops_with_its_id_and_skip_record_goes_on(tmp_path):
    (tmp_path / "in.jsonl").write_text('{"id": 1, "v": "a"}\n{"id": 2, "v": "b"}\n'
                                       'not json at all\n{"id": 4, "v": "d"}\n')
    p = tmp_path / "p.toml"
    p.write_text(BAD_LINE.format(d=tmp_path))
    stopped = hub("run", str(p), "--no-progress")
    assert stopped.returncode == 1, stopped.stderr
    m = re.search(r"in\.jsonl:3: .*--skip-record ([0-9a-f]{16})", stopped.stderr)
    assert m, stopped.stderr
    rid = m.group(1)
    # the same record again: the same id (a restart meets it again, the id still names it)
    assert f"--skip-record {rid}" in hub("run", str(p), "--no-progress").stderr

    went_on = hub("run", str(p), "--no-progress", "--skip-record", rid)
    assert went_on.returncode == 0, went_on.stderr
    assert "finished: 3 rows written" in went_on.stderr
    dead = tmp_path / "state" / "dead-letter" / "bad-line.deadletter.jsonl"
    assert f"1 record sent to the dead letters ({dead})" in went_on.stderr
    (entry,) = [json.loads(line) for line in dead.read_text().splitlines()]
    assert entry["record_id"] == rid and entry["record"] == "not json at all\n"


def test_skip_records_in_the_pipeline_file(tmp_path):
    (tmp_path / "in.jsonl").write_text('{"id": 1, "v": "a"}\nnot json\n')
    p = tmp_path / "p.toml"
    p.write_text(BAD_LINE.format(d=tmp_path))
    rid = re.search(r"--skip-record ([0-9a-f]{16})", hub("run", str(p), "--no-progress").stderr)
    assert rid
    p.write_text(BAD_LINE.format(d=tmp_path) + f'[errors]\nskip-records = ["{rid.group(1)}"]\n')
    went_on = hub("run", str(p), "--no-progress")
    assert went_on.returncode == 0 and "1 record sent to the dead letters" in went_on.stderr


UNBOUNDED = """
[pipeline]
name = "stuck"
parallelism = 2
[checkpoint]
interval = "200ms"
timeout = "1s"
dir = "{d}/state"
[source]
type = "datagen"
rows-per-second = 2000
batch-size = 100
[sink]
type = "files"
path = "{d}/lake"
"""

#: From checkpoint 3 on, a sink subtask takes a minute to acknowledge (as a writer stuck on
#: a lock would): every checkpoint from then on times out.
STUCK = {"HUB_DELAY_AT": "sink-ack:" + ",".join(str(i) for i in range(3, 40)) + ":60"}


def start_stuck(tmp_path, *args):
    p = tmp_path / "p.toml"
    p.write_text(UNBOUNDED.format(d=tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "hub", "run", str(p), "--no-progress", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **STUCK})
    wait_for_checkpoint(str(tmp_path / "state"), 2)
    return p, proc


def test_a_stop_whose_final_checkpoint_never_completes_stops_anyway(tmp_path):
    p, proc = start_stuck(tmp_path)
    proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert time.monotonic() - started < 20, err  # two timeouts, the subtasks' grace
    assert proc.returncode == 1, err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert re.match(r"error: final checkpoint \d+ did not complete within 1s .*stopped without "
                    r"it: the last completed checkpoint 2 is kept", line), line
    # the next run resumes from it, and nothing is lost or written twice
    again = start("run", str(p), "--no-progress")
    wait_for_checkpoint(str(tmp_path / "state"), 4)
    again.send_signal(signal.SIGTERM)
    _, err = again.communicate(timeout=30)
    assert again.returncode == 0 and "resuming from checkpoint 2" in err, err
    rows = lake_rows(str(tmp_path / "lake"))
    ids = [k[2] for k in rows]  # datagen ids: unique per insert
    assert ids and len(ids) == len(set(ids)) and set(rows.values()) == {1}, "rows written twice"


def test_a_second_signal_exits_at_once(tmp_path):
    _, proc = start_stuck(tmp_path)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=5)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "second signal" in err


def test_a_savepoint_that_times_out_is_answered_with_an_error(tmp_path):
    p, proc = start_stuck(tmp_path)
    try:
        started = time.monotonic()
        result = hub("savepoint", str(p), "--name", "late")
        assert time.monotonic() - started < 10, result.stderr
        assert result.returncode == 1
        assert re.search(r"savepoint 'late' failed: checkpoint \d+ timed out after 1s",
                         result.stderr), result.stderr
    finally:
        proc.kill()
        proc.communicate()
