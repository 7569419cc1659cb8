"""The HBase sink next to bare happybase batch puts, on the same server in the same run.

    python bench/hbase_bench.py [--rows 1000000] [--host H --port P | --test-server]
                                [--parallelism 1[,2...]] [--delivery exactly-once]
                                [--rounds 2] [--interval 1s] [--no-bare]

* bare client: happybase ``Table.batch(batch_size=1000)`` puts of the datagen ``orders`` rows
  (rowkey: the id as sign-flipped big-endian, like the sink; values as UTF-8 text), timed from
  Arrow batches in memory to the last call.
* sink: ``hub run`` of a datagen -> hbase pipeline with the same rows (checkpoint every
  ``--interval``, exactly-once: every row goes through the write-ahead log), timed by the
  pipeline's own summary line (and wall time including process start), with the process's
  peak RSS; once per ``--parallelism`` (e.g. ``1,2``: the exactly-once commit applies the
  writers' segments concurrently, so the rate should grow with it).  ``--interval 10m`` makes
  the whole run one checkpoint: the write-ahead log holds every row until the one commit,
  which streams it (peak RSS stays about flat whatever the rows).

Each of ``--rounds`` rounds measures both, in alternating order (bare first, then sink first,
...), and every table is counted and deleted before the next measurement, so neither writer
meets a server fuller than the other did; the figures are the sums over the rounds.

Servers: ``--host``/``--port`` (e.g. docker-compose's), ``--test-server`` (the HBase Thrift
TEST server of tests/servers/hbase_thrift.py: Python, in memory; its own speed bounds both
figures), else a real HBase 2.6 with its Thrift server started here (tests/servers/hbase.py,
what the integration tests use).
"""
from __future__ import annotations

import argparse
import os
import struct
import sys

from hubrun import datagen_pipeline, print_runs, run_hub
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.elasticsearch_bench import CpuMeter, datagen_rows  # noqa: E402 - one generator

SINK = """\
[sink]
type = "hbase"
host = "{host}"
port = {port}
table = "bench_sink_{{table}}"
delivery = "{delivery}"
batch-size = 1000
"""
BARE, SINK_TABLE = "bench_bare_orders", "bench_sink_orders"


def bare_client(conn, batches) -> float:
    conn.create_table(BARE, {"cf": {"max_versions": 1}})
    table = conn.table(BARE)
    t0 = time.monotonic()
    with table.batch(batch_size=1000) as b:
        for rb in batches:
            for row in rb.to_pylist():
                key = struct.pack(">Q", row.pop("id") ^ (1 << 63))
                b.put(key, {b"cf:" + k.encode(): str(v).encode()
                            for k, v in row.items() if v is not None})
    return time.monotonic() - t0


def sink_run(host: str, port: int, rows: int, parallelism: int, delivery: str,
             work: str, interval: str = "1s"):
    path = os.path.join(work, "pipeline.toml")
    with open(path, "w") as f:
        f.write(datagen_pipeline("hbase-bench", parallelism, os.path.join(work, "state"), rows,
                                 SINK.format(host=host, port=port, delivery=delivery)
                                 ).replace('interval = "1s"', f'interval = "{interval}"'))
    return run_hub(path)


def count_and_drop(conn, name: str) -> int:
    conn.close()  # a connection idle through a long sink run may have been dropped
    conn.open()
    n = sum(1 for _ in conn.table(name).scan(columns=[b"cf:status"], batch_size=10_000))
    conn.delete_table(name, disable=True)
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--host", default=None)
    ap.add_argument("--port", type=int, default=9090)
    ap.add_argument("--test-server", action="store_true",
                    help="the Python Thrift test server instead of a real HBase")
    ap.add_argument("--parallelism", default="1", help="one or more, comma-separated")
    ap.add_argument("--delivery", default="exactly-once")
    ap.add_argument("--rounds", type=int, default=2, help="measurements of each, alternating")
    ap.add_argument("--interval", default="1s", help="checkpoint interval of the sink runs")
    ap.add_argument("--no-bare", action="store_true", help="measure the sink only")
    ap.add_argument("--server-pid", type=int, action="append", default=[],
                    help="with a given server: its process(es), to count their CPU time")
    args = ap.parse_args()
    import happybase

    parallelisms = [int(p) for p in args.parallelism.split(",")]
    server = cluster = None
    if args.host:
        host, port = args.host, args.port
    elif args.test_server:
        from tests.servers.hbase_thrift import HBaseThriftTestServer

        server = HBaseThriftTestServer().start()
        host, port = server.host, server.port
    else:
        from tests.servers.hbase import ThrowawayHBase

        cluster = ThrowawayHBase()
        service = cluster.start()
        host, port = service.host, service.port
    conn = happybase.Connection(host, port)
    bare_s = 0.0
    runs: dict[int, list] = {p: [] for p in parallelisms}
    pids = ([cluster.hbase.pid, cluster.thrift.pid] if cluster is not None
            else args.server_pid)
    meters = {p: CpuMeter(pids) for p in parallelisms}
    try:
        batches = datagen_rows(args.rows)
        for r in range(args.rounds):
            writers = ["bare"] * (not args.no_bare) + [f"p{p}" for p in parallelisms]
            for writer in (writers if r % 2 == 0 else writers[::-1]):
                if writer == "bare":
                    bare_s += bare_client(conn, batches)
                    assert count_and_drop(conn, BARE) == args.rows
                    continue
                p = int(writer[1:])
                with tempfile.TemporaryDirectory(prefix="hbase-bench-") as work:
                    runs[p].append(meters[p].run(lambda: sink_run(
                        host, port, args.rows, p, args.delivery, work, args.interval)))
                assert count_and_drop(conn, SINK_TABLE) == args.rows
                print(f"round {r + 1}: p={p} {runs[p][-1].run_s:.1f}s, peak RSS "
                      f"{runs[p][-1].peak_rss_mb:.0f} MB, load {os.getloadavg()[0]:.1f}",
                      file=sys.stderr, flush=True)
    finally:
        conn.close()
        if server is not None:
            server.stop()
        if cluster is not None:
            cluster.stop()
    rows = args.rows * args.rounds
    where = ("HBase Thrift test server" if server else "HBase 2.6, Thrift1" if cluster
             else "given")
    print(f"server: {host}:{port} ({where}), rows: {args.rows:,} x {args.rounds} rounds, "
          f"checkpoint interval {args.interval}, load average {os.getloadavg()[0]:.1f}")
    print(f"{'writer':<44} {'seconds':>8} {'rows/s':>10} {'vs bare':>8} {'peak RSS':>9}")
    if not args.no_bare:
        print(f"{'happybase batch puts (bare client)':<44} {bare_s:>8.2f} "
              f"{rows / bare_s:>10,.0f} {'100%':>8}")
    print_runs({p: runs[p] for p in parallelisms}, meters, rows, bare_s,
               f"hub hbase sink, {args.delivery}", "HBase + Thrift server")

if __name__ == "__main__":
    main()
