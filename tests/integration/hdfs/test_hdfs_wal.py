"""Write-ahead-log segments in checkpoint storage on HDFS (Elasticsearch/HBase/Kafka sinks
keep them there when the checkpoint dir is an hdfs:// URL)."""
import pytest

from runtime.batch import ChangeBatch
from runtime.schema import Column, TableSchema
from runtime.types import T
from runtime.wal import WriteAheadLog

pytestmark = pytest.mark.hdfs

S = TableSchema("db.t", (Column("id", T("BIGINT"), False), Column("v", T("STRING"))), ("id",))


def test_segments_round_trip_and_discard_on_hdfs(hdfs_dir):
    wal = WriteAheadLog(f"{hdfs_dir}/wal")
    keep = wal.write_segment("w0-1", [ChangeBatch(S, "cu", rows=[(1, "a"), (1, "b")],
                                                  ts_ms=[1, 2], versions=[1, 2])])
    drop = wal.write_segment("w0-2", [ChangeBatch(S, "d", rows=[(1, None)], ts_ms=3)])
    assert keep["rows"] == 2
    back = WriteAheadLog.read_segment(keep["segment"])
    assert [r for b in back for r in b.rows()] == [(1, "a"), (1, "b")]
    assert back[0].versions.tolist() == [1, 2]
    assert wal.discard_except([keep["segment"]]) == [drop["segment"]]
    WriteAheadLog.delete_segment(keep["segment"])
    assert wal.discard_except([]) == []
