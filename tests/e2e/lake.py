"""Reading what a files sink made visible, for comparisons in end-to-end tests."""
from __future__ import annotations

import glob
import os
from collections import Counter

import pyarrow.parquet as pq


def visible_files(lake: str, ext: str = "parquet") -> list[str]:
    return sorted(p for p in glob.glob(os.path.join(lake, "**", f"*.{ext}"), recursive=True)
                  if not os.path.basename(p).startswith("."))


def hidden_files(lake: str) -> list[str]:
    return sorted(glob.glob(os.path.join(lake, "**", ".part-*"), recursive=True))


def lake_rows(lake: str) -> Counter:
    """Multiset of (table folder, row tuple) over all visible parquet files."""
    rows: Counter = Counter()
    for path in visible_files(lake):
        table = os.path.relpath(path, lake).split(os.sep)[:2]
        t = pq.read_table(path)
        cols = [c.to_pylist() for c in t.columns]
        rows.update((tuple(table),) + r for r in zip(*cols))
    return rows
