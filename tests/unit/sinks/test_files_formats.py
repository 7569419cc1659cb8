"""Files sink: what the part files hold, in Parquet and in a text format."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sink_helpers import commit_context, files_sink, orders, writer_context


def _write_and_commit(root: Path, **options: object) -> list[str]:
    sink = files_sink(root, **options)
    writer = sink.create_writer(writer_context(), None)
    writer.write(orders([1, 2], ts_ms=[1000, 2000]))
    writer.write(orders([2], ts_ms=3000, op="d"))
    committables = writer.prepare_commit(1)
    sink.create_committer().commit(committables, commit_context())
    return [c["final"] for c in committables]


def test_parquet_has_the_columns_op_and_ts_ms_and_logical_types(root: Path) -> None:
    (path,) = _write_and_commit(root)
    table = pq.read_table(path)
    assert table.schema.field("op").type == pa.string()
    assert table.schema.field("ts_ms").type == pa.int64()
    assert table.schema.field("amount").type == pa.decimal128(10, 2)
    assert table.schema.field("amount").metadata == {b"logical_type": b"DECIMAL(10,2)"}
    assert table.select(["id", "op", "ts_ms"]).to_pylist() == [
        {"id": 1, "op": "c", "ts_ms": 1000}, {"id": 2, "op": "c", "ts_ms": 2000},
        {"id": 2, "op": "d", "ts_ms": 3000}]


def test_jsonl_part_files(root: Path) -> None:
    (path,) = _write_and_commit(root, format="jsonl")
    assert path.endswith(".jsonl")
    lines = [json.loads(line) for line in Path(path).read_text().splitlines()]
    assert [(r["id"], r["op"], r["ts_ms"]) for r in lines] == [(1, "c", 1000), (2, "c", 2000),
                                                              (2, "d", 3000)]
