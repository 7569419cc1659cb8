"""The hdfs sink next to the bare ``hdfs`` client, on the same WebHDFS in the same run.

    python bench/hdfs_bench.py [--rows 1000000] [--webhdfs http://127.0.0.1:9870]
                               [--checkpoints-on-hdfs]

Without ``--webhdfs`` (or ``HUB_TEST_WEBHDFS``) it starts our WebHDFS test server
(tests/servers/webhdfs.py) in a process of its own.  Rows:

* ``hub hdfs sink``: ``hub run`` of a datagen ``orders`` pipeline (7 typed columns) into
  ``type = "hdfs"`` (Parquet), exactly once with a checkpoint every second; rows over the
  pipeline's own run time (its summary line).
* ``bare client upload``: the very Parquet files the sink made, uploaded again with
  ``InsecureClient.write`` (files read into memory first, untimed): the plain file upload.
* ``bare pyarrow+client``: the same rows (read back first, untimed) encoded to Parquet with
  pyarrow and uploaded with the client: what a hand-written job does, without the hub.
* ``hub files sink (local)``: the same pipeline into a local folder, for the cost of HDFS.

The ratio column is each row's rate over the hub hdfs sink's.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import sys

from hubrun import run_hub
import tempfile
import time

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from runtime.fs import filesystem  # noqa: E402

PIPELINE = """
[pipeline]
name = "hdfs-bench"
parallelism = 1
[checkpoint]
interval = "1s"
dir = "{state}"
[source]
type = "datagen"
tables = ["orders"]
rows = {rows}
[sink]
type = "{sink}"
path = "{lake}"
format = "parquet"
"""


def hub_run(sink: str, lake: str, state: str, rows: int, work: str) -> tuple[int, float]:
    """(rows, seconds) of one ``hub run``, from its summary line."""
    path = os.path.join(work, f"{sink}.toml")
    with open(path, "w") as f:
        f.write(PIPELINE.format(state=state, lake=lake, rows=rows, sink=sink))
    r = run_hub(path, "--fresh", cwd=work)
    return r.rows, r.run_s


def visible_parts(lake: str) -> list[str]:
    fs = filesystem(lake)
    return sorted(f.path for _d, _s, files in fs.walk(lake) for f in files
                  if f.name.endswith(".parquet") and not f.name.startswith("."))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--webhdfs", default=os.environ.get("HUB_TEST_WEBHDFS"),
                    help="namenode HTTP URL; default: start the WebHDFS test server")
    ap.add_argument("--checkpoints-on-hdfs", action="store_true",
                    help="keep the pipeline's checkpoints on HDFS too")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="hub-hdfs-bench-")
    server = None
    if args.webhdfs:
        http = args.webhdfs.rstrip("/")
    else:
        from tests.servers.webhdfs import ThrowawayWebHdfs

        server = ThrowawayWebHdfs()
        http = server.start().http_url
    base = "hdfs://" + http.split("://", 1)[1] + f"/bench-{os.getpid()}"
    fs = filesystem(base)
    try:
        state = f"{base}/state" if args.checkpoints_on_hdfs else f"{work}/state"
        n, secs = hub_run("hdfs", f"{base}/lake", state, args.rows, work)
        parts = visible_parts(f"{base}/lake")
        blobs = [fs.read_bytes(p) for p in parts]
        tables = [pq.read_table(pa.BufferReader(b)) for b in blobs]
        assert sum(t.num_rows for t in tables) == n, "the sink lost or duplicated rows"
        size = sum(len(b) for b in blobs)

        client = fs.client
        t0 = time.perf_counter()
        for i, b in enumerate(blobs):
            client.write(f"/bench-{os.getpid()}/upload/part-{i}.parquet", data=b)
        upload_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        for i, t in enumerate(tables):
            buf = io.BytesIO()
            pq.write_table(t, buf, compression="zstd", row_group_size=64 * 1024)
            client.write(f"/bench-{os.getpid()}/encode/part-{i}.parquet", data=buf.getvalue())
        encode_s = time.perf_counter() - t0

        ln, lsecs = hub_run("files", f"{work}/lake", f"{work}/local-state", args.rows, work)

        sink_rate = n / secs
        print(f"{n:,} rows, {len(parts)} part files, {size / 1e6:.1f} MB of Parquet, WebHDFS at "
              f"{http}{' (our test server)' if server else ''}, checkpoints "
              f"{'on HDFS' if args.checkpoints_on_hdfs else 'local'}")
        print(f"{'run':<26} {'rows/s':>12} {'MB/s':>8} {'seconds':>8} {'vs hub hdfs':>12}")
        for name, rows, s in (("hub hdfs sink", n, secs),
                              ("bare client upload", n, upload_s),
                              ("bare pyarrow+client", n, encode_s),
                              ("hub files sink (local)", ln, lsecs)):
            print(f"{name:<26} {rows / s:>12,.0f} {size / 1e6 / s:>8.1f} {s:>8.2f} "
                  f"{(rows / s) / sink_rate:>11.2f}x")
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
