"""Reading speed of CSV and JSON lines files with DECIMAL columns through the format readers
(formats.file: exact decimal decoding, block by block, resumable), side by side with the bare
``pyarrow.csv`` / ``pyarrow.json`` read of the same file with decimal128 column types (which is
not exact: no precision check after scaling, a wrap round at 128 bits).

    python bench/csv_decimal_bench.py [--rows 1000000] [--repeat 3] [--formats csv,jsonl]

The file (id BIGINT, amount DECIMAL(12,2), big DECIMAL(38,10), note VARCHAR) is written to a
temporary directory and removed afterwards.  Alternating, best of ``--repeat``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pj

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from formats.file.base import annotated_arrow_schema  # noqa: E402
from formats.registry import resolve_format  # noqa: E402
from runtime.schema import Column, TableSchema  # noqa: E402
from runtime.types import T  # noqa: E402

SCHEMA = annotated_arrow_schema(TableSchema("bench.t", (
    Column("id", T("BIGINT")), Column("amount", T("DECIMAL(12,2)")),
    Column("big", T("DECIMAL(38,10)")), Column("note", T("VARCHAR(32)")))))


def _table(rows: int) -> pa.Table:
    rng = np.random.default_rng(7)
    cents = rng.integers(-10**11, 10**11, rows)
    big = rng.integers(-10**18, 10**18, rows).astype(object)  # beyond int64 once scaled
    return pa.table({
        "id": pa.array(np.arange(rows), pa.int64()),
        "amount": _decimals(cents, 2), "big": _decimals(big * 10**10 + big % 10**10, 10),
        "note": pa.array([f"order {i % 1000}" for i in range(rows)], pa.string()),
    }).cast(SCHEMA)


def _decimals(units: np.ndarray, scale: int) -> pa.Array:
    """Integers of ``10**-scale`` as decimal texts (cast to the columns' types by the caller)."""
    return pa.array([f"{'-' if u < 0 else ''}{abs(u) // 10**scale}.{abs(u) % 10**scale:0{scale}d}"
                     for u in units.tolist()], pa.string())


def _hub_read(name: str, path: str) -> int:
    n = 0
    with resolve_format(name, {}).open_reader(path, SCHEMA) as r:
        while (chunk := r.read()) is not None:
            n += chunk.batch.num_rows
    return n


def _bare_csv(path: str) -> int:
    return pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(
        column_types={f.name: f.type for f in SCHEMA}, null_values=[""],
        strings_can_be_null=True, quoted_strings_can_be_null=False),
        read_options=pcsv.ReadOptions(use_threads=False)).num_rows


def _bare_jsonl(path: str) -> int:
    return pj.read_json(path, read_options=pj.ReadOptions(use_threads=False),
                        parse_options=pj.ParseOptions(explicit_schema=SCHEMA.remove_metadata())
                        ).num_rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--formats", default="csv,jsonl")
    args = ap.parse_args()
    table = _table(args.rows)
    bare: dict[str, Callable[[str], int]] = {"csv": _bare_csv, "jsonl": _bare_jsonl}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.formats.split(","):
            path = os.path.join(tmp, f"t.{name}")
            with open(path, "wb") as f:
                w = resolve_format(name, {}).open_writer(f, SCHEMA)
                w.write(table)
                w.close()
            mb = os.path.getsize(path) / 1e6
            best = {"hub": [float("inf")] * 2, "bare": [float("inf")] * 2}
            for _ in range(args.repeat):
                for kind, fn in (("hub", lambda p: _hub_read(name, p)), ("bare", bare[name])):
                    t0, c0 = time.perf_counter(), time.process_time()
                    assert fn(path) == args.rows
                    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                    best[kind] = [min(best[kind][0], wall), min(best[kind][1], cpu)]
            # CPU time too: both reads run on one thread, and it is steadier on a busy machine
            for kind, (wall, cpu) in best.items():
                print(f"{name:5} {kind:4}: {args.rows / wall:>12,.0f} rows/s  "
                      f"{mb / wall:7.1f} MB/s  ({wall:.2f} s, {cpu:.2f} s CPU, {mb:.0f} MB)")


if __name__ == "__main__":
    main()
