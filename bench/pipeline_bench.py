"""Throughput and peak memory of whole pipelines, run as a user runs them (``hub run``).

    python bench/pipeline_bench.py [--rows 5000000] [--sinks blackhole,parquet] [--parallelism 1,2]

For each sink and parallelism: a datagen ``orders`` pipeline (7 typed columns) with
exactly-once checkpointing every second, into the blackhole sink or a Parquet lake.  Prints
events/s (rows over the pipeline's own run time, from its summary line), wall time including
process start, and the peak RSS of the process.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile

from hubrun import datagen_pipeline, run_hub

SINKS = {
    "blackhole": '[sink]\ntype = "blackhole"\n',
    "parquet": '[sink]\ntype = "files"\npath = "{lake}"\nformat = "parquet"\n',
    "jsonl": '[sink]\ntype = "files"\npath = "{lake}"\nformat = "jsonl"\n',
    "csv": '[sink]\ntype = "files"\npath = "{lake}"\nformat = "csv"\n',
}


def run_once(sink: str, parallelism: int, rows: int, changes: bool, work: str) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    text = datagen_pipeline("bench", parallelism, f"{work}/state", rows,
                            SINKS[sink].format(lake=f"{work}/lake"), changes)
    path = f"{work}/pipeline.toml"
    with open(path, "w") as f:
        f.write(text)
    r = run_hub(path)
    return {"sink": sink, "parallelism": parallelism, "rows": r.rows, "run_s": r.run_s,
            "events_per_s": r.rows_per_s, "wall_s": r.wall_s, "peak_rss_mb": r.peak_rss_mb}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--sinks", default="blackhole,parquet")
    ap.add_argument("--parallelism", default="1,2")
    ap.add_argument("--changes", action="store_true", help="20%% updates, 10%% deletes")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="hub-bench-")
    print(f"{'sink':<10} {'p':>2} {'rows':>10} {'events/s':>12} {'run s':>7} {'wall s':>7} {'peak RSS MB':>12}")
    try:
        for sink in args.sinks.split(","):
            for p in (int(x) for x in args.parallelism.split(",")):
                r = run_once(sink, p, args.rows, args.changes, os.path.join(work, f"{sink}-{p}"))
                print(f"{r['sink']:<10} {r['parallelism']:>2} {r['rows']:>10,} "
                      f"{r['events_per_s']:>12,.0f} {r['run_s']:>7.2f} {r['wall_s']:>7.2f} "
                      f"{r['peak_rss_mb']:>12.0f}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
