"""Driving the delta sink checkpoint by checkpoint (its real writer and committer, real
Delta tables on local folders) and reading tables back with readers that are not ours:
deltalake and Polars."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa

from runtime.batch import ChangeBatch
from runtime.schema import Column, TableSchema
from runtime.types import T
from sinks.delta.config import DeltaSinkConfig
from sinks.delta.sink import DeltaSink
from tests.integration.sinkdriver import SinkDriver

PIPELINE = "it"


def schema(table: str, columns: dict[str, str], key: tuple[str, ...] = ("id",)) -> TableSchema:
    return TableSchema(table, tuple(Column(n, T(t)) for n, t in columns.items()), key)


class Driver(SinkDriver):
    """The delta sink's writer and committer, one checkpoint per :meth:`checkpoint` call."""

    def __init__(self, root: Path, job: str = "job-1", **options: Any):
        self.root = root
        self.config = DeltaSinkConfig.model_validate({"path": str(root / "lake"), **options})
        super().__init__(DeltaSink(self.config), str(root / "state"), PIPELINE, job)

    def uri(self, table: str) -> str:
        return self.config.table_uri(table)


def read(uri: str, key: str | tuple[str, ...] = "id") -> dict:
    """The table as ``{key: row}`` read by deltalake, checked equal to what Polars reads."""
    from deltalake import DeltaTable
    import polars as pl

    rows = DeltaTable(uri).to_pyarrow_table().to_pylist()
    keys = (key,) if isinstance(key, str) else key
    by_key = {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in rows}
    assert len(by_key) == len(rows), "a key is in the table twice"
    polars_rows = pl.scan_delta(uri).collect().to_dicts()
    assert sorted(polars_rows, key=repr) == sorted(rows, key=repr), "Polars reads otherwise"
    return by_key


def rows_of(uri: str) -> list[dict]:
    from deltalake import DeltaTable

    return DeltaTable(uri).to_pyarrow_table().to_pylist()


def commits(uri: str) -> list[dict]:
    """The table's commits, oldest first."""
    from deltalake import DeltaTable

    return list(reversed(DeltaTable(uri).history()))


def checkpoint_commits(uri: str) -> list[int]:
    """The checkpoint ids the table's commits carry, oldest first (one per data commit)."""
    return [int(c["hub.checkpoint"]) for c in commits(uri) if "hub.checkpoint" in c]


def data_files(uri: str) -> list[str]:
    return [f for f in os.listdir(uri) if f.endswith(".parquet")] if os.path.isdir(uri) else []


def arrow_rows(s: TableSchema, ops: str, rows: list[tuple]) -> ChangeBatch:
    """A batch given as Arrow (what columnar sources produce)."""
    arrow = pa.RecordBatch.from_arrays(
        [pa.array(col, f.type) for col, f in zip(zip(*rows), s.arrow_schema)],
        schema=s.arrow_schema)
    return ChangeBatch(s, ops, arrow=arrow, ts_ms=1_700_000_000_000)
