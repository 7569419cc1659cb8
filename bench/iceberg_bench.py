"""Throughput of the iceberg sink from MariaDB, side by side with the bare path, in one run.

    python bench/iceberg_bench.py [--rows 1000000] [--changes 1000000] [--parallelism 1,2]

1. snapshot: ``hub run`` (mysql ``initial-only`` -> iceberg, exactly once, checkpoints every
   10 s) at each ``--parallelism`` vs the bare paths (connectorx -- with as many partitions
   as the hub's parallelism -- and mysqlclient when installed, and PyMySQL: the client's rows
   -> pyarrow -> pyiceberg ``append``, no CDC), each in a process of its own, alternating,
   best of ``--rounds``: rows/s and peak RSS;
2. change stream: against the table now holding ``--rows`` rows, ``--changes`` binlog
   changes (70% inserts, 20% updates, 10% deletes) read from a binlog position by ``hub run``
   with checkpoints every 10 s: changes/s until the Iceberg table holds the source's state,
   peak RSS, and the seconds spent in table commits;
3. merge cost against table size (``--scaling``, run last): one commit of 100,000 changes into tables
   of 1M and 4M rows, changes spread over all keys (copy-on-write rewrites every file) or in
   the newest keys (only their files are rewritten).

Uses a throwaway MariaDB (Debian package) unless HUB_TEST_MYSQL names a server.  Table:
orders-like (BIGINT id, INT, DECIMAL(12,2), VARCHAR(16), VARCHAR(200), DATETIME(6), JSON).
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

from hubrun import run_hub
from mysql_bench import fill

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.servers import mariadb  # noqa: E402

PIPELINE = """
[pipeline]
name = "{name}"
parallelism = {p}
[checkpoint]
interval = "10s"
dir = "{work}/state-{name}"
[source]
{connection}
tables = ["bench\\\\.orders"]
startup-mode = "{mode}"
{extra}
[sink]
type = "iceberg"
warehouse = "{warehouse}"
"""


def write_pipeline(work: str, name: str, server, warehouse: str, mode: str,
                   extra: str = "", p: int = 1) -> str:
    path = f"{work}/{name}.toml"
    with open(path, "w") as f:
        f.write(PIPELINE.format(name=name, work=work, connection=server.source_toml(),
                                mode=mode, extra=extra, warehouse=warehouse, p=p))
    return path


def bare(server_url: str, warehouse: str, rows: int, client: str = "pymysql",
         p: int = 1) -> None:
    """The bare path, run in a child process (``--bare``): with PyMySQL or mysqlclient,
    stream the table (an unbuffered cursor), build Arrow tables of 250,000 rows, append them
    with pyiceberg; with connectorx, read the table as one Arrow table and append it."""
    import pyarrow as pa
    from pyiceberg.catalog.sql import SqlCatalog

    host, port, user, password = server_url.split("|")
    schema = pa.schema([("id", pa.int64()), ("customer_id", pa.int32()),
                        ("amount", pa.decimal128(12, 2)), ("status", pa.string()),
                        ("note", pa.string()), ("updated_at", pa.timestamp("us")),
                        ("attrs", pa.string())])
    os.makedirs(warehouse, exist_ok=True)
    cat = SqlCatalog("bare", uri=f"sqlite:///{warehouse}/catalog.db",
                     warehouse=f"file://{warehouse}")
    cat.create_namespace_if_not_exists("bench")
    if client == "connectorx":
        import connectorx

        kw = {"partition_on": "id", "partition_num": p} if p > 1 else {}
        data = connectorx.read_sql(f"mysql://{user}:{password}@{host}:{port}/bench",
                                   "SELECT * FROM bench.orders", return_type="arrow", **kw)
        data = data.cast(pa.schema([pa.field(f.name, f.type) for f in schema]))
        cat.create_table(("bench", "orders"), schema=schema).append(data)
        assert data.num_rows == rows, (data.num_rows, rows)
        return
    table = cat.create_table(("bench", "orders"), schema=schema)
    if client == "mysqlclient":
        import MySQLdb
        import MySQLdb.cursors

        conn = MySQLdb.connect(host=host, port=int(port), user=user, password=password)
        cur = conn.cursor(MySQLdb.cursors.SSCursor)
    else:
        import pymysql
        import pymysql.cursors

        conn = pymysql.connect(host=host, port=int(port), user=user, password=password,
                               cursorclass=pymysql.cursors.SSCursor)
        cur = conn.cursor()
    n = 0
    cur.execute("SELECT * FROM bench.orders")
    while True:
        got = cur.fetchmany(250_000)
        if not got:
            break
        cols = list(zip(*got))
        table.append(pa.Table.from_arrays(
            [pa.array(c, type=f.type) for c, f in zip(cols, schema)], schema=schema))
        n += len(got)
    cur.close()
    conn.close()
    assert n == rows, (n, rows)


LABELS = {"connectorx": "connectorx", "mysqlclient": "mysqlclient", "pymysql": "PyMySQL"}


def run_bare(server, warehouse: str, rows: int, client: str, p: int = 1) -> tuple[float, float]:
    url = f"{server.host}|{server.port}|{server.user}|{server.password}"
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, __file__, "--bare", url, warehouse,
                             "--rows", str(rows), "--client", client, "--parallelism", str(p)])
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("the bare path failed")
    return rows / (time.monotonic() - t0), usage.ru_maxrss / 1024


def changes(server, rows: int, n: int) -> tuple[int, int]:
    """``n`` changes (70% inserts of new ids, 20% updates, 10% deletes) in batches of 10,000;
    returns the rows the table holds then, and the binlog position before them."""
    from sources.mysql.dialect import detect

    conn = server.connect()
    start = detect(conn).binlog_status(conn)
    with conn.cursor() as cur:
        step = 10_000
        for b in range(0, n, step):
            k = b // step
            i0 = rows + k * 7_000
            cur.execute(f"INSERT INTO bench.orders SELECT id + {i0}, customer_id, amount, status, "
                        f"note, updated_at, attrs FROM bench.orders WHERE id < 7000")
            # spread over the whole table: every key range sees changes
            m = max(rows // 2_000, 1)
            cur.execute(f"UPDATE bench.orders SET amount = amount + 1 WHERE id % {m} = {k % m} "
                        "LIMIT 2000")
            cur.execute(f"DELETE FROM bench.orders WHERE id % {max(rows // 1_000, 1)} = "
                        f"{(k * 7 + 3) % max(rows // 1_000, 1)} AND id < {rows} LIMIT 1000")
        cur.execute("SELECT COUNT(*) FROM bench.orders")
        total = cur.fetchone()[0]
    conn.close()
    return total, start


def run_stream(server, work: str, warehouse: str, total: int, start) -> tuple[float, float]:
    from pyiceberg.catalog.sql import SqlCatalog

    extra = (f'startup-specific-offset-file = "{start.file}"\n'
             f"startup-specific-offset-pos = {start.pos}")
    path = write_pipeline(work, "stream", server, warehouse, "specific-offset", extra)
    cat = SqlCatalog("hub", uri=f"sqlite:///{warehouse}/catalog.db",
                     warehouse=f"file://{warehouse}")
    t0 = time.monotonic()
    log = open(f"{work}/stream.log", "w")  # the commits' log lines: where the time goes
    proc = subprocess.Popen([sys.executable, "-m", "hub", "run", path, "--no-progress"],
                            stderr=log, env={**os.environ, "HUB_LOG": "info"})
    while True:
        time.sleep(0.5)
        snap = cat.load_table(("bench", "orders")).current_snapshot()
        if snap.summary.get("hub.app-id", "").startswith("hub:stream:iceberg:") and \
                int(snap.summary.get("total-records")) == total:
            break
        if proc.poll() is not None:
            raise SystemExit("the change stream pipeline ended early")
    secs = time.monotonic() - t0
    proc.send_signal(signal.SIGTERM)
    _, _, usage = os.wait4(proc.pid, 0)
    log.close()
    return secs, usage.ru_maxrss / 1024


def commit_seconds(log: str) -> tuple[int, float]:
    """Checkpoints committed and the seconds spent in the table commits (the log lines)."""
    import re

    times = [float(m) for m in re.findall(r"checkpoint \d+: .* in ([\d.]+)s", open(log).read())]
    return len(times), sum(times)


def merge_scaling(size: int, spread: bool) -> float:
    """Seconds of one table commit of 100,000 changes (70% inserts, 20% updates, 10% deletes)
    into a table of ``size`` rows, the committer called directly: updates and deletes spread
    over all keys (every data file is rewritten: copy-on-write) or within the newest 200,000
    keys (only the files holding them are)."""
    import numpy as np
    import pyarrow as pa

    from runtime.schema import Column, TableSchema
    from runtime.sink import CommitContext
    from runtime.types import T
    from sinks.iceberg.committer import IcebergCommitter
    from sinks.iceberg.config import IcebergSinkConfig
    from runtime.batch import ChangeBatch
    from sinks.lake.changes import TableChanges, collect

    schema = TableSchema("bench.orders", (
        Column("id", T("BIGINT"), False), Column("customer_id", T("INT")),
        Column("note", T("VARCHAR(200)")), Column("updated_at", T("TIMESTAMP(6)"))), ("id",))

    def changes(cp: int, ids, ops) -> TableChanges:
        rows = pa.RecordBatch.from_arrays([
            pa.array(ids, pa.int64()), pa.array(ids % 100_000, pa.int32()),
            pa.array(np.char.add("note for order ", (ids % 1000).astype(str))),
            pa.array(ids * 1000, pa.timestamp("us"))], schema=schema.arrow_schema)
        batch = ChangeBatch(schema, "".join(ops), arrow=rows, ts_ms=0,
                            versions=np.arange(len(ids)))
        [found] = collect([batch], cp, upsert=True, sink="bench")
        return found

    committer = IcebergCommitter(IcebergSinkConfig.model_validate(
        {"warehouse": tempfile.mkdtemp(prefix="hub-iceberg-scaling-")}))
    step = 500_000
    for k in range(size // step):
        ids = np.arange(k * step, (k + 1) * step)
        committer.commit_table(changes(k + 1, ids, ["r"] * step),
                               CommitContext("scaling", k + 1, None, "", "bench"))
    rng = np.random.default_rng(1)
    pool = np.arange(size) if spread else np.arange(size - 200_000, size)
    upd = rng.choice(pool, 20_000, replace=False)
    dele = rng.choice(np.setdiff1d(pool, upd), 10_000, replace=False)
    ins = np.arange(size, size + 70_000)
    last = changes(10_000, np.concatenate([ins, upd, dele]),
                   ["c"] * len(ins) + ["u"] * len(upd) + ["d"] * len(dele))
    t0 = time.monotonic()
    committer.commit_table(last, CommitContext("scaling", 10_000, None, "", "bench"))
    return time.monotonic() - t0


def stream(server, work: str, warehouse: str, rows: int, n: int) -> None:
    """The change stream: ``n`` changes against the table the last snapshot round left."""
    total, start = changes(server, rows, n)
    secs, rss = run_stream(server, work, warehouse, total, start)
    print(f"\nchange stream: {n:,} binlog changes (70% inserts, 20% updates, 10% "
          f"deletes) against {rows:,} rows, checkpoints every 10 s")
    print(f"{n / secs:,.0f} changes/s ({secs:.1f} s until the Iceberg table held "
          f"the source's {total:,} rows), peak RSS {rss:.0f} MB")
    spent_n, spent = commit_seconds(f"{work}/stream.log")
    print(f"the sink's share: {spent_n} commit(s) taking {spent:.1f} s in all "
          f"({n / spent:,.0f} changes/s of commit time)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--changes", type=int, default=1_000_000,
                    help="changes of the change-stream measurement (0 skips it)")
    ap.add_argument("--scaling", default="1000000,4000000",
                    help="table sizes of the merge-cost measurement ('' skips it)")
    ap.add_argument("--bare", nargs=2, metavar=("SERVER", "WAREHOUSE"))
    ap.add_argument("--client", default="pymysql", help="the bare path's reader (--bare)")
    ap.add_argument("--rounds", type=int, default=3, help="snapshot rounds (best of)")
    ap.add_argument("--compare", default=None, metavar="CHECKOUT",
                    help="another checkout (e.g. /work/main) whose hub also runs each snapshot "
                         "round, for a comparison under the same load")
    ap.add_argument("--parallelism", default="1",
                    help="the hub's parallelisms (and connectorx's partitions), e.g. 1,2")
    args = ap.parse_args()
    if args.bare:
        bare(args.bare[0], args.bare[1], args.rows, args.client, int(args.parallelism))
        return
    server = mariadb.shared()  # docker-compose's, or a throwaway one stopped at exit
    work = tempfile.mkdtemp(prefix="hub-iceberg-bench-")
    fill(server, args.rows)
    print(f"snapshot of {args.rows:,} MariaDB rows into Iceberg (sql catalog on SQLite)")
    print(f"{'path':>34} {'rows/s':>10} {'peak RSS MB':>12}   (best of {args.rounds}, "
          f"the bare paths and the hub alternating; RSS the highest)")
    import importlib.util

    clients = [c for c, module in (("connectorx", "connectorx"), ("mysqlclient", "MySQLdb"),
                                   ("pymysql", "pymysql"))
               if importlib.util.find_spec(module) is not None]
    best: dict[tuple[str, int], tuple[float, float]] = {}
    warehouse = f"{work}/lake"
    ps = [int(x) for x in args.parallelism.split(",")]

    def note(path: str, p: int, rate: float, rss: float) -> None:
        old = best.get((path, p), (0.0, 0.0))
        best[(path, p)] = (max(rate, old[0]), max(rss, old[1]))
        print(f"   round: {path:<12} p={p} {rate:>10,.0f} rows/s {rss:6.0f} MB", flush=True)

    for r in range(args.rounds):
        for p in ps:
            for client in clients:
                if client != "connectorx" and p != ps[0]:
                    continue  # one connection whatever p: its figure of the first p stands
                rate, rss = run_bare(server, f"{work}/bare-{client}-{p}-{r}", args.rows,
                                     client, p)
                note(client, p, rate, rss)
            last = r == args.rounds - 1 and p == ps[0]  # its table stays for the stream
            lake = warehouse if last else f"{work}/lake-{p}-{r}"
            h = run_hub(write_pipeline(work, "snapshot" if last else f"snapshot{p}-{r}", server,
                                       lake, "initial-only", p=p))
            note("hub", p, h.rows / h.wall_s, h.peak_rss_mb)
            if args.compare:  # the other checkout's hub, same pipeline, same round
                h = run_hub(write_pipeline(work, f"compare{p}-{r}", server,
                                           f"{work}/lake-c-{p}-{r}", "initial-only", p=p),
                            cwd=args.compare)
                note("compare", p, h.rows / h.wall_s, h.peak_rss_mb)
    for p in ps:
        for client in clients:
            if (client, p) not in best:
                continue
            rate, rss = best[(client, p)]
            label = f"bare: {LABELS[client]} -> append"
            print(f"{label:>34} p={p} {rate:>10,.0f} {rss:>12.0f}")
        for path in ("hub", "compare"):
            if (path, p) not in best:
                continue
            rate, rss = best[(path, p)]
            ratios = ", ".join(
                f"{rate / best[(c, p) if (c, p) in best else (c, ps[0])][0]:.2f}x {c}"
                for c in clients)
            label = ("hub run (exactly once)" if path == "hub"
                     else f"{os.path.basename(args.compare)}: hub run")
            print(f"{label:>34} p={p} {rate:>10,.0f} {rss:>12.0f}   ({ratios}; wall clock all)")
    if args.changes:  # 0: the snapshot only
        stream(server, work, warehouse, args.rows, args.changes)
    if args.scaling:
        # last: it grows this process, and on Linux a child's peak RSS starts at its
        # parent's (the peak survives fork and exec), which would inflate those above
        print("\nmerge cost: one commit of 100,000 changes (70% inserts, 20% updates, 10% "
              "deletes)")
        print(f"{'table rows':>12} {'spread over all keys s':>24} {'newest 200k keys s':>20}")
        for size in (int(x) for x in args.scaling.split(",")):
            print(f"{size:>12,} {merge_scaling(size, True):>24.2f} "
                  f"{merge_scaling(size, False):>20.2f}")


if __name__ == "__main__":
    main()
