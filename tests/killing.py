"""Running ``hub`` in a subprocess and killing it, for the exactly-once tests of every
connector: random ``kill -9`` and crashes at named points (``HUB_CRASH_AT``, see
``runtime/faults.py``).  Each helper asserts that the failure really happened, so a test
built on them can't pass without proving something."""
from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator


def hub(*args: str, env: dict | None = None, cwd: str | None = None) -> subprocess.Popen:
    """``python -m hub ARGS`` in the background, stdout and stderr captured."""
    return subprocess.Popen([sys.executable, "-m", "hub", *args],
                            env={**os.environ, **(env or {})}, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@contextlib.contextmanager
def reaped(p: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """``p`` for the block; killed and waited for on the way out if it still runs (a failed
    assertion in the block leaves no hub running behind the test)."""
    try:
        yield p
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()


def _wait(p: subprocess.Popen, timeout: float) -> str:
    """Its stderr once it ended; killed when it did not within ``timeout`` (no orphan left
    running after the failed test)."""
    try:
        return p.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise


def run_to_end(pipeline: str, env: dict | None = None, timeout: float = 180,
               cwd: str | None = None) -> str:
    """Run a bounded pipeline to its end; asserts success and returns its stderr."""
    p = hub("run", pipeline, "--no-progress", env=env, cwd=cwd)
    err = _wait(p, timeout)
    assert p.returncode == 0, err
    return err


def run_to_end_resuming(pipeline: str, env: dict | None = None, timeout: float = 180) -> str:
    """:func:`run_to_end`, for pipelines with a short ``checkpoint.timeout``: a run whose
    final checkpoint missed it (a loaded machine) stops keeping its last completed checkpoint,
    and is run again from there, as a user would; returns both runs' stderr."""
    p = hub("run", pipeline, "--no-progress", env=env)
    err = _wait(p, timeout)
    if p.returncode != 0 and re.search(r"final checkpoint \d+ did not complete", err):
        return err + run_to_end(pipeline, timeout=timeout)
    assert p.returncode == 0, err
    return err


def kill_seed() -> int:
    """``HUB_TEST_SEED`` to replay a failing run's kill moments, else a fresh one (printed by
    pytest on failure through the assertion message of :func:`kill_at_random`)."""
    return int(os.environ.get("HUB_TEST_SEED", time.time()))


def latest_checkpoint(state_dir: str) -> int:
    from runtime.checkpoint.storage import CheckpointStorage

    ids = CheckpointStorage(state_dir).completed_ids()
    return ids[-1] if ids else 0


def kill_at_random(pipeline: str, state_dir: str, times: int = 4,
                   between: tuple[float, float] = (0.0, 1.0), min_kills: int = 2,
                   env: dict | None = None, cwd: str | None = None) -> int:
    """Start the pipeline ``times`` times; each time wait until it completed a new checkpoint
    in ``state_dir`` (so every run makes progress, however loaded the machine), then SIGKILL
    it after a random moment within ``between`` seconds.  Asserts that at least ``min_kills``
    kills hit a running pipeline."""
    seed = kill_seed()
    rnd = random.Random(seed)
    kills = 0
    for _ in range(times):
        before = latest_checkpoint(state_dir)
        p = hub("run", pipeline, "--no-progress", env=env, cwd=cwd)
        deadline = time.monotonic() + 60
        while p.poll() is None and latest_checkpoint(state_dir) <= before \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rnd.uniform(*between))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.communicate()
    assert kills >= min_kills, (f"only {kills} kill(s) hit a running pipeline (HUB_TEST_SEED="
                                f"{seed}): the test would prove nothing")
    return kills


def run_through_outage(pipeline: str, state_dir: str, kill, restart, is_down,
                       cwd: str | None = None, timeout: float = 300) -> str:
    """Run ``pipeline`` to its end while a server it writes to dies and comes back: once
    checkpoint 2 is stored, ``kill()`` the server, give the pipeline 2 s to meet it dead, then
    ``restart()`` it (in a thread, as the pipeline goes on).  Asserts the run succeeded and
    returns its log; ``is_down()`` tells the clean-up whether the server still needs starting
    again after a failure."""
    import threading

    p = hub("run", pipeline, "--no-progress", cwd=cwd)
    try:
        deadline = time.monotonic() + 90
        while p.poll() is None and latest_checkpoint(state_dir) < 2 \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        assert p.poll() is None, "the pipeline ended before the server could be killed"
        kill()
        time.sleep(2)  # the pipeline meets the dead server meanwhile
        restarted = threading.Thread(target=restart)
        restarted.start()
        err = p.communicate(timeout=timeout)[1]
        restarted.join()
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
        if is_down():
            restart()
    assert p.returncode == 0, err
    return err


def crash_at(pipeline: str, point: str, checkpoint_id: int | str, timeout: float = 120,
             env: dict | None = None, cwd: str | None = None) -> str:
    """Run until crash point ``point`` of checkpoint ``checkpoint_id`` kills the process;
    asserts it did and returns its log (stderr).  ``"3+"``: the first checkpoint from 3 on
    with something to commit (see :mod:`runtime.faults`)."""
    p = hub("run", pipeline, "--no-progress",
            env={**(env or {}), "HUB_CRASH_AT": f"{point}:{checkpoint_id}"}, cwd=cwd)
    err = _wait(p, timeout)
    assert p.returncode == -signal.SIGKILL, f"crash point {point}:{checkpoint_id} not reached: {err}"
    return err


def resumed_from(err: str) -> int:
    """The checkpoint a run's stderr says it resumed from (0: none).  A crash at
    ``checkpoint-committed:N`` resumes from N or later: commits run beside the checkpoints
    (N+1 may be stored while N commits), and a checkpoint stored while an earlier one was
    being committed holds that one's committables too."""
    found = re.findall(r"resuming from checkpoint (\d+)", err)
    return int(found[-1]) if found else 0


def assert_resumed_after(err: str, point: str, checkpoint_id: int) -> None:
    """After :func:`crash_at` ``point`` of ``checkpoint_id``, the next run (its stderr
    ``err``) resumed where it must: from that very checkpoint after ``checkpoint-stored``
    (stored, never committed), from it or a later one after ``checkpoint-committed``."""
    n = resumed_from(err)
    if point == "checkpoint-committed":
        assert n >= checkpoint_id, f"expected to resume from checkpoint >= {checkpoint_id}: {err}"
    else:
        assert n == checkpoint_id, f"expected to resume from checkpoint {checkpoint_id}: {err}"


DATAGEN_PIPELINE = """\
[pipeline]
name = "{name}"
parallelism = {parallelism}
[checkpoint]
interval = "{interval}"
timeout = "{timeout}"
dir = "{state}"
[source]
type = "datagen"
tables = ["orders", "customers"]
rows = {rows}
rows-per-second = {rps}
batch-size = {batch_size}
update-ratio = {update_ratio}
delete-ratio = {delete_ratio}
event-time-start = "2026-11-24T09:30:00Z"
event-time-step = "20ms"
"""


def datagen_pipeline(path, sink: str, *, name: str, state: str, rows: int, rps: int,
                     interval: str = "200ms", timeout: str = "10min", parallelism: int = 2,
                     batch_size: int = 500, update_ratio: float = 0.2,
                     delete_ratio: float = 0.05) -> str:
    """Write the pipeline file the exactly-once tests share: datagen ``orders`` and
    ``customers`` with updates and deletes (deterministic: fixed event times) into the sink
    given as TOML (starting with ``[sink]``); ``timeout`` is ``checkpoint.timeout``.  Returns
    the file's path."""
    text = DATAGEN_PIPELINE.format(name=name, parallelism=parallelism, interval=interval,
                                   timeout=timeout, state=state, rows=rows, rps=rps,
                                   batch_size=batch_size, update_ratio=update_ratio,
                                   delete_ratio=delete_ratio)
    with open(path, "w") as f:
        f.write(text + sink)
    return str(path)
