"""The Elasticsearch sink next to the bare client, on the same server in the same run.

    python bench/elasticsearch_bench.py [--rows 1000000] [--round-rows N]
                                        [--url http://localhost:9200] [--parallelism 1]
                                        [--delivery exactly-once]

* bare client: ``elasticsearch.helpers.bulk`` of the datagen ``orders`` rows (as dicts, the
  way a script would send them, the JSON column parsed so both indexes hold the same
  documents), 2000 actions per request, timed from Arrow batches in memory to the last
  response.
* sink: ``hub run`` of a datagen -> elasticsearch pipeline with the same rows (checkpoint
  every second, exactly-once: every row goes through the write-ahead log), timed by the
  pipeline's own summary line (and wall time including process start).

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
import sys

from hubrun import datagen_pipeline, run_hub
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


def sink_run(url: str, rows: int, parallelism: int, delivery: str,
             work: str) -> tuple[float, float]:
    path = os.path.join(work, "pipeline.toml")
    with open(path, "w") as f:
        f.write(datagen_pipeline("es-bench", parallelism, os.path.join(work, "state"), rows,
                                 SINK.format(url=url, compat='"auto"',
                                             delivery=delivery)))
    r = run_hub(path)
    return r.run_s, r.wall_s


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
    ap.add_argument("--parallelism", type=int, default=1)
    ap.add_argument("--delivery", default="exactly-once")
    args = ap.parse_args()
    from sinks.elasticsearch.client import connect
    from sinks.elasticsearch.config import ElasticsearchSinkConfig

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
    bare_s = run_s = wall_s = 0.0
    total = 0
    try:
        for r in range(rounds):
            n = min(per_round, args.rows - total)
            batches = datagen_rows(n)
            for writer in (("bare", "sink") if r % 2 == 0 else ("sink", "bare")):
                if writer == "bare":
                    bare_s += bare_client(es, batches)
                    assert count_and_drop(es, "bench-bare-orders") == n
                    continue
                with tempfile.TemporaryDirectory(prefix="es-bench-") as work:
                    run, wall = sink_run(url, n, args.parallelism, args.delivery, work)
                run_s, wall_s = run_s + run, wall_s + wall
                assert count_and_drop(es, "bench-sink-orders") == n
            total += n
            print(f"round {r + 1} of {rounds}: {total:,} rows, bare {bare_s:.1f}s, sink "
                  f"{run_s:.1f}s", file=sys.stderr, flush=True)
    finally:
        es.close()
        if server is not None:
            server.close()
        if node is not None:
            node.stop()
    kind = "osmem-server" if server else "OpenSearch 2.19" if node else "given"
    print(f"server: {url} ({kind}), rows: {total:,} "
          f"in {rounds} round{'s' if rounds > 1 else ''} of {per_round:,}")
    print(f"{'writer':<44} {'seconds':>8} {'rows/s':>10} {'vs bare':>8}")
    print(f"{'elasticsearch.helpers.bulk (bare client)':<44} {bare_s:>8.2f} "
          f"{total / bare_s:>10,.0f} {'100%':>8}")
    label = f"hub elasticsearch sink, {args.delivery}, p={args.parallelism}"
    print(f"{label:<44} {run_s:>8.2f} {total / run_s:>10,.0f} {bare_s / run_s:>8.0%}")
    print(f"{'  (wall, with process start)':<44} {wall_s:>8.2f} {total / wall_s:>10,.0f} "
          f"{bare_s / wall_s:>8.0%}")


if __name__ == "__main__":
    main()
