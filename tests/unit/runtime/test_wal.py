from decimal import Decimal

from runtime.batch import ChangeBatch
from runtime.schema import Column, TableSchema
from runtime.types import T
from runtime.wal import WriteAheadLog

A = TableSchema("db.a", (Column("id", T("BIGINT"), False), Column("v", T("DECIMAL(10,2)"))), ("id",))
B = TableSchema("db.b", (Column("k", T("STRING"), False),), ("k",))


def test_segment_round_trip_keeps_order_ops_times_and_versions(tmp_path):
    wal = WriteAheadLog(str(tmp_path / "wal"))
    batches = [
        ChangeBatch(A, "cu", rows=[(1, Decimal("1.50")), (1, Decimal("2.00"))], ts_ms=[10, 20], versions=[5, 6]),
        ChangeBatch(B, "c", rows=[("x",)], ts_ms=30),
        ChangeBatch(A, "d", rows=[(1, None)], ts_ms=[40], versions=[7]),
    ]
    info = wal.write_segment("w0-chk1", batches)
    assert info["rows"] == 4
    back = WriteAheadLog.read_segment(info["segment"])
    a = [b for b in back if b.table == "db.a"]
    assert [op for b in a for op in b.ops] == ["c", "u", "d"]
    assert [r for b in a for r in b.rows()] == [(1, Decimal("1.50")), (1, Decimal("2.00")), (1, None)]
    assert [v for b in a for v in b.versions.tolist()] == [5, 6, 7]
    assert [t for b in a for t in b.ts_ms_list()] == [10, 20, 40]


def test_empty_segment_and_discard(tmp_path):
    wal = WriteAheadLog(str(tmp_path / "wal"))
    assert wal.write_segment("none", [])["segment"] is None
    keep = wal.write_segment("keep", [ChangeBatch(B, "c", rows=[("a",)])])["segment"]
    drop = wal.write_segment("drop", [ChangeBatch(B, "c", rows=[("b",)])])["segment"]
    assert wal.discard_except([keep]) == [drop]
    assert [r for b in WriteAheadLog.read_segment(keep) for r in b.rows()] == [("a",)]


def _on_disk(root) -> int:
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file())


def test_segment_is_written_as_batches_come_and_appears_only_when_finished(tmp_path):
    """A writer's memory must not hold a checkpoint interval of batches: every append
    reaches the file before the barrier, and the segment is visible only once finished."""
    root = tmp_path / "wal"
    wal = WriteAheadLog(str(root))
    seg = wal.open_segment()
    sizes = []
    for i in range(3):
        seg.append(ChangeBatch(A, "c" * 1000, rows=[(i * 1000 + j, Decimal("1.00")) for j in range(1000)],
                               ts_ms=i))
        sizes.append(_on_disk(root))
    assert sizes[0] > 8000 and sizes[0] < sizes[1] < sizes[2]
    assert [p.name for p in root.iterdir() if not p.name.endswith(".tmp")] == []
    info = seg.finish("w0-chk2")
    assert info["rows"] == 3000 and [p.name for p in root.iterdir()] == ["w0-chk2"]
    assert [r[0] for b in WriteAheadLog.read_segment(info["segment"]) for r in b.rows()] == list(range(3000))


def test_aborted_segment_leaves_nothing(tmp_path):
    root = tmp_path / "wal"
    seg = WriteAheadLog(str(root)).open_segment()
    seg.append(ChangeBatch(B, "c", rows=[("a",)]))
    seg.abort()
    assert list(root.iterdir()) == []


def test_columns_named_like_the_segments_own_round_trip(tmp_path):
    odd = TableSchema("db.odd", (Column("op", T("STRING"), False), Column("ts_ms", T("BIGINT")),
                                 Column("_version", T("INT"))), ("op",))
    wal = WriteAheadLog(str(tmp_path / "wal"))
    seg = wal.write_segment("s", [ChangeBatch(odd, "cd", rows=[("a", 1, 2), ("b", 3, 4)],
                                              ts_ms=[7, 8], versions=[9, 10])])["segment"]
    [back] = WriteAheadLog.read_segment(seg)
    assert back.rows() == [("a", 1, 2), ("b", 3, 4)] and back.ops == "cd"
    assert back.ts_ms_list() == [7, 8] and back.versions.tolist() == [9, 10]


def test_segments_written_with_the_old_column_names_are_read(tmp_path):
    import pyarrow as pa
    import pyarrow.ipc as ipc
    import json

    folder = tmp_path / "old"
    folder.mkdir()
    table = pa.table({"id": pa.array([1], pa.int64()), "v": pa.array([Decimal("1.00")],
                                                                     pa.decimal128(10, 2)),
                      "op": ["u"], "ts_ms": pa.array([5], pa.int64()),
                      "_version": pa.array([6], pa.int64())})
    meta = {b"hub.table_schema": json.dumps(A.to_dict()).encode()}
    with ipc.new_file(str(folder / "0000.arrow"), table.schema.with_metadata(meta)) as w:
        w.write_table(table)
    [back] = WriteAheadLog.read_segment(str(folder))
    assert back.rows() == [(1, Decimal("1.00"))] and back.ops == "u"
    assert back.ts_ms_list() == [5] and back.versions.tolist() == [6]


def test_iter_segment_streams_batch_by_batch_in_write_order(tmp_path):
    """Committers read a segment as a stream: each appended batch comes back on its own
    (memory stays one batch), per table in write order, with ops, times and versions."""
    wal = WriteAheadLog(str(tmp_path / "wal"))
    batches = [ChangeBatch(A, "c" * 100, rows=[(i * 100 + j, Decimal("1.00")) for j in range(100)],
                           ts_ms=i, versions=list(range(i * 100, i * 100 + 100))) for i in range(5)]
    batches.insert(2, ChangeBatch(B, "d", rows=[("x",)], ts_ms=7))
    info = wal.write_segment("w0-chk3", batches)
    back = list(WriteAheadLog.iter_segment(info["segment"]))
    assert [len(b) for b in back if b.table == "db.a"] == [100] * 5
    assert [r[0] for b in back if b.table == "db.a" for r in b.rows()] == list(range(500))
    assert [v for b in back if b.table == "db.a" for v in b.versions.tolist()] == list(range(500))
    [b_back] = [b for b in back if b.table == "db.b"]
    assert b_back.ops == "d" and b_back.ts_ms_list() == [7]


def test_ops_come_back_from_the_column_buffers_also_for_slices_and_chunks():
    import pyarrow as pa
    ops = "crud" * 1000
    column = ChangeBatch(B, ops, rows=[("k",)] * len(ops)).ops_array()
    assert ChangeBatch.ops_from_array(column) == ops
    assert ChangeBatch.ops_from_array(column.slice(1234, 100)) == ops[1234:1334]
    chunked = pa.chunked_array([column.slice(0, 10), column.slice(3990, 10)])
    assert ChangeBatch.ops_from_array(chunked) == ops[:10] + ops[3990:]
    assert ChangeBatch.ops_from_array(pa.array(["c", "uu", "d"])) == "cuud"  # not one each
