"""The hdfs sink writing Parquet over WebHDFS: many row groups encoded in the background and
streamed in whole chunks into one hidden part file, visible only at commit; a failed upload
is a transient error of the writer naming the file."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime.batch import ChangeBatch
from runtime.errors import TransientError
from runtime.fs import filesystem
from runtime.schema import Column, TableSchema
from runtime.sink import CommitContext, WriterContext
from runtime.types import T
from sinks.hdfs.config import HdfsSinkConfig
from sinks.hdfs.sink import HdfsSink

pytestmark = [pytest.mark.integration, pytest.mark.hdfs]

EVENTS = TableSchema("shop.events", (Column("id", T("BIGINT"), False), Column("note", T("STRING"))),
                     ("id",))


def _batch(start: int, n: int) -> ChangeBatch:
    ids = np.arange(start, start + n, dtype=np.int64)
    # random text: compresses badly, so a few hundred thousand rows make several MB
    notes = pa.array(np.random.default_rng(start).integers(0, 1 << 62, n).astype(str))
    rb = pa.RecordBatch.from_arrays([pa.array(ids), notes], schema=EVENTS.arrow_schema)
    return ChangeBatch(EVENTS, "c" * n, arrow=rb, ts_ms=ids)


def _sink(root: str) -> HdfsSink:
    return HdfsSink(HdfsSinkConfig.model_validate(
        {"path": root, "format": "parquet", "format-options": {"row-group-size": 20_000}}))


def _context() -> WriterContext:
    return WriterContext(pipeline="p1", subtask=0, parallelism=1, attempt="a1", state_dir="")


def test_row_groups_stream_into_one_part_file_visible_at_commit(hdfs_dir):
    fs = filesystem(hdfs_dir)
    sink = _sink(hdfs_dir)
    writer = sink.create_writer(_context(), None)
    for start in range(0, 300_000, 8_192):
        writer.write(_batch(start, min(8_192, 300_000 - start)))
    (committable,) = writer.prepare_commit(1)
    pending, final = committable["pending"], committable["final"]
    assert committable["rows"] == 300_000
    assert fs.status(pending).size > 3 << 20 and fs.status(final) is None  # pending, hidden
    sink.create_committer().commit([committable], CommitContext("p1", 1, None))
    assert fs.status(pending) is None
    pf = pq.ParquetFile(pa.BufferReader(fs.read_bytes(final)))
    assert pf.metadata.num_row_groups == 15
    assert pf.read().column("id").to_pylist() == list(range(300_000))
    writer.close()


def test_a_failed_upload_is_a_transient_error_naming_the_file(hdfs_dir):
    fs = filesystem(hdfs_dir)
    # the name the writer's first part file will get, taken already: CREATE fails
    taken = f"{hdfs_dir}/shop/events/.part-p1-a1-0-0.parquet.inprogress"
    fs.write_bytes(taken, b"someone else's")
    writer = _sink(hdfs_dir).create_writer(_context(), None)
    with pytest.raises(TransientError, match=r"\.part-p1-a1-0-0\.parquet\.inprogress"):
        for start in range(0, 300_000, 8_192):
            writer.write(_batch(start, 8_192))
        writer.prepare_commit(1)
    writer.close()
    assert fs.read_bytes(taken) == b"someone else's"
