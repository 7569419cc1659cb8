"""The hub command as a user runs it: bad input, graceful stop, savepoints, resume, fresh."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.e2e.lake import lake_rows

pytestmark = pytest.mark.e2e

UNBOUNDED = """
[pipeline]
name = "cli-test"
parallelism = 2
[checkpoint]
interval = "300ms"
dir = "{d}/state"
[source]
type = "datagen"
rows-per-second = 5000
batch-size = 250
event-time-start = "2026-11-24T10:00:00Z"
[sink]
type = "files"
path = "{d}/lake"
"""


def hub(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hub", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hub", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_checkpoint(state: str, n: int = 1, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    d = os.path.join(state, "checkpoints")
    while time.monotonic() < deadline:
        if os.path.isdir(d) and len([x for x in os.listdir(d)
                                     if os.path.exists(os.path.join(d, x, "_metadata"))]) >= 1:
            if max(int(x[4:]) for x in os.listdir(d) if x.startswith("chk-")) >= n:
                return
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint {n} within {timeout}s")


def latest_metadata(state: str) -> dict:
    d = os.path.join(state, "checkpoints")
    last = sorted(x for x in os.listdir(d) if os.path.exists(os.path.join(d, x, "_metadata")))[-1]
    with open(os.path.join(d, last, "_metadata")) as f:
        return json.load(f)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("text, expected", [
    ("[pipeline\nname = 'x'", "invalid TOML"),
    ("[pipeline]\nname='x'\n[source]\ntype='datagenn'\n[sink]\ntype='blackhole'", "did you mean 'datagen'"),
    ("[pipeline]\nname='x'\n[source]\ntype='datagen'\nrows='many'\n[sink]\ntype='blackhole'", "source.rows"),
    ("[pipeline]\nname='x'\n[source]\ntype='datagen'\n[sink]\ntype='files'", "sink.path"),
    ("[pipeline]\nname='x'\n[source]\ntype='datagen'\n[sink]\ntype='files'\npath='p'\nformat='parket'", "sink.format"),
])
def test_bad_pipeline_files_give_one_line_and_exit_2(tmp_path, text, expected):
    p = tmp_path / "p.toml"
    p.write_text(text)
    for command in ("validate", "run"):
        result = hub(command, str(p))
        assert result.returncode == 2
        assert expected in one_line_error(result)


def test_unwritable_sink_path_is_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    p = tmp_path / "p.toml"
    p.write_text(f"[pipeline]\nname='x'\n[checkpoint]\ndir='{tmp_path}/state'\n[source]\n"
                 f"type='datagen'\nrows=10\n[sink]\ntype='files'\npath='{blocker}/lake'\n")
    line = one_line_error(hub("run", str(p), "--no-progress"))
    assert str(blocker) in line


def test_sigterm_stops_with_a_final_checkpoint_and_resume_continues(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text(UNBOUNDED.format(d=tmp_path))
    proc = start("run", str(p), "--no-progress")
    wait_for_checkpoint(str(tmp_path / "state"), 2)
    second = hub("run", str(p), "--no-progress")
    assert second.returncode == 1 and "already running" in second.stderr
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped" in err
    meta = latest_metadata(str(tmp_path / "state"))
    assert meta["final"] is True
    first_rows = sum(lake_rows(str(tmp_path / "lake")).values())
    assert first_rows > 0

    proc = start("run", str(p), "--no-progress")
    wait_for_checkpoint(str(tmp_path / "state"), meta["checkpoint_id"] + 2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"resuming from checkpoint {meta['checkpoint_id']}" in err
    rows = lake_rows(str(tmp_path / "lake"))
    assert sum(rows.values()) > first_rows
    ids = [k[2] for k in rows]  # (db, table, id, ...): datagen ids are unique per insert
    assert len(ids) == len(set(ids)), "resume produced duplicates"


def test_savepoint_of_a_running_pipeline_and_start_from_it(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text(UNBOUNDED.format(d=tmp_path))
    assert "not running" in one_line_error(hub("savepoint", str(p)))
    proc = start("run", str(p), "--no-progress", "--stop-with-savepoint", "at-stop")
    wait_for_checkpoint(str(tmp_path / "state"), 1)
    result = hub("savepoint", str(p), "--name", "manual")
    assert result.returncode == 0, result.stderr
    path = result.stdout.strip()
    assert os.path.exists(os.path.join(path, "_metadata"))
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "savepoints/at-stop" in err

    last = latest_metadata(str(tmp_path / "state"))["checkpoint_id"]
    proc = start("run", str(p), "--no-progress", "--from-savepoint", path)
    wait_for_checkpoint(str(tmp_path / "state"), last + 1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"starting from savepoint {path}" in err


def test_fresh_ignores_existing_state(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text(f"[pipeline]\nname='x'\n[checkpoint]\ndir='{tmp_path}/state'\n[source]\n"
                 f"type='datagen'\nrows=1000\n[sink]\ntype='blackhole'\n")
    assert "starting: no checkpoint" in hub("run", str(p), "--no-progress").stderr
    again = hub("run", str(p), "--no-progress")
    assert "resuming from checkpoint 1" in again.stderr and "0 rows written" in again.stderr
    fresh = hub("run", str(p), "--no-progress", "--fresh")
    assert "starting fresh" in fresh.stderr and "1,000 rows written" in fresh.stderr


def test_fresh_start_over_earlier_output_asks_for_a_choice(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text(f"[pipeline]\nname='x'\n[checkpoint]\ndir='{tmp_path}/state'\n[source]\n"
                 f"type='datagen'\nrows=1000\n[sink]\ntype='files'\npath='{tmp_path}/lake'\n")
    assert hub("run", str(p), "--no-progress").returncode == 0
    before = sorted(str(f) for f in (tmp_path / "lake").rglob("part-*"))
    assert before
    for args in (("--fresh",), ()):
        if not args:  # a lost state folder is a fresh start too
            import shutil
            shutil.rmtree(tmp_path / "state")
        refused = hub("run", str(p), "--no-progress", *args)
        assert refused.returncode != 0
        lines = [ln for ln in refused.stderr.splitlines() if "already holds output" in ln]
        assert len(lines) == 1 and "pipeline 'x'" in lines[0] and "--keep-output" in lines[0]
        assert "part file" in lines[0]
        assert sorted(str(f) for f in (tmp_path / "lake").rglob("part-*")) == before
    kept = hub("run", str(p), "--no-progress", "--fresh", "--keep-output")
    assert kept.returncode == 0 and "1,000 rows written" in kept.stderr
    assert len(list((tmp_path / "lake").rglob("part-*"))) > len(before)
    # another pipeline's output in the same folder is not this pipeline's business
    other = tmp_path / "q.toml"
    other.write_text(p.read_text().replace("name='x'", "name='y'").replace("/state", "/state-y"))
    assert hub("run", str(other), "--no-progress").returncode == 0
