"""HBase sink against an HBase Thrift server: the server's version semantics the sink relies
on, tables and families, encodings, deletes, replays, at-least-once delivery."""
from __future__ import annotations

import shutil
import struct
import uuid
from decimal import Decimal

import happybase
import numpy as np
import pytest

from runtime.batch import ChangeBatch
from runtime.errors import ConfigError, TerminalError
from runtime.schema import Column, TableSchema
from runtime.sink import CommitContext, WriterContext
from runtime.types import T
from runtime.wal import WriteAheadLog
from sinks.hbase.config import HBaseSinkConfig
from sinks.hbase.sink import HBaseSink
from sinks.hbase.types import decode_int_key

pytestmark = [pytest.mark.integration, pytest.mark.hbase]

ORDERS = TableSchema("shop.orders", (Column("id", T("BIGINT"), False), Column("name", T("STRING")),
                                     Column("amount", T("DECIMAL(10,2)")), Column("qty", T("INT"))),
                     ("id",))


@pytest.fixture
def conn(hbase_server):
    c = happybase.Connection(hbase_server.host, hbase_server.port)
    yield c
    c.close()


@pytest.fixture
def make(hbase_server):
    prefix = f"it-{uuid.uuid4().hex[:10]}"

    def make(**options) -> tuple[HBaseSink, str]:
        cfg = HBaseSinkConfig.model_validate({
            "host": hbase_server.host, "port": hbase_server.port, "table": prefix + "-{table}",
            **{k.replace("_", "-"): v for k, v in options.items()}})
        return HBaseSink(cfg), f"{prefix}-orders"
    return make


def commit(sink, batches, tmp, cid=1, state=None):
    writer = sink.create_writer(WriterContext("it", 0, 1, uuid.uuid4().hex[:6], str(tmp)), state)
    for b in batches:
        writer.write(b)
    committables = writer.prepare_commit(cid)
    committer = sink.create_committer()
    committer.commit(committables, CommitContext("it", cid, None))
    committer.close()
    last = writer.snapshot_state(cid)
    writer.close()
    return committables, last


def batch(ops, rows, versions):
    return ChangeBatch(ORDERS, ops, rows=rows, versions=np.array(versions, dtype=np.int64))


def test_server_versions_and_delete_markers(conn):
    name = f"sem-{uuid.uuid4().hex[:8]}"
    conn.create_table(name, {"cf": {"max_versions": 3}, "x": {}})
    t = conn.table(name)
    t.put(b"r", {b"cf:a": b"v10", b"x:b": b"b10"}, timestamp=10)
    t.put(b"r", {b"cf:a": b"v5"}, timestamp=5)  # older: the newer version stays visible
    assert t.row(b"r", include_timestamp=True) == {b"cf:a": (b"v10", 10), b"x:b": (b"b10", 10)}
    t.delete(b"r", columns=[b"cf"], timestamp=10)  # hides every cf version <= 10
    t.put(b"r", {b"cf:a": b"late"}, timestamp=9)  # written after, but older than the delete
    assert t.row(b"r") == {b"x:b": b"b10"}
    t.put(b"r", {b"cf:a": b"v11"}, timestamp=11)
    assert t.row(b"r") == {b"cf:a": b"v11", b"x:b": b"b10"}
    assert t.row(b"r", timestamp=11) == {b"x:b": b"b10"}  # only versions < 11
    assert [k for k, _ in t.scan(reverse=True)] == [b"r"]


def test_rows_cells_and_deletes(make, conn, tmp_path):
    sink, table = make(column_families={"name": "text"}, value_encoding="binary")
    rows = [(-5, "neg", Decimal("1.50"), 3), (1, "one", None, None), (2, "two", Decimal("2"), 1)]
    commit(sink, [batch("ccc", rows, [1, 2, 3]),
                  batch("ud", [(1, "uno", Decimal("-1.50"), None), (2, None, None, None)], [4, 5])],
           tmp_path)
    assert set(conn.table(table).families()) == {b"cf", b"text"}
    got = {decode_int_key(k): v for k, v in conn.table(table).scan()}
    assert list(got) == [-5, 1]  # rowkeys sort like the ids; 2 was deleted
    assert got[-5] == {b"text:name": b"neg", b"cf:amount": b"\x00\x00\x00\x02\x00\x96",
                       b"cf:qty": struct.pack(">i", 3)}
    assert got[1] == {b"text:name": b"uno", b"cf:amount": b"\x00\x00\x00\x02\xff\x6a"}


