"""What the service and its metrics cost: datagen -> blackhole run three ways, side by side in
the same run, the order rotated each round:

* ``hub run``: the pipeline alone (the runtime's counters included: they are always on);
* ``hub run --http`` with ``/metrics`` and ``/status`` fetched every ``--scrape`` seconds;
* ``hub serve`` running it, created through the API, with ``/metrics``, every pipeline's status
  (what the page polls) and the page fetched every ``--scrape`` seconds.

    python bench/serve_bench.py [--rows 40000000] [--parallelism 1] [--repeat 3] [--scrape 1]

For each: rows/s over the pipeline's own run time (its summary line), and CPU seconds the
process spent per million rows between the run's start line and its summary line (read from
/proc: what the process itself burnt, much steadier than rows/s on a shared machine).  The
medians are compared.  Last, the cost of the per-batch counters the service reads (rows by
table and op, the last event time) against a bare per-table count.
"""
from __future__ import annotations

import os
import argparse
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
import urllib.request
from collections import defaultdict
from dataclasses import dataclass

from hubrun import _SUMMARY, datagen_pipeline

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SINK = '[sink]\ntype = "blackhole"\n'
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Result:
    rows_per_s: float
    cpu_s_per_mrows: float


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


class Scraper(threading.Thread):
    """Fetches ``urls`` every ``interval`` seconds until stopped."""

    def __init__(self, urls: list[str], interval: float):
        super().__init__(daemon=True)
        self.urls, self.interval = urls, interval
        self.stopped = threading.Event()
        self.fetched = 0

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            for url in self.urls:
                try:
                    with urllib.request.urlopen(url, timeout=5) as r:
                        r.read()
                    self.fetched += 1
                except OSError:
                    pass  # not up yet, or gone: the run's own figures are what count


def _measure(cmd: list[str], log: str, ready=None, scraper: Scraper | None = None,
             end=None) -> Result:
    """Run ``cmd`` (stderr to ``log``); ``ready(proc)`` once it says ``serving on``; CPU read
    at the run's start line (``starting:``) and its summary line."""
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out)
    cpu0 = cpu1 = None
    served = False
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            text = open(log).read()
            if ready and not served and "serving on" in text:
                ready()
                served = True
            if cpu0 is None and "hub: " in text and "starting: " in text:
                cpu0 = _cpu_s(proc.pid)
                if scraper:
                    scraper.start()
            m = _SUMMARY.search(text)
            if m:
                cpu1 = _cpu_s(proc.pid)
                break
            if proc.poll() is not None:
                raise SystemExit(f"{cmd} ended early:\n{text[-3000:]}")
            time.sleep(0.01)
        else:
            raise SystemExit(f"{cmd}: no summary line within 900s")
    finally:
        if scraper:
            scraper.stopped.set()
        if end:
            end(proc)
        proc.wait(120)
    rows, run_s = int(m.group(1).replace(",", "")), float(m.group(2).replace(",", ""))
    return Result(rows / run_s, (cpu1 - cpu0) / rows * 1e6)


def _pipeline(work: str, rows: int, parallelism: int) -> str:
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    path = os.path.join(work, "pipeline.toml")
    with open(path, "w") as f:
        f.write(datagen_pipeline("bench", parallelism, f"{work}/state", rows, SINK))
    return path


def _hub(*args: str) -> list[str]:
    return [sys.executable, "-m", "hub", *args]


def run_plain(work: str, rows: int, p: int, scrape: float) -> Result:
    path = _pipeline(work, rows, p)
    return _measure(_hub("run", path, "--no-progress"), os.path.join(work, "log"))


def run_http(work: str, rows: int, p: int, scrape: float) -> Result:
    path = _pipeline(work, rows, p)
    base = f"http://127.0.0.1:{(port := _free_port())}"
    return _measure(_hub("run", path, "--no-progress", "--http", f"127.0.0.1:{port}"),
                    os.path.join(work, "log"),
                    scraper=Scraper([f"{base}/metrics", f"{base}/status"], scrape))


def run_serve(work: str, rows: int, p: int, scrape: float) -> Result:
    path = _pipeline(work, rows, p)
    base = f"http://127.0.0.1:{(port := _free_port())}"

    def create() -> None:
        with open(path, "rb") as f:
            req = urllib.request.Request(f"{base}/pipelines", data=f.read(), method="POST",
                                         headers={"Content-Type": "application/toml"})
        urllib.request.urlopen(req, timeout=60).read()

    return _measure(_hub("serve", "--state", os.path.join(work, "service"), "--listen",
                         f"127.0.0.1:{port}"), os.path.join(work, "log"), ready=create,
                    scraper=Scraper([f"{base}/metrics", f"{base}/pipelines?expand=status",
                                     f"{base}/"], scrape),
                    end=lambda proc: proc.terminate())


