"""Throughput of the JDBC sink into PostgreSQL through the whole pipeline (``hub run``),
exactly-once on (two-phase commit, checkpoint every second).

    python bench/jdbc_bench.py [--rows 1000000] [--url postgresql://...] [--parallelism 1,2]

Without ``--url`` a throwaway PostgreSQL is started (Debian package).  For each parallelism:
datagen ``orders`` (7 typed columns) insert-only into an empty table, then with 30% changes
(20% updates, 10% deletes).  Prints rows/s from the pipeline's own summary line, and the rows
in the table at the end.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys

from hubrun import datagen_pipeline, run_hub
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SINK = """\
[sink]
type = "jdbc"
url = "{url}"
batch-size = {batch_size}
"""


def run_once(url: str, admin, parallelism: int, rows: int, changes: bool, batch_size: int,
             work: str) -> dict:
    admin.execute("DROP TABLE IF EXISTS orders")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    path = f"{work}/pipeline.toml"
    with open(path, "w") as f:
        f.write(datagen_pipeline("jdbc-bench", parallelism, f"{work}/state", rows,
                                 SINK.format(url=url, batch_size=batch_size), changes))
    r = run_hub(path)
    n, secs, wall = r.rows, r.run_s, r.wall_s
    in_table = admin.execute("SELECT count(*) FROM orders").fetchone()[0]
    return {"rows": n, "secs": secs, "rate": n / secs, "wall": wall, "table": in_table}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--url", default=None, help="PostgreSQL URL (default: a throwaway server)")
    ap.add_argument("--parallelism", default="1,2")
    ap.add_argument("--batch-size", type=int, default=50_000)
    args = ap.parse_args()
    import psycopg

    server = None
    url = args.url
    if url is None:
        from tests.servers.postgres import ThrowawayPostgres

        server = ThrowawayPostgres()
        s = server.start()
        url = s.url
    admin = psycopg.connect(url, autocommit=True)
    work = tempfile.mkdtemp(prefix="hub-jdbc-bench-")
    print(f"{'workload':<16} {'p':>2} {'rows':>10} {'rows/s':>10} {'run s':>7} {'wall s':>7} "
          f"{'rows in table':>14}")
    try:
        for changes in (False, True):
            for p in (int(x) for x in args.parallelism.split(",")):
                r = run_once(url, admin, p, args.rows, changes, args.batch_size,
                             os.path.join(work, f"{p}-{changes}"))
                name = "30% upd/del" if changes else "insert-only"
                print(f"{name:<16} {p:>2} {r['rows']:>10,} {r['rate']:>10,.0f} {r['secs']:>7.2f} "
                      f"{r['wall']:>7.2f} {r['table']:>14,}", flush=True)
    finally:
        admin.close()
        shutil.rmtree(work, ignore_errors=True)
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
