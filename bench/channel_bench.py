"""Channels bounded by bytes: throughput and peak memory of a pipeline whose sink is slower
than its source, by ``[pipeline] channel-bytes``, run as a user runs it (``hub run``).

    python bench/channel_bench.py [--rows 2000000] [--batch-size 100000] [--bytes 1GB,64MB,8MB]

A datagen ``orders`` pipeline (7 typed columns, ``--batch-size`` rows per batch) into a Parquet
lake (the files sink: slower than datagen, so the channels fill up), exactly-once checkpoints
every second, parallelism 1; ``channel-capacity`` stays 8 batches.  ``1GB`` is in effect the
count alone (8 batches, whatever their size: the bound before); the others bound each
channel by its batches' Arrow bytes too.  Prints events/s (rows over the pipeline's own run
time), wall time including process start, and the peak RSS of the process.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile

from hubrun import datagen_pipeline, run_hub

SINK = '[sink]\ntype = "files"\npath = "{lake}"\nformat = "parquet"\n'


def run_once(channel_bytes: str, rows: int, batch_size: int, work: str) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    text = datagen_pipeline("bench", 1, f"{work}/state", rows, SINK.format(lake=f"{work}/lake"),
                            batch_size=batch_size)
    text = text.replace("parallelism = 1\n",
                        f'parallelism = 1\nchannel-bytes = "{channel_bytes}"\n')
    path = f"{work}/pipeline.toml"
    with open(path, "w") as f:
        f.write(text)
    r = run_hub(path)
    return {"bytes": channel_bytes, "rows": r.rows, "events_per_s": r.rows_per_s,
            "wall_s": r.wall_s, "peak_rss_mb": r.peak_rss_mb}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--batch-size", type=int, default=100_000)
    ap.add_argument("--bytes", default="1GB,64MB,8MB")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="hub-bench-")
    print(f"{'channel-bytes':>13} {'rows':>10} {'events/s':>12} {'wall s':>7} {'peak RSS MB':>12}")
    try:
        for size in args.bytes.split(","):
            r = run_once(size, args.rows, args.batch_size, f"{work}/run")
            print(f"{r['bytes']:>13} {r['rows']:>10,} {r['events_per_s']:>12,.0f} "
                  f"{r['wall_s']:>7.2f} {r['peak_rss_mb']:>12.0f}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
