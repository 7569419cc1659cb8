"""Reading what a files sink made visible (a local folder or an hdfs:// URL), for
comparisons in exactly-once tests."""
from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq

from runtime.fs import filesystem, normpath


def _files(lake: str):
    lake = normpath(lake)
    fs = filesystem(lake)
    for _d, _dirs, files in fs.walk(lake):
        for f in files:
            yield fs, lake, f


def hidden_files(lake: str) -> list[str]:
    return sorted(f.path for _fs, _l, f in _files(lake) if f.name.startswith(".part-"))


def lake_rows(lake: str, drop: tuple[str, ...] = ()) -> Counter:
    """Multiset of (db, table, *row) over all visible parquet files; ``drop`` leaves columns
    out (e.g. ``ts_ms`` of snapshot reads, which carry the time they were read).  The
    source-order column ``seq`` is always left out: where the source gives no order it is
    stamped at the writer, so a replayed change may carry another one, and a duplicate must
    still count twice here."""
    drop = (*drop, "seq")
    rows: Counter = Counter()
    for fs, root, f in _files(lake):
        if f.name.startswith(".") or not f.name.endswith(".parquet"):
            continue
        table = tuple(f.path[len(root):].strip("/").split("/")[:2])
        t = pq.read_table(pa.BufferReader(fs.read_bytes(f.path)))
        if drop:
            t = t.drop_columns([c for c in drop if c in t.column_names])
        rows.update(table + r for r in zip(*(c.to_pylist() for c in t.columns)))
    return rows
