"""The Elasticsearch sink next to the bare client, on the same server in the same run.

    python bench/elasticsearch_bench.py [--rows 1000000] [--round-rows N]
                                        [--url http://localhost:9200] [--parallelism 1[,2...]]
                                        [--delivery exactly-once] [--interval 1s] [--no-bare]

* bare client: ``elasticsearch.helpers.bulk`` of the datagen ``orders`` rows (as dicts, the
  way a script would send them, the JSON column parsed so both indexes hold the same
  documents), 2000 actions per request, timed from Arrow batches in memory to the last
  response.
* sink: ``hub run`` of a datagen -> elasticsearch pipeline with the same rows (checkpoint
  every ``--interval``, exactly-once: every row goes through the write-ahead log), timed by
  the pipeline's own summary line (and wall time including process start), with the
  process's peak RSS; once per ``--parallelism`` (e.g. ``1,2``: the exactly-once commit
  applies the writers' segments concurrently, so the rate should grow with it).
  ``--interval 10m`` makes the whole run one checkpoint: the write-ahead log holds every row
  until the one commit, which streams it (peak RSS stays about flat whatever the rows).

Servers: ``--url`` (e.g. docker-compose's Elasticsearch 8), ``--emulator`` (``osmem-server``,
``pip install osmem-server``), else a real OpenSearch 2.19 node started here
(tests/servers/opensearch.py).  The sink tells OpenSearch from Elasticsearch by itself
(``compatibility-mode = "auto"``).

Rounds.  With ``--emulator``, ``osmem-server`` (an in-memory OpenSearch-API server),
which holds about 20 KB of memory per document: a million documents do not fit a 24 GB
machine (it was killed by the OOM killer).  So the rows are measured in rounds of
``--round-rows`` (default 250,000 on osmem, all rows at once with ``--url``): each round runs
both writers on the round's rows, in alternating order, and every index is counted and deleted
before the next measurement, so the server holds one index at a time and neither writer meets
a fuller server than the other.  The figures are the sums over the rounds, which together
index ``--rows`` documents with each writer.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys

from hubrun import datagen_pipeline, print_runs, run_hub
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SINK = """\
[sink]
type = "elasticsearch"
hosts = ["{url}"]
index = "bench-sink-{{table}}"
compatibility-mode = {compat}
delivery = "{delivery}"
bulk-max-actions = 2000
"""


def datagen_rows(rows: int):
    """The rows the datagen source produces for ``orders`` (seed 42), as Arrow batches."""
    from sources.datagen.generator import RowGenerator
    from sources.datagen.tables import template_schema

    schema, specs = template_schema("datagen", "orders")
    gen = RowGenerator(schema, specs, 42)
    start = 1_767_225_600_000
    out = []
    for lo in range(0, rows, 8192):
        ids = np.arange(lo + 1, min(rows, lo + 8192) + 1, dtype=np.int64)
        out.append(gen.generate(ids, np.zeros(len(ids), dtype=np.int64), start + ids, None))
    return out


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def queued_s(pid: int) -> float:
    """Seconds the threads of process ``pid`` have spent ready to run but waiting for a core
    (the run-queue delay of ``/proc/PID/task/*/schedstat``; threads that ended are not
    counted)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended meanwhile
    return total / 1e9


def children_cpu_s() -> float:
    """CPU seconds of this process's children that ended (the ``hub run`` processes)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU seconds of the sink runs (the ``hub run`` process) and of the server processes
    (``pids``) meanwhile: where the time goes on a machine whose cores are the limit."""

    def __init__(self, pids: list[int]):
        self.pids = pids
        self.hub = self.server = self.server_queued = 0.0

    def run(self, fn):
        hub0, server0 = children_cpu_s(), sum(cpu_s(p) for p in self.pids)
        queued0 = sum(queued_s(p) for p in self.pids)
        result = fn()
        self.hub += children_cpu_s() - hub0
        self.server += sum(cpu_s(p) for p in self.pids) - server0
        self.server_queued += sum(queued_s(p) for p in self.pids) - queued0
        return result

    def line(self, run_s: float, server: str) -> str:
        """What the sink runs used: CPU seconds of the hub and of the server, how many cores
        that is on average, and how long the server's threads waited for a core."""
        text = f"  CPU: hub {self.hub:.1f}s"
        if self.pids:
            text += (f", {server} {self.server:.1f}s; {server} threads waited "
                     f"{self.server_queued:.1f}s for a core")
        return text + f" ({(self.hub + self.server) / run_s:.2f} cores busy on average)"


def bare_client(es, batches) -> float:
    from elasticsearch import helpers

    def actions():
        for rb in batches:
            for doc in rb.to_pylist():
                # the same document the sink writes: nested JSON as an object
                doc["attrs"] = json.loads(doc["attrs"]) if doc["attrs"] else None
                yield {"_index": "bench-bare-orders", "_id": doc["id"], "_source": doc}

    t0 = time.monotonic()
    ok, errors = helpers.bulk(es, actions(), chunk_size=2000, max_chunk_bytes=8 << 20,
                              raise_on_error=True)
    elapsed = time.monotonic() - t0
    assert not errors and ok == sum(rb.num_rows for rb in batches)
    return elapsed


def sink_run(url: str, rows: int, parallelism: int, delivery: str, work: str,
             interval: str = "1s"):
    path = os.path.join(work, "pipeline.toml")
    with open(path, "w") as f:
        f.write(datagen_pipeline("es-bench", parallelism, os.path.join(work, "state"), rows,
                                 SINK.format(url=url, compat='"auto"', delivery=delivery)
                                 ).replace('interval = "1s"', f'interval = "{interval}"'))
    return run_hub(path)


def count_and_drop(es, index: str) -> int:
    es.indices.refresh(index=index)
    n = es.count(index=index)["count"]
    es.indices.delete(index=index)
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--round-rows", type=int, default=None,
                    help="rows per round; default: 250,000 with --emulator, else --rows")
    ap.add_argument("--url", default=None)
    ap.add_argument("--emulator", action="store_true",
                    help="osmem-server instead of a real OpenSearch node (without --url)")
    ap.add_argument("--parallelism", default="1", help="one or more, comma-separated")
    ap.add_argument("--delivery", default="exactly-once")
    ap.add_argument("--interval", default="1s", help="checkpoint interval of the sink runs")
    ap.add_argument("--no-bare", action="store_true", help="measure the sink only")
    ap.add_argument("--server-pid", type=int, action="append", default=[],
                    help="with a given server: its process(es), to count their CPU time")
    args = ap.parse_args()
    from sinks.elasticsearch.client import connect
    from sinks.elasticsearch.config import ElasticsearchSinkConfig

    parallelisms = [int(p) for p in args.parallelism.split(",")]
    server = None
    per_round = min(args.round_rows or (250_000 if args.emulator else args.rows),
                    args.rows)
    rounds = -(-args.rows // per_round)
    node = None
    if args.url:
        url = args.url
    elif args.emulator:
        from osmem_server import OsmemServer

        server = OsmemServer.start(japanese=False)
        url = server.url
    else:
        from tests.servers.opensearch import ThrowawayOpenSearch

        node = ThrowawayOpenSearch().start()
        url = node.url
    es = connect(ElasticsearchSinkConfig(hosts=[url]))
    bare_s = 0.0
    runs: dict[int, list] = {p: [] for p in parallelisms}
    pids = [node.proc.pid] if node is not None else args.server_pid
    meters = {p: CpuMeter(pids) for p in parallelisms}
    total = 0
    try:
        for r in range(rounds):
            n = min(per_round, args.rows - total)
            batches = datagen_rows(n)
            writers = ["bare"] * (not args.no_bare) + [f"p{p}" for p in parallelisms]
            for writer in (writers if r % 2 == 0 else writers[::-1]):
                if writer == "bare":
                    bare_s += bare_client(es, batches)
                    assert count_and_drop(es, "bench-bare-orders") == n
                    continue
                p = int(writer[1:])
                with tempfile.TemporaryDirectory(prefix="es-bench-") as work:
                    runs[p].append(meters[p].run(lambda: sink_run(
                        url, n, p, args.delivery, work, args.interval)))
                assert count_and_drop(es, "bench-sink-orders") == n
                print(f"round {r + 1}: p={p} {runs[p][-1].run_s:.1f}s, peak RSS "
                      f"{runs[p][-1].peak_rss_mb:.0f} MB, load {os.getloadavg()[0]:.1f}",
                      file=sys.stderr, flush=True)
            total += n
    finally:
        es.close()
        if server is not None:
            server.close()
        if node is not None:
            node.stop()
    kind = "osmem-server" if server else "OpenSearch 2.19" if node else "given"
    print(f"server: {url} ({kind}), rows: {total:,} "
          f"in {rounds} round{'s' if rounds > 1 else ''} of {per_round:,}, checkpoint "
          f"interval {args.interval}, load average {os.getloadavg()[0]:.1f}")
    print(f"{'writer':<44} {'seconds':>8} {'rows/s':>10} {'vs bare':>8} {'peak RSS':>9}")
    if not args.no_bare:
        print(f"{'elasticsearch.helpers.bulk (bare client)':<44} {bare_s:>8.2f} "
              f"{total / bare_s:>10,.0f} {'100%':>8}")
    print_runs({p: runs[p] for p in parallelisms}, meters, total, bare_s,
               f"hub elasticsearch sink, {args.delivery}", "OpenSearch")

if __name__ == "__main__":
    main()
