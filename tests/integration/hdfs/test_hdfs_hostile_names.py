"""The hdfs sink with hostile table names: every file lands below the sink's path on the
namenode, one folder per table whose name decodes back to the table's name (WebHDFS clients
normalise ``..`` and expand ``#LATEST``: neither may come from a table name)."""
from __future__ import annotations

import pytest

from runtime.batch import ChangeBatch
from runtime.fs import decode_segment, filesystem, is_below
from runtime.schema import Column, TableSchema, table_id
from runtime.sink import CommitContext, WriterContext
from runtime.types import T
from sinks.hdfs.config import HdfsSinkConfig
from sinks.hdfs.sink import HdfsSink

pytestmark = [pytest.mark.integration, pytest.mark.hdfs]

NAMES = ["../x", "../../../escape", "..", ".hidden", "a.b", "x/y", "it's", "drop; table",
         "with space", "ünï", "100%", "q?x", "#LATEST", "c:d", "orders"]


def test_hostile_table_names_stay_below_the_path(hdfs_dir):
    ids = {table_id("shop", name): ("shop", name) for name in NAMES}
    root = f"{hdfs_dir}/a/b/lake"
    sink = HdfsSink(HdfsSinkConfig.model_validate({"path": root, "format": "jsonl"}))
    writer = sink.create_writer(WriterContext(pipeline="p1", subtask=0, parallelism=1,
                                              attempt="a1", state_dir=""), None)
    for table in ids:
        schema = TableSchema(table, (Column("id", T("BIGINT"), False),), ("id",))
        writer.write(ChangeBatch.of_rows(schema, [(1,)]))
    committables = writer.prepare_commit(1)
    sink.create_committer().commit(committables, CommitContext("p1", 1, None))

    fs = filesystem(hdfs_dir)
    files = [f.path for _d, _dirs, fl in fs.walk(hdfs_dir) for f in fl]
    assert len(files) == len(NAMES)
    assert all(is_below(f, root) for f in files), files
    folders = {tuple(decode_segment(p) for p in f[len(root) + 1:].split("/")[:-1])
               for f in files}
    assert folders == set(ids.values())