def prepare(sink, tmp, subtask, cid, *batches):
    """The committables of one writer (subtask) for checkpoint ``cid``."""
    writer = sink.create_writer(WriterContext("it", subtask, 2, "r1", str(tmp)), None)
    for b in batches:
        writer.write(b)
    committables = writer.prepare_commit(cid)
    writer.close()
    return committables


def test_null_deletes_the_cell_and_replays_change_nothing(make, conn, tmp_path):
    sink, table = make()
    ctx = CommitContext("it", 1, None, str(tmp_path))
    sink.create_committer().commit(
        prepare(sink, tmp_path, 0, 1, batch("c", [(1, "a", Decimal("9.99"), 1)], [10])), ctx)
    second = prepare(sink, tmp_path, 0, 2, batch("u", [(1, "b", None, None)], [11]))
    saved = tmp_path / "saved"
    shutil.copytree(second[0]["segment"], saved)
    sink.create_committer().commit(second, ctx)
    key = b"\x80" + b"\x00" * 6 + b"\x01"
    state = {key: {b"cf:name": b"b"}}  # the NULLs deleted their cells
    assert dict(conn.table(table).scan()) == state
    # a crash after the second commit applied its segment, before it was deleted: the
    # segment is applied again after the restart, or (as recorded) only deleted
    for committer_ctx in (ctx, CommitContext("it", 2, None)):
        shutil.copytree(saved, second[0]["segment"])
        sink.create_committer().recover(second, committer_ctx)
        assert dict(conn.table(table).scan()) == state
        assert not WriteAheadLog.exists(second[0]["segment"])


def test_the_highest_version_wins_whichever_writer_and_checkpoint(make, conn, tmp_path):
    """Versions order the changes of a key, not writers or their checkpoints' timestamps:
    key 1's older change (version 10) sits in writer 0 next to a much higher version of key 2;
    key 3's newer change comes in a later checkpoint from a writer with low versions only."""
    sink, table = make()
    ctx = CommitContext("it", 1, None, str(tmp_path))
    rows = lambda *r: [(k, name, None, None) for k, name in r]  # noqa: E731
    a = prepare(sink, tmp_path, 0, 1, batch("cc", rows((1, "old"), (2, "x")), [10, 10_000]),
                batch("c", rows((3, "a")), [500]))
    b = prepare(sink, tmp_path, 1, 1, batch("u", rows((1, "new")), [50]))
    sink.create_committer().commit(b + a, ctx)  # in either order
    c = prepare(sink, tmp_path, 1, 2, batch("u", rows((3, "b")), [600]))
    sink.create_committer().commit(c, CommitContext("it", 2, None, str(tmp_path)))
    got = {decode_int_key(k): v[b"cf:name"] for k, v in conn.table(table).scan()}
    assert got == {1: b"new", 2: b"x", 3: b"b"}


def test_a_partly_deleted_commit_is_not_applied_again(make, conn, tmp_path):
    """A crash while a commit's segments are deleted leaves some of them: applied again on
    their own, key 1's older change would win over the newer one of the deleted segment."""
    sink, table = make()
    ctx = CommitContext("it", 1, None, str(tmp_path))
    old = prepare(sink, tmp_path, 0, 1, batch("c", [(1, "old", None, None)], [10]))
    new = prepare(sink, tmp_path, 1, 1, batch("u", [(1, "new", None, None)], [50]))
    shutil.copytree(old[0]["segment"], tmp_path / "saved")
    sink.create_committer().commit(old + new, ctx)
    shutil.copytree(tmp_path / "saved", old[0]["segment"])  # deleted 'new', not yet 'old'
    sink.create_committer().recover(old + new, ctx)
    assert [v[b"cf:name"] for _, v in conn.table(table).scan()] == [b"new"]
    assert not WriteAheadLog.exists(old[0]["segment"])


