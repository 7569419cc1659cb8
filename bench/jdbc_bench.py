"""Throughput of the JDBC sink into PostgreSQL through the whole pipeline (``hub run``),
exactly-once on (two-phase commit, checkpoint every second).

    python bench/jdbc_bench.py [--rows 1000000] [--url postgresql://...] [--parallelism 1,2]
                               [--workload all|snapshot|datagen] [--repeat 3] [--also-upsert]

Without ``--url`` a throwaway PostgreSQL is started (Debian package).

* ``snapshot``: a MariaDB table of ``--rows`` orders (bench/mysql_bench.py's, 7 columns;
  a throwaway MariaDB unless HUB_TEST_MYSQL names one) copied into an empty PostgreSQL
  table by ``hub run`` (mysql source, ``initial-only``) at each parallelism, side by side
  with the bare clients in the same run: mysqlclient's SSCursor -> psycopg ``COPY ... (FORMAT
  binary)``, one loop, no transaction protocol (``pip install mysqlclient``).  Alternating,
  best of ``--repeat``; ``--also-upsert`` adds the hub with ``snapshot-copy = false``.
* ``datagen``: for each parallelism, datagen ``orders`` (7 typed columns) insert-only into
  an empty table, then with 30% changes (20% updates, 10% deletes).

Prints rows/s from the pipeline's own summary line, and the rows in the table at the end.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys

import tempfile
import time

from hubrun import datagen_pipeline, run_hub

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


#: bench/mysql_bench.py's snapshot pipeline, into the JDBC sink
SINK = """[sink]
type = "jdbc"
url = "{url}"
batch-size = {batch_size}
"""
#: The target table as the sink creates it from the MariaDB table (for the bare path).
TARGET = ("CREATE TABLE orders (id bigint NOT NULL PRIMARY KEY, customer_id integer, "
          "amount numeric(12,2), status varchar(16), note varchar(200), updated_at timestamp(6), "
          "attrs jsonb)")


def hub_snapshot(server, url: str, admin, p: int, batch_size: int, work: str,
                 copy: bool = True) -> tuple[int, float]:
    admin.execute("DROP TABLE IF EXISTS orders")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    path = f"{work}/pipeline.toml"
    with open(path, "w") as f:
        from mysql_bench import PIPELINE

        sink = SINK.format(url=url, batch_size=batch_size)
        f.write(PIPELINE.replace("mysql-bench", "jdbc-snapshot-bench").format(
            p=p, dir=work, connection=server.source_toml(), sink=sink)
                + ("" if copy else "snapshot-copy = false\n"))
    r = run_hub(path)
    return r.rows, r.run_s


def bare_copy(server, url: str, admin) -> tuple[int, float]:
    """mysqlclient SSCursor -> COPY binary, the hand-written loop the hub is measured by."""
    import MySQLdb
    import MySQLdb.cursors
    import psycopg
    from psycopg.types.json import set_json_dumps

    admin.execute("DROP TABLE IF EXISTS orders")
    admin.execute(TARGET)
    t0 = time.monotonic()
    src = MySQLdb.connect(host=server.host, port=server.port, user=server.user,
                          password=server.password, db="bench", charset="utf8mb4",
                          cursorclass=MySQLdb.cursors.SSCursor)
    n = 0
    with psycopg.connect(url) as dst:
        set_json_dumps(lambda s: s, dst)  # the JSON text as it is
        cur = src.cursor()
        cur.execute("SELECT id, customer_id, amount, status, note, updated_at, attrs FROM orders")
        with dst.cursor().copy("COPY orders FROM STDIN (FORMAT binary)") as copy:
            copy.set_types(["int8", "int4", "numeric", "varchar", "varchar", "timestamp",
                            "jsonb"])
            while True:
                rows = cur.fetchmany(10_000)
                if not rows:
                    break
                for r in rows:
                    copy.write_row(r)
                n += len(rows)
    src.close()
    return n, time.monotonic() - t0


def snapshot_bench(args, url: str, admin, work: str) -> None:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from mysql_bench import fill
    from tests.servers import mariadb

    server = mariadb.shared()  # docker-compose's, or a throwaway one stopped at exit
    fill(server, args.rows)
    ps = [int(x) for x in args.parallelism.split(",")]
    best: dict[str, float] = {}
    for _ in range(args.repeat):  # alternating: hub p=1, hub p=2, bare, again
        for p in ps:
            for copy in (True, False) if args.also_upsert else (True,):
                n, secs = hub_snapshot(server, url, admin, p, args.batch_size,
                                       os.path.join(work, f"snap-{p}"), copy)
                assert admin.execute("SELECT count(*) FROM orders").fetchone()[0] == args.rows
                name = f"hub p={p}" + ("" if copy else " upsert")
                best[name] = max(best.get(name, 0), n / secs)
        n, secs = bare_copy(server, url, admin)
        assert n == args.rows
        best["bare"] = max(best.get("bare", 0), n / secs)
    print(f"snapshot MariaDB -> PostgreSQL, {args.rows:,} rows, best of {args.repeat}")
    for name, rate in best.items():
        ratio = "" if name == "bare" else f"  {rate / best['bare']:.2f}x bare"
        print(f"  {name:<17} {rate:>10,.0f} rows/s{ratio}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--url", default=None, help="PostgreSQL URL (default: a throwaway server)")
    ap.add_argument("--parallelism", default="1,2")
    ap.add_argument("--batch-size", type=int, default=50_000)
    ap.add_argument("--workload", choices=("all", "snapshot", "datagen"), default="all")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--also-upsert", action="store_true",
                    help="snapshot: also run the hub with snapshot-copy = false (the upsert path)")
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
    try:
        if args.workload in ("all", "snapshot"):
            snapshot_bench(args, url, admin, work)
        if args.workload in ("all", "datagen"):
            datagen_bench(args, url, admin, work)
    finally:
        admin.close()
        shutil.rmtree(work, ignore_errors=True)
        if server is not None:
            server.stop()


def datagen_bench(args, url: str, admin, work: str) -> None:
    print(f"{'workload':<16} {'p':>2} {'rows':>10} {'rows/s':>10} {'run s':>7} {'wall s':>7} "
          f"{'rows in table':>14}")
    for changes in (False, True):
        for p in (int(x) for x in args.parallelism.split(",")):
            r = run_once(url, admin, p, args.rows, changes, args.batch_size,
                         os.path.join(work, f"{p}-{changes}"))
            name = "30% upd/del" if changes else "insert-only"
            print(f"{name:<16} {p:>2} {r['rows']:>10,} {r['rate']:>10,.0f} {r['secs']:>7.2f} "
                  f"{r['wall']:>7.2f} {r['table']:>14,}", flush=True)


if __name__ == "__main__":
    main()
