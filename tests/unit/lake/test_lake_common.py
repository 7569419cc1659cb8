"""The lake sinks' shared pieces: partition-by parsing, collecting a checkpoint's changes per
table, and the committer's per-checkpoint, per-table flow (with an in-memory table format)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from runtime.batch import ChangeBatch
from runtime.errors import TerminalError
from runtime.schema import Column, TableSchema
from runtime.sink import CommitContext, WriterContext
from runtime.types import parse_type
from sinks.lake.changes import collect
from sinks.lake.committer import LakeCommitter
from sinks.lake.config import LakeSinkConfig
from sinks.lake.partition import PartitionField, parse_partition_by
from sinks.lake.writer import LakeSinkWriter


def schema(*cols: tuple[str, str], key: tuple[str, ...] = ("id",), table: str = "db.t"):
    return TableSchema(table, tuple(Column(n, parse_type(t), n not in key) for n, t in cols), key)


S1 = schema(("id", "INT"), ("v", "STRING"))
S2 = schema(("id", "INT"), ("w", "BIGINT"))


def batch(s: TableSchema, ops: str, rows: list[tuple], versions: list[int], ts: int = 0):
    return ChangeBatch(s, ops, rows=rows, ts_ms=ts, versions=np.array(versions))


# -- partition-by ---------------------------------------------------------------------------------
def test_partition_by_parses_columns_and_transforms():
    assert parse_partition_by(["region", "day(created)", "bucket(16, id)", "TRUNCATE(4,sku)"]) == [
        PartitionField("identity", "region"), PartitionField("day", "created"),
        PartitionField("bucket", "id", 16), PartitionField("truncate", "sku", 4)]
    assert str(PartitionField("bucket", "id", 16)) == "bucket(16, id)"


@pytest.mark.parametrize("item, says", [
    ("weekly(x)", "unknown transform 'weekly'"), ("bucket(x)", "bucket(N, column)"),
    ("bucket(a, x)", "not a whole number"), ("truncate(0, x)", "width must be positive"),
    ("", "empty item"), ("day(a, b)", "day(column)")])
def test_partition_by_rejects_with_the_item(item, says):
    with pytest.raises(ValueError, match=says.replace("(", r"\(").replace(")", r"\)")):
        parse_partition_by([item])


def test_config_reports_bad_partition_by_and_defaults():
    with pytest.raises(ValueError, match="given twice"):
        LakeSinkConfig.model_validate({"partition-by": ["a", "a"]})
    c = LakeSinkConfig.model_validate({"partition-by": ["hour(ts)"], "maintenance-interval": "0"})
    assert c.partition_fields == [PartitionField("hour", "ts")]
    assert c.write_mode == "upsert" and c.maintenance_interval == 0
    assert c.target_file_size == 128 << 20 and c.retention == 7 * 86400


# -- collect ---------------------------------------------------------------------------------------
def test_upsert_keeps_the_last_change_per_key_in_source_order_across_writers():
    # writer 1 read key 3 in the snapshot (version 0); writer 0 saw its later insert (5)
    w0 = [batch(S1, "rcu", [(1, "a"), (2, "b"), (1, "c")], [1, 2, 3]),
          batch(S1, "dc", [(2, "b"), (3, "new")], [4, 5])]
    w1 = [batch(S1, "r", [(3, "old")], [0])]
    [c] = collect(w0 + w1, 7, upsert=True, sink="x")
    assert c.collapsed and c.checkpoint_id == 7 and c.table == "db.t"
    got = sorted(zip(c.rows.column("id").to_pylist(), c.rows.column("v").to_pylist(),
                     c.ops.to_pylist(), c.seq.to_pylist()))
    assert got == [(1, "c", "u", 3), (2, "b", "d", 4), (3, "new", "c", 5)]
    assert sorted(c.upserts().column("id").to_pylist()) == [1, 3]
    assert c.deleted_keys().to_pylist() == [{"id": 2}]
    assert not c.only_inserts()


def test_composite_keys_collapse_on_all_key_columns():
    s = schema(("a", "INT"), ("b", "STRING"), ("v", "INT"), key=("a", "b"))
    [c] = collect([batch(s, "ccu", [(1, "x", 1), (1, "y", 2), (1, "x", 3)], [1, 2, 3])], 1,
                  True, "x")
    assert sorted(c.rows.to_pylist(), key=lambda r: r["b"]) == [
        {"a": 1, "b": "x", "v": 3}, {"a": 1, "b": "y", "v": 2}]


def test_append_mode_and_keyless_tables_keep_every_change_with_op_ts_and_seq():
    b = batch(S1, "cu", [(1, "a"), (1, "b")], [10, 11], ts=99)
    [c] = collect([b], 1, upsert=False, sink="x")
    assert not c.collapsed and c.only_inserts() is False
    assert c.changelog().to_pylist() == [
        {"id": 1, "v": "a", "op": "c", "ts_ms": 99, "seq": 10},
        {"id": 1, "v": "b", "op": "u", "ts_ms": 99, "seq": 11}]
    keyless = schema(("x", "INT"), key=())
    [k] = collect([batch(keyless, "cc", [(1,), (1,)], [1, 2])], 1, upsert=True, sink="x")
    assert not k.collapsed and len(k) == 2


def test_changelog_refuses_a_column_named_like_a_change_column():
    s = schema(("id", "INT"), ("op", "STRING"))
    [c] = collect([batch(s, "c", [(1, "x")], [1])], 1, upsert=False, sink="x")
    with pytest.raises(TerminalError, match="table db.t: column 'op'"):
        c.changelog()


def test_schema_changes_within_a_checkpoint_keep_dropped_columns_and_widen_types():
    narrow = schema(("id", "INT"), ("n", "INT"), ("gone", "STRING"))
    wide = schema(("id", "INT"), ("n", "BIGINT"), ("added", "STRING"))
    [c] = collect([batch(narrow, "c", [(1, 5, "g")], [1]),
                   batch(wide, "c", [(2, 1 << 40, "a")], [2])], 1, True, "x")
    assert c.schema.names == ("id", "n", "added", "gone")
    assert c.rows.schema.field("n").type == pa.int64()
    assert sorted(c.rows.to_pylist(), key=lambda r: r["id"]) == [
        {"id": 1, "n": 5, "added": None, "gone": "g"},
        {"id": 2, "n": 1 << 40, "added": "a", "gone": None}]


def test_a_type_change_that_cant_be_widened_names_table_and_column():
    a = schema(("id", "INT"), ("n", "INT"))
    b = schema(("id", "INT"), ("n", "DATE"))
    import datetime
    with pytest.raises(TerminalError, match="x: table db.t: column 'n' changed type"):
        list(collect([batch(a, "c", [(1, 5)], [1]),
                      batch(b, "c", [(2, datetime.date.today())], [2])], 1, True, "x"))


def test_batches_without_versions_get_increasing_ones():
    b1 = ChangeBatch(S1, "c", rows=[(1, "a")])
    b2 = ChangeBatch(S1, "u", rows=[(1, "b")])
    [c] = collect([b1, b2], 1, True, "x")
    assert c.rows.to_pylist() == [{"id": 1, "v": "b"}]


# -- committer -------------------------------------------------------------------------------------
class MemoryCommitter(LakeCommitter):
    """A table format kept in a dict: table -> {key: row}, plus the checkpoints each table
    holds per app id (the idempotence a real format gets from its own log)."""

    sink_name = "memlake"

    def __init__(self, config, tables, **kw):
        super().__init__(config, **kw)
        self.tables = tables
        self.maintained: list[list[str]] = []

    def commit_table(self, changes, context):
        t = self.tables.setdefault(changes.table, {"rows": {}, "commits": []})
        app = self.app_id(context)
        if any(a == app and v >= changes.checkpoint_id for a, v in t["commits"]):
            return
        for row, deleted in zip(changes.rows.to_pylist(), changes.is_delete().to_pylist()):
            if deleted:
                t["rows"].pop(row["id"], None)
            else:
                t["rows"][row["id"]] = row
        t["commits"].append((app, changes.checkpoint_id))

    def maintain(self, tables, context):
        self.maintained.append(tables)


def writer(tmp_path, subtask=0):
    ctx = WriterContext("p", subtask, 2, "att", str(tmp_path))
    return LakeSinkWriter(ctx, "memlake")


def test_committer_commits_each_checkpoint_once_per_table_and_replays_harmlessly(tmp_path):
    tables: dict = {}
    other = schema(("id", "INT"), key=("id",), table="db.u")
    w0, w1 = writer(tmp_path, 0), writer(tmp_path, 1)
    w0.write(batch(S1, "cc", [(1, "a"), (2, "b")], [1, 2]))
    w1.write(batch(other, "c", [(9,)], [3]))
    c1 = w0.prepare_commit(1) + w1.prepare_commit(1)
    assert {c["checkpoint"] for c in c1} == {1}
    w0.write(batch(S1, "ud", [(1, "z"), (2, "b")], [4, 5]))
    c2 = w0.prepare_commit(2)
    ctx = CommitContext("p", 2, None, str(tmp_path), job_id="j1")
    config = LakeSinkConfig.model_validate({"maintenance-interval": "0"})
    committer = MemoryCommitter(config, tables)
    # checkpoint 1's store failed: its committables come with checkpoint 2's, committed first
    assert committer.commit(c1 + c2, ctx) == []
    assert tables["db.t"]["rows"] == {1: {"id": 1, "v": "z"}}
    assert tables["db.t"]["commits"] == [("hub:p:memlake:j1", 1), ("hub:p:memlake:j1", 2)]
    assert tables["db.u"]["commits"] == [("hub:p:memlake:j1", 1)]
    # a replay finds the segments gone; a recover with a new job id would commit anew
    committer.recover(c1 + c2, ctx)
    assert len(tables["db.t"]["commits"]) == 2
    assert list((tmp_path / "wal" / "p" / "memlake").iterdir()) == []


def test_a_replay_after_a_crash_between_tables_skips_the_committed_one(tmp_path):
    tables: dict = {}
    other = schema(("id", "INT"), key=("id",), table="db.u")
    w = writer(tmp_path)
    w.write(batch(S1, "c", [(1, "a")], [1]))
    w.write(batch(other, "c", [(9,)], [2]))
    committables = w.prepare_commit(1)
    ctx = CommitContext("p", 1, None, str(tmp_path), job_id="j")
    config = LakeSinkConfig.model_validate({"maintenance-interval": "0"})
    crashing = MemoryCommitter(config, tables)

    def only_first(changes, context, real=crashing.commit_table):
        if changes.table == "db.u":
            raise RuntimeError("killed")
        real(changes, context)

    crashing.commit_table = only_first
    with pytest.raises(RuntimeError):
        crashing.commit(committables, ctx)
    assert "db.u" not in tables and len(tables["db.t"]["commits"]) == 1
    MemoryCommitter(config, tables).recover(committables, ctx)
    assert tables["db.t"]["commits"] == [("hub:p:memlake:j", 1)]
    assert tables["db.u"]["rows"] == {9: {"id": 9}}


def test_maintenance_runs_every_interval_for_the_tables_committed_since(tmp_path):
    now = [0.0]
    config = LakeSinkConfig.model_validate({"maintenance-interval": "60s"})
    committer = MemoryCommitter(config, {}, clock=lambda: now[0])
    w = writer(tmp_path)
    for checkpoint, t in ((1, 10.0), (2, 61.0), (3, 70.0)):
        now[0] = t
        w.write(batch(S1, "c", [(checkpoint, "x")], [checkpoint]))
        committer.commit(w.prepare_commit(checkpoint),
                         CommitContext("p", checkpoint, None, str(tmp_path), job_id="j"))
    assert committer.maintained == [["db.t"]]


@pytest.mark.parametrize("seed", range(5))
def test_collapse_of_integer_keys_matches_the_general_one(seed):
    # the numpy path for one integer key column against runtime.versioned.last_per_key
    from runtime.versioned import last_per_key
    from sinks.lake.changes import _last_per_key

    rng = np.random.default_rng(seed)
    keys = pa.table({"id": pa.array(rng.integers(0, 50, 400), pa.int64())})
    seq = rng.integers(0, 30, 400)  # ties and versions going down across writers
    assert _last_per_key(keys, seq).tolist() == last_per_key(keys, seq).tolist()
    unique = pa.table({"id": pa.array(rng.permutation(400), pa.int32())})
    assert _last_per_key(unique, seq) is None and last_per_key(unique, seq) is None
    assert _last_per_key(pa.table({"id": pa.array(np.arange(9))}), np.arange(9)) is None


def test_a_checkpoint_is_committed_from_a_stream_holding_about_one_batch(tmp_path, monkeypatch):
    """The committer scans the segments for ops, versions and keys, and the format reads the
    rows piece by piece: Arrow memory stays about a batch (plus the keys), never the
    checkpoint's ~30 MB of rows -- neither while scanning (a key column read from a segment
    is a slice of its batch's body, and keeping it would keep the body) nor while the format
    takes the rows."""
    import sinks.lake.changes as lake_changes
    import sinks.lake.committer as lake_committer

    monkeypatch.setattr(lake_changes, "KEEP_BYTES", 1 << 20)  # what a small checkpoint keeps
    wide = schema(("id", "BIGINT"), ("v", "STRING"))
    peak = [0]

    original = lake_committer.segments_source

    def measured(segments, columns=None):  # the committer's sources, watched per batch
        source = original(segments, columns)

        def batches():
            for b in source():
                yield b
                peak[0] = max(peak[0], pa.total_allocated_bytes())
        return batches

    monkeypatch.setattr(lake_committer, "segments_source", measured)

    class Streaming(MemoryCommitter):
        def commit_table(self, changes, context):
            rows = 0
            for piece in changes.pieces("upserts"):
                peak[0] = max(peak[0], pa.total_allocated_bytes())
                rows += piece.num_rows
            assert rows == 60_000 and len(changes) == 60_000

    w = writer(tmp_path)
    text = "x" * 500
    for i in range(60):
        ids = np.arange(i * 1000, (i + 1) * 1000)
        w.write(ChangeBatch(wide, "r" * 1000, versions=ids,
                            arrow=pa.RecordBatch.from_arrays(
                                [pa.array(ids), pa.array([text] * 1000)],
                                schema=wide.arrow_schema)))
    committables = w.prepare_commit(1)
    base = pa.total_allocated_bytes()
    config = LakeSinkConfig.model_validate({"maintenance-interval": "0"})
    Streaming(config, {}).commit(committables, CommitContext("p", 1, None, str(tmp_path),
                                                             job_id="j"))
    # a batch is 0.5 MB; the keys and versions 0.5 MB each
    assert 0 < peak[0] - base < 5 << 20


@pytest.mark.parametrize("ops", ["r", "u"])
@pytest.mark.parametrize("upsert", [True, False])
def test_the_scan_reads_only_keys_and_ops_then_the_format_reads_the_rows_once(tmp_path,
                                                                           monkeypatch, ops,
                                                                           upsert):
    """The committer's first pass reads from the segments only what collapsing needs (the
    key columns in upsert mode, no row column in append mode, besides ops and versions):
    the row images are read once, when the format takes them."""
    import sinks.lake.committer as lake_committer

    original, calls = lake_committer.segments_source, []

    def counted(segments, columns=None):
        source = original(segments, columns)

        def batches():
            for b in source():
                calls.append((columns is not None, b.arrow().schema.names))
                yield b
        return batches

    monkeypatch.setattr(lake_committer, "segments_source", counted)
    tables: dict = {}
    w = writer(tmp_path)
    for i in range(5):
        w.write(batch(S1, ops * 100, [(i * 100 + j, "x" * 50) for j in range(100)],
                      list(range(i * 100, i * 100 + 100))))
    config = LakeSinkConfig.model_validate({"maintenance-interval": "0",
                                            "write-mode": "upsert" if upsert else "append"})
    MemoryCommitter(config, tables).commit(w.prepare_commit(1), CommitContext(
        "p", 1, None, str(tmp_path), job_id="j"))
    light = [names for partial, names in calls if partial]
    full = [names for partial, names in calls if not partial]
    assert light == [["id"] if upsert else []] * len(light) and len(light) >= 1
    assert full == [list(S1.names)] * len(full) and len(full) == len(light)
    assert len(tables["db.t"]["rows"]) == 500


def test_the_scan_of_a_table_with_columns_named_like_the_segments_own(tmp_path):
    """The first pass reads the key and the segment's own op/version columns by name: a
    table whose row columns are called op, ts_ms and _version (the old own names) keeps
    them as row columns, and its changes collapse as any other table's."""
    s = schema(("id", "INT"), ("op", "STRING"), ("ts_ms", "BIGINT"), ("_version", "INT"))
    tables: dict = {}
    w = writer(tmp_path)
    w.write(batch(s, "ccu", [(1, "x", 5, 7), (2, "y", 6, 8), (1, "z", 9, 9)], [1, 2, 3]))
    config = LakeSinkConfig.model_validate({"maintenance-interval": "0"})
    MemoryCommitter(config, tables).commit(w.prepare_commit(1), CommitContext(
        "p", 1, None, str(tmp_path), job_id="j"))
    assert tables["db.t"]["rows"] == {1: {"id": 1, "op": "z", "ts_ms": 9, "_version": 9},
                                      2: {"id": 2, "op": "y", "ts_ms": 6, "_version": 8}}
