"""The HBase sink next to bare happybase batch puts, on the same server in the same run.

    python bench/hbase_bench.py [--rows 1000000] [--host H --port P] [--parallelism 1]
                                [--delivery exactly-once] [--rounds 2]

* bare client: happybase ``Table.batch(batch_size=1000)`` puts of the datagen ``orders`` rows
  (rowkey: the id as sign-flipped big-endian, like the sink; values as UTF-8 text), timed from
  Arrow batches in memory to the last call.
* sink: ``hub run`` of a datagen -> hbase pipeline with the same rows (checkpoint every
  second, exactly-once: every row goes through the write-ahead log), timed by the pipeline's
  own summary line (and wall time including process start).

Each of ``--rounds`` rounds measures both, in alternating order (bare first, then sink first,
...), and every table is counted and deleted before the next measurement, so neither writer
meets a server fuller than the other did; the figures are the sums over the rounds.

Without ``--host`` it starts the HBase Thrift TEST server of tests/servers/hbase_thrift.py
(Python, in memory, in a process of its own): its own speed bounds both figures.
"""
from __future__ import annotations

import argparse
import os
import struct
import sys

from hubrun import datagen_pipeline, run_hub
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.elasticsearch_bench import datagen_rows  # noqa: E402 - same rows, one generator

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
             work: str) -> tuple[float, float]:
    path = os.path.join(work, "pipeline.toml")
    with open(path, "w") as f:
        f.write(datagen_pipeline("hbase-bench", parallelism, os.path.join(work, "state"), rows,
                                 SINK.format(host=host, port=port, delivery=delivery)))
    r = run_hub(path)
    return r.run_s, r.wall_s


def count_and_drop(conn, name: str) -> int:
    n = sum(1 for _ in conn.table(name).scan(columns=[b"cf:status"], batch_size=10_000))
    conn.delete_table(name, disable=True)
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--host", default=None)
    ap.add_argument("--port", type=int, default=9090)
    ap.add_argument("--parallelism", type=int, default=1)
    ap.add_argument("--delivery", default="exactly-once")
    ap.add_argument("--rounds", type=int, default=2, help="measurements of each, alternating")
    args = ap.parse_args()
    import happybase

    server = None
    if args.host:
        host, port = args.host, args.port
    else:
        from tests.servers.hbase_thrift import HBaseThriftTestServer

        server = HBaseThriftTestServer().start()
        host, port = server.host, server.port
    conn = happybase.Connection(host, port)
    bare_s = run_s = wall_s = 0.0
    try:
        batches = datagen_rows(args.rows)
        for r in range(args.rounds):
            for writer in (("bare", "sink") if r % 2 == 0 else ("sink", "bare")):
                if writer == "bare":
                    bare_s += bare_client(conn, batches)
                    assert count_and_drop(conn, BARE) == args.rows
                    continue
                with tempfile.TemporaryDirectory(prefix="hbase-bench-") as work:
                    run, wall = sink_run(host, port, args.rows, args.parallelism,
                                         args.delivery, work)
                run_s, wall_s = run_s + run, wall_s + wall
                assert count_and_drop(conn, SINK_TABLE) == args.rows
    finally:
        conn.close()
        if server is not None:
            server.stop()
    rows = args.rows * args.rounds
    where = "HBase Thrift test server" if server else "given"
    print(f"server: {host}:{port} ({where}), rows: {args.rows:,} x {args.rounds} rounds")
    print(f"{'writer':<44} {'seconds':>8} {'rows/s':>10} {'vs bare':>8}")
    print(f"{'happybase batch puts (bare client)':<44} {bare_s:>8.2f} "
          f"{rows / bare_s:>10,.0f} {'100%':>8}")
    label = f"hub hbase sink, {args.delivery}, p={args.parallelism}"
    print(f"{label:<44} {run_s:>8.2f} {rows / run_s:>10,.0f} {bare_s / run_s:>8.0%}")
    print(f"{'  (wall, with process start)':<44} {wall_s:>8.2f} {rows / wall_s:>10,.0f} "
          f"{bare_s / wall_s:>8.0%}")


if __name__ == "__main__":
    main()