def test_tables_are_created_only_when_allowed(make, conn, tmp_path):
    sink, table = make(create_table=False)
    with pytest.raises(ConfigError, match="does not exist"):
        commit(sink, [batch("c", [(1, "a", None, None)], [1])], tmp_path)
    conn.create_table(table, {"cf": {}})
    sink, _ = make(column_families={"name": "text"})
    with pytest.raises(ConfigError, match="no column family 'text'"):
        commit(sink, [batch("c", [(1, "a", None, None)], [1])], tmp_path)


def test_at_least_once_writes_without_the_log(make, conn, tmp_path):
    sink, table = make(delivery="at-least-once", batch_size=2)
    writer = sink.create_writer(WriterContext("it", 0, 1, "a", str(tmp_path)), None)
    writer.write(batch("ccc", [(i, f"n{i}", None, None) for i in range(3)], [1, 2, 3]))
    assert len(list(conn.table(table).scan())) == 3  # written before any checkpoint
    assert writer.prepare_commit(1) == []
    writer.close()
    assert not (tmp_path / "wal").exists()


def test_a_table_of_key_columns_only_and_composite_keys(make, conn, tmp_path):
    sink, table = make(table="{db}_{table}-" + uuid.uuid4().hex[:6])
    tags = TableSchema("shop.tags", (Column("item", T("STRING"), False),
                                     Column("n", T("INT"), False)), ("item", "n"))
    ops = ChangeBatch(tags, "cccd", rows=[("a", 2), ("a", 1), ("b\x00", -1), ("a", 2)],
                      versions=np.arange(4))
    commit(sink, [ops], tmp_path)
    name = sink.config.table_for("shop.tags")
    got = list(conn.table(name).scan())
    # rowkeys in (item, n) order, the row deleted at the end gone, one empty cell per row
    assert [cells for _, cells in got] == [{b"cf:": b""}] * 2
    assert got[0][0].startswith(b"a\x00\x00") and got[1][0].startswith(b"b\x00\xff\x00\x00")


def test_versions_of_a_key_going_back_in_one_writer_stop_the_commit(make, conn, tmp_path):
    """Of a commit's changes of a rowkey only the highest version is written: a change that
    one writer received after a higher version of its key (the source's versions went back,
    e.g. a binlog reset) would be lost silently, so the commit stops and says so."""
    sink, table = make()
    ctx = CommitContext("it", 1, None, str(tmp_path))
    rows = lambda *r: [(k, name, None, None) for k, name in r]  # noqa: E731
    # a table's versions may go down (snapshot rows, then lower binlog changes of other keys)
    fine = prepare(sink, tmp_path, 0, 1, batch("rr", rows((1, "a"), (2, "b")), [900, 900]),
                   batch("u", rows((3, "c")), [400]))
    sink.create_committer().commit(fine, ctx)
    assert len(list(conn.table(table).scan())) == 3
    back = prepare(sink, tmp_path, 0, 2, batch("u", rows((7, "first")), [1000]),
                   batch("u", rows((7, "second")), [20]))
    with pytest.raises(TerminalError, match=r"^hbase: table shop\.orders: the versions of key 7 go "
                                            r"backwards \(change #0 has version 1000, the later "
                                            rf"change #1 version 20\).*truncate the HBase table "
                                            rf"{table} "):
        sink.create_committer().commit(back, CommitContext("it", 2, None, str(tmp_path)))
    assert len(list(conn.table(table).scan())) == 3
    # at-least-once: the writer stops before writing
    sink, _ = make(delivery="at-least-once")
    writer = sink.create_writer(WriterContext("it", 0, 1, "a", str(tmp_path)), None)
    writer.write(batch("uu", rows((8, "x"), (8, "y")), [5, 4]))
    with pytest.raises(TerminalError, match="versions of key 8 go backwards"):
        writer.prepare_commit(1)
    writer.close()
