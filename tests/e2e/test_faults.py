"""The hub command meeting faults: a bad record that would wedge the pipeline, a final
checkpoint that never completes, a savepoint that times out."""
from __future__ import annotations

import json
import os
import re
import signal
import time

import pytest

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
