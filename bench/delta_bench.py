"""The delta sink, side by side with the bare path, on the same MariaDB table.

    python bench/delta_bench.py [--rows 1000000] [--changes 2000000] [--merge-sizes 1000000,10000000]
                                [--rounds 3] [--parallelism 1,2] [--skip 2,2b,3]
                                [--compare /work/main]

1. snapshot: ``hub run`` MySQL (startup-mode initial-only) -> delta, parallelism 1 and 2,
   against the bare paths -- connectorx and mysqlclient (each when installed) and PyMySQL
   (the hub's own driver) -> pyarrow -> ``write_deltalake``, no CDC -- each in a process of
   its own, alternating in each round; best of ``--rounds``: rows/s, peak RSS and the ratio
   to each bare path.
2. change stream: a pipeline (checkpoints every 10 s) holds the table's 1,000,000 rows in
   Delta; it is stopped, the table gets ``--changes`` changes (70% inserts, 20% updates, 10%
   deletes, as bulk statements), and the pipeline is started again: changes/s until the
   last change is in the Delta table (a marker row written after the others), and the
   commits it took (MERGEs and appends of new keys: rows, seconds).
2b. the sink alone: the same mix of changes through the delta sink's writer and committer
   (no source), two checkpoints of ``--changes / 2`` against the table of ``--rows``.
3. merge cost against table size: one checkpoint of 300,000 changes (70/20/10, updated and
   deleted keys spread over the whole table, or among its newest 1,000,000 keys) into a
   Delta table of each ``--merge-sizes`` rows, through the committer as it is and as one
   MERGE held whole (what it did before): seconds and memory.

Uses a throwaway MariaDB (Debian package) unless HUB_TEST_MYSQL names a server.  The
connectorx and mysqlclient bare paths run when they are installed (``pip install connectorx
mysqlclient``); the hub reads
MySQL with PyMySQL, so the source alone (``hub run (blackhole)``) bounds its ratio to
connectorx, a Rust reader.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from hubrun import run_hub

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mysql_bench import fill  # noqa: E402

from tests.servers import mariadb  # noqa: E402

PIPELINE = """
[pipeline]
name = "{name}"
parallelism = {p}
[checkpoint]
interval = "{interval}"
dir = "{dir}/state"
[source]
{connection}
tables = ["bench\\\\.orders"]
startup-mode = "{mode}"
[sink]
type = "delta"
path = "{dir}/lake"
maintenance-interval = "0s"
new-keys-append-threshold = {threshold}
"""


def write_pipeline(server, work: str, name: str, p: int, mode: str,
                   interval: str = "10s", threshold: int = 0) -> str:
    os.makedirs(work, exist_ok=True)
    path = f"{work}/pipeline.toml"
    with open(path, "w") as f:
        f.write(PIPELINE.format(name=name, p=p, dir=work, connection=server.source_toml(),
                                mode=mode, interval=interval, threshold=threshold))
    return path


def delta_rows(uri: str) -> int:
    from deltalake import DeltaTable

    try:
        return DeltaTable(uri).to_pyarrow_dataset().count_rows()
    except Exception:  # noqa: BLE001 - not created yet
        return 0


# -- 1. snapshot ----------------------------------------------------------------------------
def bare_snapshot(url: str, uri: str, p: int, client: str) -> None:
    """In its own process (``--bare``): the table into Delta, no CDC, with ``client``:
    connectorx (one Arrow table, ``p`` partitions), mysqlclient (a streaming cursor, Arrow
    batches of 100,000 rows streamed into one ``write_deltalake``) or PyMySQL (the hub's own
    driver: a streaming cursor, appends of 100,000 rows)."""
    import pyarrow as pa
    from deltalake import write_deltalake

    t0 = time.monotonic()
    if client == "connectorx":
        import connectorx

        kw = {"partition_on": "id", "partition_num": p} if p > 1 else {}
        table = connectorx.read_sql(url, "SELECT * FROM bench.orders", return_type="arrow",
                                    **kw)
        write_deltalake(uri, table, mode="append")
        n = table.num_rows
    elif client == "mysqlclient":
        n = 0
        with sscursor(url, client) as cur:
            names = [d[0] for d in cur.description]
            first = cur.fetchmany(100_000)
            schema = pa.table(dict(zip(names, map(list, zip(*first))))).schema

            def batches():
                nonlocal n
                rows = first
                while rows:
                    n += len(rows)
                    yield pa.RecordBatch.from_arrays(
                        [pa.array(c, type=f.type) for c, f in zip(zip(*rows), schema)],
                        schema=schema)
                    rows = cur.fetchmany(100_000)

            write_deltalake(uri, pa.RecordBatchReader.from_batches(schema, batches()),
                            mode="append")
    else:
        n = 0
        with sscursor(url, client) as cur:
            names = [d[0] for d in cur.description]
            while rows := cur.fetchmany(100_000):
                cols = list(zip(*rows))
                write_deltalake(uri, pa.table(dict(zip(names, map(list, cols)))),
                                mode="append")
                n += len(rows)
    secs = time.monotonic() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": n, "secs": secs, "rss": rss, "via": client}))


@contextlib.contextmanager
def sscursor(url: str, client: str):
    """A streaming (unbuffered) cursor of ``client`` (mysqlclient or PyMySQL) that has run
    ``SELECT * FROM bench.orders``."""
    from urllib.parse import urlparse

    u = urlparse(url)
    if client == "mysqlclient":
        import MySQLdb
        import MySQLdb.cursors

        conn = MySQLdb.connect(host=u.hostname, port=u.port, user=u.username,
                               password=u.password)
        cur = conn.cursor(MySQLdb.cursors.SSCursor)
    else:
        import pymysql
        import pymysql.cursors

        conn = pymysql.connect(host=u.hostname, port=u.port, user=u.username,
                               password=u.password, cursorclass=pymysql.cursors.SSCursor)
        cur = conn.cursor()
    try:
        cur.execute("SELECT * FROM bench.orders")
        yield cur
    finally:
        cur.close()
        conn.close()


#: The bare paths' readers, each run when its module is installed (PyMySQL always is).
CLIENTS = (("connectorx", "connectorx"), ("mysqlclient", "MySQLdb"), ("pymysql", "pymysql"))
SHORT = {"connectorx": "cx", "mysqlclient": "mc", "pymysql": "py"}


def bare_clients() -> list[str]:
    """The bare paths to run: connectorx and mysqlclient when installed, and PyMySQL."""
    import importlib.util

    return [c for c, module in CLIENTS if importlib.util.find_spec(module) is not None]


def run_bare(server, work: str, p: int, client: str) -> dict:
    url = f"mysql://{server.user}:{server.password}@{server.host}:{server.port}/bench"
    out = subprocess.run([sys.executable, __file__, "--bare", url, f"{work}/bare-{client}",
                          str(p), client], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def snapshot(server, rows: int, work: str, rounds: int, parallelism: list[int],
             compare: str | None = None) -> None:
    """Each round runs, per parallelism, the bare paths and the hub (checkpoints every 10 s
    and 2 s) one after the other; the table shows the best of ``rounds`` of each and its
    ratio to the best of each bare path (``vs cx``: connectorx, ``vs mc``: mysqlclient,
    ``vs py``: PyMySQL).  ``compare``: another checkout of the project (e.g. the main
    branch's) whose hub runs the same pipeline (checkpoints every 10 s) in each round, right
    after this one's, so that both see the same load."""
    print(f"\n1. snapshot of {rows:,} rows into Delta (hub: checkpoints every 10 s, i.e. one "
          f"commit at the end, and every 2 s); best of {rounds}, peak RSS the highest")
    best: dict[tuple[str, int], tuple[float, float]] = {}  # (path, p) -> (secs, peak RSS)

    def note(path: str, p: int, secs: float, rss: float) -> None:
        old = best.get((path, p))
        best[(path, p)] = (min(secs, old[0]) if old else secs, max(rss, old[1]) if old else rss)
        print(f"   round: {path:<24} p={p} {rows / secs:>10,.0f} rows/s {secs:6.2f}s "
              f"{rss:6.0f} MB", flush=True)

    for r in range(rounds):
        for p in parallelism:
            for client in bare_clients():
                if client != "connectorx" and p != parallelism[0]:
                    continue  # one connection whatever p: its figure of the first p stands
                bare = run_bare(server, f"{work}/bare-{p}-{r}", p, client)
                note(f"bare ({client})", p, bare["secs"], bare["rss"])
            runs = [(interval, None, "") for interval in ("10s", "2s")]
            if compare:  # the other checkout's hub, same pipeline, in the same round
                runs.insert(1, ("10s", compare, f"{os.path.basename(compare)}: "))
            for interval, cwd, label in runs:
                d = f"{work}/hub-{p}-{interval}-{r}"
                h = run_hub(write_pipeline(server, d, f"delta-bench-{p}", p, "initial-only",
                                           interval), cwd=cwd)
                in_table = delta_rows(f"{d}/lake/bench/orders")
                if in_table != rows:
                    raise SystemExit(f"{d}: {in_table:,} rows in the table, not {rows:,}")
                note(f"{label}hub run (delta) {interval}", p, h.run_s, h.peak_rss_mb)
                shutil.rmtree(d, ignore_errors=True)
            if p == 1:  # the source alone, every round (best of, as the others)
                d = f"{work}/blackhole-{r}"  # a state folder of its own: a fresh run
                text = open(write_pipeline(server, d, "blackhole", 1, "initial-only")).read()
                with open(f"{d}/pipeline.toml", "w") as f:
                    f.write(text[:text.index("[sink]")] + '[sink]\ntype = "blackhole"\n')
                h = run_hub(f"{d}/pipeline.toml")
                note("hub run (blackhole)", p, h.run_s, h.peak_rss_mb)
    clients = bare_clients()
    print(f"{'path':<26} {'p':>2} {'rows/s':>10} {'s':>7} {'peak RSS MB':>12} "
          + " ".join(f"{'vs ' + SHORT[c]:>6}" for c in clients))
    for (path, p), (secs, rss) in sorted(best.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        ratios = ""
        for client in clients:
            b = best.get((f"bare ({client})", p)) or best.get((f"bare ({client})",
                                                              parallelism[0]))
            ratios += f" {b[0] / secs:>5.2f}x" if b and not path.startswith("bare") else "       "
        print(f"{path:<26} {p:>2} {rows / secs:>10,.0f} {secs:>7.2f} {rss:>12.0f}{ratios}")


# -- 2. change stream -----------------------------------------------------------------------
def workload(server, changes: int, start_id: int, rows: int) -> tuple[int, float]:
    """About ``changes`` row changes as bulk statements: 70% inserts (new ids), 20% updates,
    10% deletes of existing rows, in rounds of 10,000; then the marker row (id -1).  Returns
    the rows the statements changed, and the seconds they took."""
    conn = server.connect()
    t0 = time.monotonic()
    step, next_id, low, done = 10_000, start_id, 0, 0
    ins, upd, dele = int(step * 0.7), int(step * 0.2), int(step * 0.1)
    with conn.cursor() as cur:
        while done < changes:
            done += cur.execute(
                f"INSERT INTO bench.orders SELECT id + {next_id}, customer_id, amount, status, "
                f"note, updated_at, attrs FROM bench.orders WHERE id >= {rows - ins} AND "
                f"id < {rows}")
            next_id += ins
            done += cur.execute(f"UPDATE bench.orders SET amount = amount + 1, status = "
                                f"'changed' WHERE id >= {low} AND id < {low + upd}")
            done += cur.execute(f"DELETE FROM bench.orders WHERE id >= {low + upd} AND "
                                f"id < {low + upd + dele}")
            low += upd + dele
            if low + upd + dele >= rows - ins:
                low = 0  # another pass: its updates and deletes meet fewer rows
        cur.execute("INSERT INTO bench.orders (id, status) VALUES (-1, 'marker')")
    conn.commit()
    conn.close()
    return done, time.monotonic() - t0


def has_marker(uri: str) -> bool:
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    try:
        return DeltaTable(uri).to_pyarrow_dataset().count_rows(filter=pc.field("id") == -1) > 0
    except Exception:  # noqa: BLE001 - a commit in flight
        return False


def change_stream(server, rows: int, changes: int, work: str, threshold: int = 0) -> None:
    print(f"\n2. change stream: {changes:,} changes (70% inserts, 20% updates, 10% deletes) "
          f"against {rows:,} rows, checkpoints every 10 s, new-keys-append-threshold = "
          f"{threshold}")
    d = f"{work}/stream"
    path = write_pipeline(server, d, "delta-stream", 2, "initial", threshold=threshold)
    uri = f"{d}/lake/bench/orders"
    p = subprocess.Popen([sys.executable, "-m", "hub", "run", path, "--no-progress"],
                         stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while delta_rows(uri) < rows and time.monotonic() < deadline:
        time.sleep(1)
    p.send_signal(signal.SIGTERM)
    p.wait(120)
    from deltalake import DeltaTable

    first = DeltaTable(uri).version()
    changes, secs = workload(server, changes, 10 * rows, rows)
    print(f"   (MariaDB made {changes:,} changes in {secs:.1f}s; the pipeline was stopped)")
    t0 = time.monotonic()
    p = subprocess.Popen([sys.executable, "-m", "hub", "run", path, "--no-progress"],
                         stderr=subprocess.DEVNULL)
    while not has_marker(uri) and time.monotonic() - t0 < 900:
        time.sleep(0.25)
    took = time.monotonic() - t0
    p.send_signal(signal.SIGTERM)
    _, _, usage = os.wait4(p.pid, 0)
    merges = [c for c in DeltaTable(uri).history() if c["version"] > first
              and c["operation"] in ("MERGE", "WRITE")]
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM bench.orders")
        (source,) = cur.fetchone()
    conn.close()
    print(f"   {changes:,} changes in {took:.1f}s from the restart: {changes / took:,.0f} "
          f"changes/s (hub start and the last 10 s checkpoint included); peak RSS "
          f"{usage.ru_maxrss / 1024:.0f} MB")
    for c in reversed(merges):  # a MERGE; an append of new keys (see the delta committer)
        m = c.get("operationMetrics") or {}
        if c["operation"] == "WRITE":
            print(f"   append {m.get('num_added_rows', 0):>8,} new keys: "
                  f"{m.get('execution_time_ms', 0) / 1000:6.2f}s (checkpoint "
                  f"{c.get('hub.checkpoint')})")
            continue
        print(f"   MERGE {m['num_source_rows']:>9,} changes: {m['execution_time_ms'] / 1000:6.2f}s "
              f"({m['num_target_rows_inserted']:,} ins, {m['num_target_rows_updated']:,} upd, "
              f"{m['num_target_rows_deleted']:,} del, {m['num_target_rows_copied']:,} copied; "
              f"checkpoint {c.get('hub.checkpoint')})")
    print(f"   table: {delta_rows(uri):,} rows, source: {source:,}")


# -- 2b. the sink alone ---------------------------------------------------------------------
def sink_alone(rows: int, changes: int, work: str) -> None:
    """The change stream's changes through the delta sink's own writer and committer (no
    source, no binlog): what the sink takes per second on this machine."""
    import numpy as np
    import pyarrow as pa

    from runtime.batch import ChangeBatch
    from runtime.schema import Column, TableSchema
    from runtime.sink import CommitContext, WriterContext
    from runtime.types import T
    from sinks.delta.config import DeltaSinkConfig
    from sinks.delta.sink import DeltaSink

    schema = TableSchema("bench.orders", tuple(Column(n, T(t)) for n, t in (
        ("id", "BIGINT"), ("customer_id", "INT"), ("amount", "DECIMAL(12,2)"),
        ("status", "VARCHAR(16)"), ("note", "VARCHAR(200)"), ("updated_at", "TIMESTAMP(6)"),
        ("attrs", "JSON"))), ("id",))

    def batch(ids: np.ndarray, ops: str, seq: int) -> ChangeBatch:
        cents = pa.array(ids % 10_000_000, pa.int64()).cast(pa.decimal128(19, 0))
        arrow = pa.RecordBatch.from_arrays([
            pa.array(ids), pa.array((ids % 100_000).astype(np.int32)),
            cents.cast(pa.decimal128(12, 2), safe=False),
            pa.array(np.array(["paid", "shipped", "pending"])[ids % 3]),
            pa.array(np.char.add("note for order with some words to make it longer ",
                                 ids.astype(str))),
            pa.array(ids * 1000, pa.timestamp("us")),
            pa.array(np.char.add('{"color": "red", "size": ', (ids % 50).astype(str)))],
            schema=schema.arrow_schema)
        return ChangeBatch(schema, ops, arrow=arrow, ts_ms=0,
                           versions=np.arange(seq, seq + len(ids)))

    sink = DeltaSink(DeltaSinkConfig.model_validate({"path": f"{work}/sink-alone",
                                                     "maintenance-interval": "0s"}))
    committer = sink.create_committer()
    state = f"{work}/sink-alone-state"
    per_checkpoint = changes // 2
    rng = np.random.default_rng(3)
    next_id, seq, total, spent = rows, 0, 0, 0.0
    print(f"\n2b. the sink alone: {rows:,} rows, then checkpoints of {per_checkpoint:,} "
          f"changes (70/20/10) through its writer and committer")
    for cp in range(1, 4):
        writer = sink.create_writer(WriterContext("sink-alone", 0, 1, "a", state), None)
        t0 = time.monotonic()
        if cp == 1:
            for start in range(0, rows, 10_000):
                writer.write(batch(np.arange(start, start + 10_000), "r" * 10_000, seq))
                seq += 10_000
            n = rows
        else:
            ins, upd, dele = int(per_checkpoint * .7), int(per_checkpoint * .2), \
                per_checkpoint - int(per_checkpoint * .7) - int(per_checkpoint * .2)
            keys = rng.choice(next_id, upd + dele, replace=False)
            ids = np.concatenate([np.arange(next_id, next_id + ins), keys])
            ops = "c" * ins + "u" * upd + "d" * dele
            order = rng.permutation(len(ids))
            ids, ops = ids[order], "".join(np.array(list(ops))[order])
            next_id += ins
            for start in range(0, len(ids), 10_000):
                writer.write(batch(ids[start:start + 10_000], ops[start:start + 10_000], seq))
                seq += 10_000
            n = len(ids)
        committables = writer.prepare_commit(cp)
        writer.close()
        committer.commit(committables, CommitContext("sink-alone", cp, None, state, "job"))
        took = time.monotonic() - t0
        what = "snapshot" if cp == 1 else "changes"
        print(f"   checkpoint {cp}: {n:,} {what} staged and committed in {took:.2f}s: "
              f"{n / took:,.0f}/s", flush=True)
        if cp > 1:
            total, spent = total + n, spent + took
    print(f"   changes: {total / spent:,.0f}/s; table: "
          f"{delta_rows(f'{work}/sink-alone/bench/orders'):,} rows")


# -- 3. merge cost against table size -------------------------------------------------------
def _reset_peak() -> int:
    """Reset this process's peak RSS (Linux ``clear_refs``) and return its RSS now, KiB."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status("VmRSS")


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))


def merge_one(root: str, job: dict) -> None:
    """In its own process (``--merge-one``), so that its memory is the commit's alone: the
    staged checkpoint (``committables``) committed by the delta committer into the table
    ``bench.orders`` under ``root`` with ``new-keys-append-threshold`` = ``threshold``;
    prints seconds and the memory the commit added (peak RSS over RSS before it, MB)."""
    import pyarrow.dataset  # noqa: F401 - imported before the measure, as in a running hub

    from runtime.sink import CommitContext
    from sinks.delta.config import DeltaSinkConfig
    from sinks.delta.sink import DeltaSink

    committer = DeltaSink(DeltaSinkConfig.model_validate(
        {"path": root, "maintenance-interval": "0s",
         "new-keys-append-threshold": job["threshold"]})).create_committer()
    before = _reset_peak()
    t0 = time.monotonic()
    committer.commit(job["committables"], CommitContext("bench", 1, None, job["state"], "j"))
    secs = time.monotonic() - t0
    print(json.dumps({"secs": secs, "grew": (_status("VmHWM") - before) / 1024}))


def merge_cost(sizes: list[int], work: str, rounds: int = 1) -> None:
    """One checkpoint of 300,000 changes into a table of each size, staged by the delta
    sink's writer and committed by its committer in a process of its own, two ways on
    copies of the same table: ``split`` (``new-keys-append-threshold = 100000``: a MERGE of
    the updates and deletes, then an append of the new keys) and as by default
    (``one MERGE`` of all changes), alternating, best of ``rounds``; seconds and the memory
    the commit added (peak RSS over RSS before it, the highest)."""
    import numpy as np
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    from runtime.batch import ChangeBatch
    from runtime.schema import Column, TableSchema
    from runtime.sink import WriterContext
    from runtime.types import T
    from sinks.delta.config import DeltaSinkConfig
    from sinks.delta.sink import DeltaSink

    print("\n3. one checkpoint of 300,000 changes (210k inserts of new keys, 60k updates, 30k "
          "deletes) into a table compacted to 128 MB files, updated and deleted keys spread "
          "over the whole table, or among its newest 1,000,000 keys (CDC's usual shape)")
    print(f"{'table rows':>12} {'keys':>8} {'path':>10} {'commit s':>9} {'+RSS MB':>8} "
          f"{'files rewritten':>16} {'rows copied':>12}")
    rng = np.random.default_rng(7)
    schema = TableSchema("bench.orders", tuple(Column(n, T(t)) for n, t in (
        ("id", "BIGINT"), ("customer_id", "INT"), ("amount", "DOUBLE"), ("status", "STRING"),
        ("note", "STRING"))), ("id",))

    def rows_of(ids: np.ndarray) -> pa.Table:
        n = len(ids)
        return pa.Table.from_arrays([
            pa.array(ids, pa.int64()), pa.array((ids % 100_000).astype(np.int32)),
            pa.array(rng.random(n) * 1000), pa.array(np.array(["paid", "shipped",
                                                                "pending"])[ids % 3]),
            pa.array(np.char.add("note ", (ids % 997).astype(str)))],
            schema=schema.arrow_schema)

    for size in sizes:
        base = f"{work}/merge-{size}"
        shutil.rmtree(base, ignore_errors=True)
        uri = f"{base}/bench/orders"
        for start in range(0, size, 1_000_000):
            write_deltalake(uri, rows_of(np.arange(start, min(size, start + 1_000_000))),
                            mode="append")
        DeltaTable(uri).optimize.compact()  # as maintenance leaves it
        for spread in (True, False):
            low = 0 if spread else max(0, size - 1_000_000)
            keys = low + rng.choice(size - low, 90_000, replace=False)
            ids = np.concatenate([np.arange(size, size + 210_000), keys])
            ops = "c" * 210_000 + "u" * 60_000 + "d" * 30_000
            data = rows_of(ids)
            best: dict[str, tuple[float, float, dict]] = {}
            for path in [p for _ in range(rounds) for p in ("split", "one MERGE")]:
                copy = f"{work}/merge-copy"
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(base, copy)
                state = f"{work}/merge-state"
                sink = DeltaSink(DeltaSinkConfig.model_validate(
                    {"path": copy, "maintenance-interval": "0s"}))
                w = sink.create_writer(WriterContext("bench", 0, 1, "a", state), None)
                at = 0
                for b in data.to_batches(max_chunksize=10_000):
                    w.write(ChangeBatch(schema, ops[at:at + b.num_rows], arrow=b,
                                        versions=np.arange(at, at + b.num_rows)))
                    at += b.num_rows
                job = {"committables": w.prepare_commit(1), "state": state,
                       "threshold": 100_000 if path == "split" else 0}
                w.close()
                out = subprocess.run([sys.executable, __file__, "--merge-one", copy,
                                      json.dumps(job)], capture_output=True, text=True)
                if out.returncode:
                    raise SystemExit(f"merge-one failed: {out.stderr[-2000:]}")
                r = json.loads(out.stdout.strip().splitlines()[-1])
                merges = [c for c in DeltaTable(f"{copy}/bench/orders").history(3)
                          if c["operation"] == "MERGE"]
                m = merges[0]["operationMetrics"] if merges else {}
                old = best.get(path)
                best[path] = (min(r["secs"], old[0]) if old else r["secs"],
                              max(r["grew"], old[1]) if old else r["grew"], m)
                shutil.rmtree(copy, ignore_errors=True)
                shutil.rmtree(state, ignore_errors=True)
            for path, (secs, grew, m) in best.items():
                print(f"{size:>12,} {'spread' if spread else 'newest':>8} {path:>10} "
                      f"{secs:>9.2f} {grew:>8.0f} {m.get('num_target_files_removed', 0):>16} "
                      f"{m.get('num_target_rows_copied', 0):>12,}", flush=True)
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--bare":
        bare_snapshot(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--merge-one":
        merge_one(sys.argv[2], json.loads(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--changes", type=int, default=2_000_000)
    ap.add_argument("--merge-sizes", default="1000000,10000000")
    ap.add_argument("--skip", default="", help="parts to skip, e.g. 2,3")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds of the snapshot and the merge cost (best of)")
    ap.add_argument("--parallelism", default="1,2", help="snapshot parallelisms")
    ap.add_argument("--compare", default=None, metavar="CHECKOUT",
                    help="another checkout of the project (e.g. /work/main) whose hub also "
                         "runs each snapshot round, for a comparison under the same load")
    ap.add_argument("--new-keys-append-threshold", type=int, default=0,
                    help="the delta sink's option in the change stream (0: one commit per "
                         "checkpoint, the default)")
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    work = tempfile.mkdtemp(prefix="hub-delta-bench-")
    server = None
    try:
        if not {"1", "2"} <= skip:  # parts with MariaDB
            server = mariadb.shared()  # docker-compose's, or a throwaway one stopped at exit
            fill(server, args.rows)
        if "1" not in skip:
            snapshot(server, args.rows, work, args.rounds,
                     [int(p) for p in args.parallelism.split(",")], args.compare)
        if "2" not in skip:
            change_stream(server, args.rows, args.changes, work, args.new_keys_append_threshold)
        if "2b" not in skip:
            sink_alone(args.rows, args.changes, work)
        if "3" not in skip:
            merge_cost([int(s) for s in args.merge_sizes.split(",")], work, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
