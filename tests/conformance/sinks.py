"""The sink cases of the conformance suite: one entry per sink connector (and format).

A case makes a sink writing under a folder and reads back what is *visible* there as a
multiset of ``(table, op, id, name)``."""
from __future__ import annotations

import glob
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from runtime.sink import Sink


@dataclass
class SinkCase:
    make: Callable[[Path], Sink]
    read: Callable[[Path], Counter]


def _files(fmt: str) -> SinkCase:
    def make(root: Path) -> Sink:
        from sinks.files.config import FilesSinkConfig
        from sinks.files.sink import FilesSink

        return FilesSink(FilesSinkConfig.model_validate({
            "path": str(root), "format": fmt, "partition-format": "dt=%Y-%m-%d"}))

    def read(root: Path) -> Counter:
        rows: Counter = Counter()
        for path in glob.glob(os.path.join(root, "**", f"*.{fmt}"), recursive=True):
            if os.path.basename(path).startswith("."):
                continue
            if fmt == "parquet":
                t = pq.read_table(path)
            elif fmt == "jsonl":
                t = pajson.read_json(path)
            else:
                t = pacsv.read_csv(path)
            table = ".".join(os.path.relpath(path, root).split(os.sep)[:2])
            for op, id_, name in zip(*(t.column(c).to_pylist() for c in ("op", "id", "name"))):
                rows[(table, op, int(id_), name)] += 1
        return rows

    return SinkCase(make, read)


SINK_CASES: dict[str, SinkCase] = {
    "files-parquet": _files("parquet"),
    "files-jsonl": _files("jsonl"),
    "files-csv": _files("csv"),
}
