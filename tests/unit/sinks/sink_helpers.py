"""Helpers of the sink unit tests: an orders table, batches, contexts, file listings."""
from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from runtime.batch import ChangeBatch
from runtime.schema import Column, TableSchema
from runtime.sink import CommitContext, WriterContext
from runtime.types import T
from sinks.files.config import FilesSinkConfig
from sinks.files.sink import FilesSink

ORDERS = TableSchema("shop.orders", (
    Column("id", T("BIGINT"), False), Column("customer", T("STRING")),
    Column("amount", T("DECIMAL(10,2)")), Column("qty", T("INT")),
), ("id",))

HOUR = 3_600_000
#: The format the files sink tests write (a real one once the format plugins are installed).
FORMAT = EXT = "parquet"


def orders(ids: range | list[int], ts_ms: int | list[int] = 0, op: str = "c") -> ChangeBatch:
    rows = [(i, f"c{i % 7}", Decimal(i) / 4, i % 5) for i in ids]
    return ChangeBatch.of_rows(ORDERS, rows, op=op, ts_ms=ts_ms)


def writer_context(pipeline: str = "p1", attempt: str = "a1", subtask: int = 0,
                   parallelism: int = 1) -> WriterContext:
    return WriterContext(pipeline=pipeline, subtask=subtask, parallelism=parallelism,
                         attempt=attempt, state_dir="")


def commit_context(watermark_ms: int | None = None, pipeline: str = "p1",
                   checkpoint_id: int = 1) -> CommitContext:
    return CommitContext(pipeline=pipeline, checkpoint_id=checkpoint_id, watermark_ms=watermark_ms)


def files_sink(root: Path, **options: Any) -> FilesSink:
    opts = {"path": str(root), "format": FORMAT,
            **{k.replace("_", "-"): v for k, v in options.items()}}
    return FilesSink(FilesSinkConfig.model_validate(opts))


def listing(root: Path) -> tuple[list[str], list[str]]:
    """(visible files, hidden files) under ``root`` as sorted relative paths."""
    visible, hidden = [], []
    for d, _dirs, files in os.walk(root):
        for name in files:
            rel = os.path.relpath(os.path.join(d, name), root)
            (hidden if name.startswith(".") else visible).append(rel)
    return sorted(visible), sorted(hidden)


def read_part(path: str | Path) -> pa.Table:
    """The rows of a part file written in :data:`FORMAT`."""
    return pq.read_table(path)
