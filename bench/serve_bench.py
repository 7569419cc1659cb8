"""What the service and its metrics cost: datagen -> blackhole throughput run three ways, side
by side in the same run, repeated alternately (best of ``--repeat`` each, the machine being
shared, the order rotated each round):

* ``hub run``: the pipeline alone (the runtime's counters included: they are always on);
* ``hub run --http`` with ``/metrics`` and ``/status`` fetched every ``--scrape`` seconds;
* ``hub serve`` running it, created through the API, with ``/metrics``, the status of every
  pipeline (what the page polls) and the page fetched every ``--scrape`` seconds.

    python bench/serve_bench.py [--rows 3000000] [--parallelism 1] [--repeat 3] [--scrape 1]

Also prints the cost of the per-batch counters the service reads (rows by table and op, the
last event time), per batch and as a share of the per-batch time at the measured rate.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import timeit
import urllib.request
from collections import defaultdict

from hubrun import _SUMMARY, datagen_pipeline, run_hub

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SINK = '[sink]\ntype = "blackhole"\n'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Scraper(threading.Thread):
    """Fetches ``urls`` every ``interval`` seconds until stopped; counts what it fetched."""

    def __init__(self, urls: list[str], interval: float):
        super().__init__(daemon=True)
        self.urls, self.interval = urls, interval
        self.stopped = threading.Event()
        self.fetched = self.failed = 0

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            for url in self.urls:
                try:
                    with urllib.request.urlopen(url, timeout=5) as r:
                        r.read()
                    self.fetched += 1
                except OSError:
                    self.failed += 1  # not up yet, or gone: the run's own rate is what counts


def _pipeline(work: str, name: str, rows: int, parallelism: int) -> str:
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    path = os.path.join(work, "pipeline.toml")
    with open(path, "w") as f:
        f.write(datagen_pipeline(name, parallelism, f"{work}/state", rows, SINK))
    return path


def run_plain(work: str, rows: int, p: int, scrape: float) -> float:
    return run_hub(_pipeline(work, "bench", rows, p)).rows_per_s


def run_http(work: str, rows: int, p: int, scrape: float) -> float:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    scraper = Scraper([f"{base}/metrics", f"{base}/status"], scrape)
    scraper.start()
    try:
        return run_hub(_pipeline(work, "bench", rows, p), "--http", f"127.0.0.1:{port}").rows_per_s
    finally:
        scraper.stopped.set()


def run_serve(work: str, rows: int, p: int, scrape: float) -> float:
    path = _pipeline(work, "bench", rows, p)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = os.path.join(work, "serve.log")
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "hub", "serve", "--state",
                                 os.path.join(work, "service"), "--listen", f"127.0.0.1:{port}"],
                                stdout=out, stderr=out)
    scraper = Scraper([f"{base}/metrics", f"{base}/pipelines?expand=status", f"{base}/"],
                      scrape)
    try:
        _wait(lambda: "serving on" in open(log).read(), 60)
        with open(path, "rb") as f:
            req = urllib.request.Request(f"{base}/pipelines", data=f.read(), method="POST",
                                         headers={"Content-Type": "application/toml"})
        urllib.request.urlopen(req, timeout=30).read()
        scraper.start()
        _wait(lambda: _state(base) == "FINISHED", 600)
    finally:
        scraper.stopped.set()
        proc.terminate()
        proc.wait(60)
    m = _SUMMARY.search(open(log).read())
    if m is None:
        raise SystemExit(f"no summary line in the service's log:\n{open(log).read()[-3000:]}")
    return int(m.group(1).replace(",", "")) / float(m.group(2).replace(",", ""))


def _state(base: str) -> str | None:
    with urllib.request.urlopen(f"{base}/pipelines/bench/status", timeout=10) as r:
        return json.load(r)["state"]


def _wait(pred, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.1)


def counter_cost_ns(batch: int) -> tuple[float, float]:
    """ns per batch of ``batch`` inserts of the counters as they are (rows by table and op,
    event time) and of the bare per-table count they grew from."""
    from runtime.metrics import PipelineMetrics

    m = PipelineMetrics(1)
    ops = "c" * batch
    full = min(timeit.repeat(lambda: m.record_in(0, "db.orders", ops, 1_700_000_000_000),
                             number=100_000, repeat=5)) / 100_000 * 1e9
    counts: defaultdict[str, int] = defaultdict(int)

    def bare() -> None:
        counts["db.orders"] += len(ops)
    base = min(timeit.repeat(bare, number=100_000, repeat=5)) / 100_000 * 1e9
    return full, base


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=3_000_000)
    ap.add_argument("--parallelism", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8192, help="datagen's batch-size (default)")
    ap.add_argument("--scrape", type=float, default=1.0, help="seconds between fetches")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="hub-serve-bench-")
    modes = {"hub run": run_plain, "hub run --http": run_http, "hub serve": run_serve}
    best: dict[str, float] = {}
    try:
        names = list(modes)
        for i in range(args.repeat):
            # each round starts with another mode: a drift of the machine's load over a round
            # favours none of them
            for name in names[i % len(names):] + names[:i % len(names)]:
                fn = modes[name]
                rate = fn(os.path.join(work, re.sub(r"\W", "", name)), args.rows,
                          args.parallelism, args.scrape)
                best[name] = max(best.get(name, 0.0), rate)
                print(f"  round {i + 1}: {name:<15} {rate:>12,.0f} rows/s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = best["hub run"]
    print(f"\n{'mode':<15} {'rows/s (best)':>14} {'vs hub run':>11}   "
          f"({args.rows:,} rows, p={args.parallelism}, fetch every {args.scrape}s)")
    for name, rate in best.items():
        print(f"{name:<15} {rate:>14,.0f} {100 * (rate / base - 1):>+10.1f}%")
    full, bare = counter_cost_ns(args.batch)
    per_batch_ns = args.batch / base * 1e9
    print(f"\ncounters per {args.batch}-row batch: {full:,.0f} ns (a bare per-table count: "
          f"{bare:,.0f} ns) = {100 * (full - bare) / per_batch_ns:.2f}% of a batch's time at "
          f"{base:,.0f} rows/s")


if __name__ == "__main__":
    main()
