"""Running ``hub run`` the way a user does, for the benchmarks: wall time, the pipeline's own
run time and row count (from its summary line), and the process's peak RSS."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

_SUMMARY = re.compile(r"([\d,]+) rows written in ([\d.,]+)s")


@dataclass(frozen=True)
class HubRun:
    rows: int
    run_s: float
    wall_s: float
    peak_rss_mb: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.run_s if self.run_s else float("inf")


def run_hub(pipeline: str, *args: str, cwd: str | None = None) -> HubRun:
    """Run the pipeline to its end; exits with its stderr when it fails."""
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "hub", "run", pipeline, "--no-progress", *args],
                            stderr=subprocess.PIPE, text=True, cwd=cwd)
    peak = [0]
    watcher = threading.Thread(target=_watch_peak, args=(proc.pid, peak), daemon=True)
    watcher.start()
    err = proc.stderr.read()  # read before waiting: a full pipe would block the child
    _, status, usage = os.wait4(proc.pid, 0)
    watcher.join()
    wall = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{pipeline} failed:\n{err[-3000:]}")
    m = _SUMMARY.search(err)
    if m is None:
        raise SystemExit(f"{pipeline}: no summary line in:\n{err[-3000:]}")
    # The child's own high-water mark: ru_maxrss of a child counts its parent's RSS at the
    # fork (Linux carries it over the exec), so a bench holding much data itself would
    # report its own size for every run it starts.
    return HubRun(int(m.group(1).replace(",", "")), float(m.group(2).replace(",", "")), wall,
                  (peak[0] or usage.ru_maxrss) / 1024)


def _watch_peak(pid: int, peak: list[int]) -> None:
    """Keep ``peak[0]`` at the process's VmHWM (KiB) until it is gone: a high-water mark,
    so reading it every 50 ms misses at most the last moments."""
    path = f"/proc/{pid}/status"
    while True:
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak[0] = max(peak[0], int(line.split()[1]))
                        break
                else:
                    return  # a zombie: its memory is gone
        except OSError:
            return
        time.sleep(0.05)


_DATAGEN = """\
[pipeline]
name = "{name}"
parallelism = {parallelism}
[checkpoint]
interval = "1s"
dir = "{state}"
[source]
type = "datagen"
tables = ["orders"]
rows = {rows}
update-ratio = {update_ratio}
delete-ratio = {delete_ratio}
event-time-start = "2026-01-01T00:00:00Z"
"""


def datagen_pipeline(name: str, parallelism: int, state: str, rows: int, sink: str,
                     changes: bool = False, batch_size: int | None = None) -> str:
    """The benchmarks' pipeline text: datagen ``orders`` (7 typed columns; with ``changes``
    20% updates and 10% deletes; ``batch_size`` rows per batch, None: datagen's default),
    exactly-once checkpoints every second, into ``sink`` (TOML starting with ``[sink]``)."""
    return _DATAGEN.format(name=name, parallelism=parallelism, state=state, rows=rows,
                           update_ratio=0.2 if changes else 0,
                           delete_ratio=0.1 if changes else 0) \
        + (f"batch-size = {batch_size}\n" if batch_size else "") + sink


def print_runs(runs: dict, meters: dict, rows: int, bare_s: float, label: str,
               server: str) -> None:
    """The table rows of the hub's runs by parallelism (``runs[p]``: :class:`HubRun` of each
    round; ``meters[p]``: their CPU meter), against the bare client's ``bare_s`` (0: not run),
    then each parallelism's speed-up over the first."""
    rate = {}
    for p, done in runs.items():
        run_s = sum(x.run_s for x in done)
        wall_s = sum(x.wall_s for x in done)
        rss = max(x.peak_rss_mb for x in done)
        rate[p] = rows / run_s
        vs = f"{bare_s / run_s:>8.0%}" if bare_s else f"{'':>8}"
        name = f"{label}, p={p}"
        print(f"{name:<44} {run_s:>8.2f} {rows / run_s:>10,.0f} {vs} {rss:>6.0f} MB")
        print(f"{'  (wall, with process start)':<44} {wall_s:>8.2f} {rows / wall_s:>10,.0f}")
        print(meters[p].line(run_s, server))
    first, *more = list(runs)
    for p in more:
        print(f"p={p} vs p={first}: {rate[p] / rate[first]:.2f}x")
