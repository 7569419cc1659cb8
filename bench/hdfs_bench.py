"""The hdfs sink next to the bare ``hdfs`` client, on the same WebHDFS in the same run.

    python bench/hdfs_bench.py [--rows 1000000] [--webhdfs http://127.0.0.1:9870]
                               [--checkpoints-on-hdfs] [--rounds 3]

Without ``--webhdfs`` (or ``HUB_TEST_WEBHDFS``) it starts a real HDFS, Apache Hadoop's
NameNode and DataNode (tests/servers/hdfs.py, jars from Maven Central), on free ports; with
``--stand-in``, our WebHDFS test server (tests/servers/webhdfs.py) instead.

What is compared.  ``hub run`` of a datagen ``orders`` pipeline (7 typed columns) into
``type = "hdfs"`` Parquet, exactly once with a checkpoint every second, timed by its own
summary line, has to make its rows, encode them and upload them.  A bare client that only
uploads finished bytes, or encodes rows it already holds, skips work the pipeline can't skip,
and its ratio measures that work instead of the sink.  So the bare baseline is the same job by
hand: the same rows from datagen's own generator, as Parquet in the same format (the sink's
columns, ``op`` and ``ts_ms`` included, its Arrow schema and its Parquet options), uploaded
with ``InsecureClient.write``.  The rows of the table, fastest first:

* ``bare: upload only``: the very files the sink made (read into memory first, untimed),
  uploaded again: the plain file upload, the cost of WebHDFS alone;
* ``bare: encode + upload``: those files' rows (read back first, untimed) encoded and
  uploaded: the cost of Parquet and WebHDFS;
* ``bare: generate + encode + upload``: the fair baseline described above (target: the sink
  at 80% of it or better);
* ``hub blackhole (datagen only)``: the pipeline without a sink, what the source costs;
* ``hub hdfs sink``, and ``hub files sink (local)``: the same pipeline into a local folder,
  for the cost of HDFS.

Each of ``--rounds`` rounds runs every row once, in alternating order; each row's figure is
its best round (other processes on a shared machine slow single runs down, the pipeline with
its several threads more than a one-thread bare run; the best of each is what each can do).
The last two columns are the hub hdfs sink's rate as a share of each row's: best round to
best round, and median to median.

Process settings: ``hub run`` applies those of ``runtime/__init__.py`` (the memory
allocator's purge delay, one BLAS thread) before it imports pyarrow and numpy; this script
imports ``runtime`` first too, so the bare runs have the same.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Before pyarrow: the process settings ``hub run`` has (runtime/__init__.py sets the memory
# allocator's purge delay, read once when pyarrow loads) hold for the bare runs too.
import runtime  # noqa: E402, F401, I001

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from hubrun import datagen_pipeline, run_hub  # noqa: E402

from bench.elasticsearch_bench import datagen_rows  # noqa: E402 - same rows, one generator
from formats.file.parquet import ParquetConfig  # noqa: E402
from runtime.fs import filesystem  # noqa: E402

START_MS = 1_767_225_600_000


def hub_run(sink: str, lake: str | None, state: str, rows: int, work: str) -> tuple[int, float]:
    """(rows, seconds) of one ``hub run`` into ``sink`` (Parquet files under ``lake``), from
    its summary line."""
    path = os.path.join(work, f"{sink}.toml")
    with open(path, "w") as f:
        # event-time-start 2026-01-01 (START_MS): the same ts_ms column as by_hand()'s
        f.write(datagen_pipeline("hdfs-bench", 1, state, rows, f'[sink]\ntype = "{sink}"\n'))
        if lake is not None:
            f.write(f'path = "{lake}"\nformat = "parquet"\n')
    r = run_hub(path, "--fresh", cwd=work)
    return r.rows, r.run_s


def visible_parts(lake: str) -> list[str]:
    fs = filesystem(lake)
    return sorted(f.path for _d, _s, files in fs.walk(lake) for f in files
                  if f.name.endswith(".parquet") and not f.name.startswith("."))


def encode(table: pa.Table) -> bytes:
    """Parquet as the sink writes it (the parquet format's default options)."""
    cfg = ParquetConfig()
    buf = io.BytesIO()
    pq.write_table(table, buf, compression=cfg.compression,
                   compression_level=cfg.compression_level, row_group_size=cfg.row_group_size)
    return buf.getvalue()


def by_hand(client, path: str, rows: int, schema: pa.Schema) -> float:
    """Seconds to generate ``rows`` datagen rows, encode them as the sink's Parquet (its
    ``schema``) and upload them: the job the pipeline does, written by hand."""
    t0 = time.perf_counter()
    tables, done = [], 0
    for b in datagen_rows(rows):
        k = b.num_rows
        # the changelog columns of the files sink: op ("c", datagen's inserts) and ts_ms
        ts = pa.array(np.arange(START_MS + done, START_MS + done + k, dtype=np.int64))
        tables.append(pa.Table.from_arrays([*b.columns, pa.repeat(pa.scalar("c"), k), ts],
                                           schema=schema))
        done += k
    client.write(path, data=encode(pa.concat_tables(tables)))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--webhdfs", default=os.environ.get("HUB_TEST_WEBHDFS"),
                    help="namenode HTTP URL; default: start a NameNode and a DataNode")
    ap.add_argument("--stand-in", action="store_true",
                    help="start our WebHDFS test server instead of a real HDFS")
    ap.add_argument("--checkpoints-on-hdfs", action="store_true",
                    help="keep the pipeline's checkpoints on HDFS too")
    ap.add_argument("--rounds", type=int, default=3, help="measurements of each, alternating")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="hub-hdfs-bench-")
    server = None
    if args.webhdfs:
        http = args.webhdfs.rstrip("/")
    elif args.stand_in:
        from tests.servers.webhdfs import ThrowawayWebHdfs

        server = ThrowawayWebHdfs()
        http = server.start().http_url
    else:
        from tests.servers.hdfs import ThrowawayHdfs

        server = ThrowawayHdfs()
        http = server.start().http_url
    root = f"/bench-{os.getpid()}"
    base = "hdfs://" + http.split("://", 1)[1] + root
    fs = filesystem(base)
    client = fs.client
    secs: dict[str, list[float]] = {}  # row -> seconds of each round
    size = parts = 0

    def add(name: str, s: float) -> None:
        secs.setdefault(name, []).append(s)

    try:
        for r in range(args.rounds):
            state = f"{base}/state" if args.checkpoints_on_hdfs else f"{work}/state"
            # the sink first (its files feed the next two rows), then the rest alternating
            n, s = hub_run("hdfs", f"{base}/lake", state, args.rows, work)
            assert n == args.rows
            add("hub hdfs sink", s)
            found = visible_parts(f"{base}/lake")
            blobs = [fs.read_bytes(p) for p in found]
            tables = [pq.read_table(pa.BufferReader(b)) for b in blobs]
            assert sum(t.num_rows for t in tables) == n, "the sink lost or duplicated rows"
            size, parts = sum(len(b) for b in blobs), len(found)
            fs.rmtree(f"{base}/lake")

            def upload() -> float:
                t0 = time.perf_counter()
                for i, b in enumerate(blobs):
                    client.write(f"{root}/upload/{r}-{i}.parquet", data=b)
                return time.perf_counter() - t0

            def encode_upload() -> float:
                t0 = time.perf_counter()
                for i, t in enumerate(tables):
                    client.write(f"{root}/encode/{r}-{i}.parquet", data=encode(t))
                return time.perf_counter() - t0

            def local() -> float:
                ln, s = hub_run("files", f"{work}/lake", f"{work}/local-state", args.rows, work)
                assert ln == n
                shutil.rmtree(f"{work}/lake")
                return s

            def blackhole() -> float:
                bn, s = hub_run("blackhole", None, f"{work}/bh-state", args.rows, work)
                assert bn == n
                return s

            runs = [("bare: upload only", upload), ("bare: encode + upload", encode_upload),
                    ("bare: generate + encode + upload",
                     lambda: by_hand(client, f"{root}/hand/{r}.parquet", n, tables[0].schema)),
                    ("hub blackhole (datagen only)", blackhole),
                    ("hub files sink (local)", local)]
            for name, fn in (runs if r % 2 == 0 else runs[::-1]):
                add(name, fn())
        rows = args.rows
        print(f"{args.rows:,} rows, best of {args.rounds} rounds, {parts} part files, "
              f"{size / 1e6:.1f} MB of Parquet, WebHDFS at {http}"
              f"{' (our test server)' if args.stand_in else ' (Hadoop 3.4.1)' if server else ''}"
              f", checkpoints "
              f"{'on HDFS' if args.checkpoints_on_hdfs else 'local'}")
        print(f"{'run':<34} {'rows/s':>12} {'seconds':>8} {'hdfs sink at':>13} {'(median)':>9}")
        hub_best, hub_median = min(secs["hub hdfs sink"]), statistics.median(secs["hub hdfs sink"])
        for name in ("bare: upload only", "bare: encode + upload",
                     "bare: generate + encode + upload", "hub blackhole (datagen only)",
                     "hub hdfs sink", "hub files sink (local)"):
            s, m = min(secs[name]), statistics.median(secs[name])
            print(f"{name:<34} {rows / s:>12,.0f} {s:>8.2f} {s / hub_best:>13.0%} "
                  f"{m / hub_median:>9.0%}")
    finally:
        try:
            fs.rmtree(base)
        except OSError as exc:
            print(f"could not remove {base}: {exc}", file=sys.stderr)
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