def direct_costs(work: str, scrape: float) -> None:
    """The service's own CPU, measured without a busy pipeline beside it: idle (nothing asked
    of it) and per request, with one (finished) pipeline to report on.  Its share of a core at
    one fetch of each URL every ``scrape`` seconds is what it takes from a pipeline bound to
    one core by the GIL."""
    os.makedirs(work, exist_ok=True)
    path = _pipeline(os.path.join(work, "p"), 10_000, 2)
    base = f"http://127.0.0.1:{(port := _free_port())}"
    log = os.path.join(work, "serve.log")
    with open(log, "w") as out:
        proc = subprocess.Popen(_hub("serve", "--state", os.path.join(work, "service"),
                                     "--listen", f"127.0.0.1:{port}"), stdout=out, stderr=out)
    try:
        while "serving on" not in open(log).read():
            time.sleep(0.05)
        with open(path, "rb") as f:
            urllib.request.urlopen(urllib.request.Request(
                f"{base}/pipelines", data=f.read(), method="POST",
                headers={"Content-Type": "application/toml"}), timeout=60).read()
        while not _SUMMARY.search(open(log).read()):
            time.sleep(0.05)
        time.sleep(1)
        c0, t0 = _cpu_s(proc.pid), time.monotonic()
        time.sleep(10)
        idle = (_cpu_s(proc.pid) - c0) / (time.monotonic() - t0)
        urls = ["/metrics", "/pipelines?expand=status", "/pipelines/bench/status", "/"]
        per: dict[str, float] = {}
        for url in urls:
            for _ in range(20):  # warm
                urllib.request.urlopen(base + url).read()
            c0, n = _cpu_s(proc.pid), 500
            for _ in range(n):
                urllib.request.urlopen(base + url).read()
            per[url] = (_cpu_s(proc.pid) - c0) / n
    finally:
        proc.terminate()
        proc.wait(60)
    print(f"\nthe service's own CPU: idle {idle * 100:.2f}% of a core")
    for url, cpu in per.items():
        print(f"  {url:<26} {cpu * 1000:6.2f} ms CPU per request")
    page = sum(per[u] for u in ("/metrics", "/pipelines?expand=status", "/")) / scrape
    print(f"  fetching /metrics, every status and the page every {scrape}s: "
          f"{(idle + page) * 100:.2f}% of a core (idle included)")


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
    ap.add_argument("--rows", type=int, default=40_000_000)
    ap.add_argument("--parallelism", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8192, help="datagen's batch-size (default)")
    ap.add_argument("--scrape", type=float, default=1.0, help="seconds between fetches")
    ap.add_argument("--rate", type=float, default=5_000_000,
                    help="with --direct-only: the rows/s the counters' share is told at")
    ap.add_argument("--direct-only", action="store_true",
                    help="only the service's own CPU (idle, per request) and the counters")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="hub-serve-bench-")
    modes = {"hub run": run_plain, "hub run --http": run_http, "hub serve": run_serve}
    results: dict[str, list[Result]] = {name: [] for name in modes}
    names = list(modes)
    try:
        for i in range(0 if args.direct_only else args.repeat):
            # each round starts with another mode: a drift of the machine's load over a round
            # favours none of them
            for name in names[i % len(names):] + names[:i % len(names)]:
                r = modes[name](os.path.join(work, re.sub(r"\W", "", name)), args.rows,
                                args.parallelism, args.scrape)
                results[name].append(r)
                print(f"  round {i + 1}: {name:<15} {r.rows_per_s:>12,.0f} rows/s "
                      f"{r.cpu_s_per_mrows:>8.3f} CPU s per million rows", flush=True)
        base_rate = _compare(results, args) if not args.direct_only else args.rate
        direct_costs(os.path.join(work, "direct"), args.scrape)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    full, bare = counter_cost_ns(args.batch)
    per_batch_ns = args.batch / base_rate * 1e9
    print(f"\ncounters per {args.batch}-row batch: {full:,.0f} ns (a bare per-table count: "
          f"{bare:,.0f} ns) = {100 * (full - bare) / per_batch_ns:.2f}% of a batch's time at "
          f"{base_rate:,.0f} rows/s")


def _compare(results: dict[str, list[Result]], args: argparse.Namespace) -> float:
    """Print the medians side by side; returns hub run's rate."""
    med = {n: (statistics.median(r.rows_per_s for r in rs),
               statistics.median(r.cpu_s_per_mrows for r in rs)) for n, rs in results.items()}
    base_rate, base_cpu = med["hub run"]
    print(f"\n({args.rows:,} rows, p={args.parallelism}, fetches every {args.scrape}s, "
          f"medians of {args.repeat})")
    print(f"{'mode':<15} {'rows/s':>12} {'vs run':>8} {'CPU s/Mrows':>12} {'vs run':>8}")
    for name, (rate, cpu) in med.items():
        print(f"{name:<15} {rate:>12,.0f} {100 * (rate / base_rate - 1):>+7.1f}% "
              f"{cpu:>12.3f} {100 * (cpu / base_cpu - 1):>+7.1f}%")
    return base_rate

if __name__ == "__main__":
    main()
