"""Scale-out on Ray: datagen -> parquet files through ``hub run`` with ``[pipeline] executor =
"ray"`` on a two-node Ray cluster started here (tests/servers/ray.py: one CPU per node), at
parallelism 1 (one subtask pair, one node) and 2 (a pair on each node), side by side with the
local executor at the same parallelism in the same run.

    python bench/ray_bench.py [--rows 1000000] [--address HOST:PORT]

Prints rows/s from each run's own summary line and the speed-up of parallelism 2 over 1.
Both nodes share this machine (two cores): the figure says how the data path scales, on a
machine other processes load too.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hubrun import datagen_pipeline, run_hub  # noqa: E402

SINK = '[sink]\ntype = "files"\npath = "{lake}"\nformat = "parquet"\n'


def run_once(executor: str, address: str | None, parallelism: int, rows: int, work: str) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    text = datagen_pipeline(f"ray-bench-{executor}-{parallelism}", parallelism,
                            f"{work}/state", rows, SINK.format(lake=f"{work}/lake"))
    extra = f'executor = "{executor}"\n' + (f'ray-address = "{address}"\n' if address else "")
    text = text.replace(f"parallelism = {parallelism}\n",
                        f"parallelism = {parallelism}\n{extra}", 1)
    path = f"{work}/pipeline.toml"
    with open(path, "w") as f:
        f.write(text)
    r = run_hub(path)
    return {"rows": r.rows, "secs": r.run_s, "rate": r.rows / r.run_s, "wall": r.wall_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--address", default=None, help="a Ray cluster (default: a throwaway "
                    "two-node one on this machine)")
    ap.add_argument("--executors", default="local,ray")
    args = ap.parse_args()
    owner = None
    address = args.address
    if address is None and "ray" in args.executors:
        from tests.servers.ray import ThrowawayRayCluster

        owner = ThrowawayRayCluster()
        address = owner.start().address
    work = tempfile.mkdtemp(prefix="ray-bench-")
    try:
        for executor in args.executors.split(","):
            rates = {}
            for p in (1, 2):
                r = run_once(executor, address if executor == "ray" else None, p, args.rows,
                             f"{work}/{executor}-{p}")
                rates[p] = r["rate"]
                print(f"{executor:5s} p={p}: {r['rows']:,} rows in {r['secs']:.1f}s "
                      f"({r['rate']:,.0f} rows/s; wall {r['wall']:.1f}s)", flush=True)
            print(f"{executor:5s} speed-up p=2 / p=1: {rates[2] / rates[1]:.2f}x", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if owner is not None:
            owner.stop()


if __name__ == "__main__":
    main()
