"""The source-order column: changelog rows of the files sink carry ``seq`` (the events'
versions, or stamped where the source gives none), and the files source reads the sink's
output back with ``seq`` as change metadata, not as a column of the table."""
from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sink_helpers import commit_context, files_sink, orders, writer_context

from runtime.batch import ChangeBatch
from runtime.errors import TerminalError
from runtime.schema import Column, TableSchema
from runtime.types import T
from sources.files.config import FilesSourceConfig
from sources.files.source import FilesSource
from tests.unit.sources.test_files_source import Harness


def _write(root: Path, batches: list[ChangeBatch], **options) -> None:
    sink = files_sink(root, **options)
    writer = sink.create_writer(writer_context(), None)
    for b in batches:
        writer.write(b)
    sink.create_committer().commit(writer.prepare_commit(1), commit_context())


def test_seq_is_the_sources_order_or_stamped(root: Path) -> None:
    given = orders([1, 2, 1])
    given.versions = np.array([7, 9, 11], dtype=np.int64)
    _write(root, [given, orders([2, 3])])
    (path,) = glob.glob(f"{root}/shop/orders/part-*.parquet")
    seq = pq.read_table(path).column("seq").to_pylist()
    assert seq[:3] == [7, 9, 11]                     # the source's versions, as they were
    assert seq[3] < seq[4] and seq[3] > 10**18       # none given: stamped, increasing


def test_seq_column_can_be_renamed_or_left_out_and_never_clashes(root: Path) -> None:
    _write(root / "a", [orders([1])], seq_column="_seq")
    (path,) = glob.glob(f"{root}/a/shop/orders/part-*.parquet")
    assert pq.read_table(path).column_names[-3:] == ["op", "ts_ms", "_seq"]
    _write(root / "b", [orders([1])], seq_column="")
    (path,) = glob.glob(f"{root}/b/shop/orders/part-*.parquet")
    assert pq.read_table(path).column_names[-2:] == ["op", "ts_ms"]
    schema = TableSchema("shop.steps", (Column("id", T("BIGINT"), False),
                                        Column("seq", T("INT"))), ("id",))
    with pytest.raises(TerminalError, match="column named 'seq'.*set seq-column"):
        _write(root / "c", [ChangeBatch.of_rows(schema, [(1, 1)], op="c", ts_ms=0)])


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv"])
def test_the_files_source_reads_the_sinks_changelog_back(root: Path, fmt: str) -> None:
    _write(root, [orders([1, 2], ts_ms=10), orders([1], ts_ms=20, op="u"),
                  orders([2], ts_ms=30, op="d")], format=fmt)
    source = FilesSource(FilesSourceConfig.model_validate({
        "path": f"{root}/**/part-*", "format": fmt, "table": "shop.orders",
        "primary-key": ["id"]}))
    h = Harness(source)
    h.poll()
    (batch,) = h.batches()
    assert batch.schema.names == ("id", "customer", "amount", "qty")  # no seq column
    assert batch.ops == "ccud" and batch.ts_ms_list() == [10, 10, 20, 30]
