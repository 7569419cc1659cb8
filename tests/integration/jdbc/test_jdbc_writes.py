"""Upserts, deletes, collapsing, append mode and two-phase commit against real servers."""
from __future__ import annotations

from decimal import Decimal

import pytest

from runtime.batch import ChangeBatch
from runtime.schema import Column, TableSchema
from runtime.sink import CommitContext, WriterContext
from runtime.types import T
from sinks.jdbc.config import JdbcSinkConfig
from sinks.jdbc.sink import JdbcSink

pytestmark = [pytest.mark.integration, pytest.mark.jdbc]

ITEMS = TableSchema("shop.items", (Column("id", T("BIGINT"), False), Column("name", T("VARCHAR(20)")),
                                   Column("price", T("DECIMAL(10,2)"))), ("id",))


def make_sink(db, **options) -> JdbcSink:
    return JdbcSink(JdbcSinkConfig.model_validate({"url": db.url, **options}))


def write(sink: JdbcSink, batches, checkpoint: int = 1, pipeline: str = "t", subtask: int = 0,
          commit: bool = True) -> list[dict]:
    writer = sink.create_writer(WriterContext(pipeline, subtask, 1, "a1", "/tmp"), None)
    try:
        for b in batches:
            writer.write(b)
        committables = writer.prepare_commit(checkpoint)
    finally:
        writer.close()
    if commit:
        committer = sink.create_committer()
        committer.commit(committables, CommitContext(pipeline, checkpoint, None))
        committer.close()
    return committables


def test_upserts_and_deletes_collapse_in_order(db):
    sink = make_sink(db, **{"batch-size": 4})
    batches = [
        ChangeBatch(ITEMS, "ccc", rows=[(1, "a", Decimal("1.10")), (2, "b", Decimal("2.20")),
                                        (3, "c", Decimal("3.30"))]),
        # same key several times in one batch: the last event wins, in order
        ChangeBatch(ITEMS, "ududc", rows=[(1, "a2", Decimal("1.11")), (2, None, None),
                                          (1, "a3", Decimal("1.12")), (3, None, None),
                                          (3, "c2", Decimal("0.01"))]),
        ChangeBatch(ITEMS, "cd", rows=[(4, "d", Decimal("4.40")), (4, None, None)]),
    ]
    write(sink, batches)
    assert db.rows("items") == {(1, "a3", Decimal("1.12")), (3, "c2", Decimal("0.01"))}
    # a second run upserts over existing rows
    write(make_sink(db), [ChangeBatch(ITEMS, "rc", rows=[(1, "x", Decimal("9.99")),
                                                         (5, "e", Decimal("5"))])], checkpoint=2)
    assert db.rows("items") == {(1, "x", Decimal("9.99")), (3, "c2", Decimal("0.01")),
                                (5, "e", Decimal("5.00"))}


def test_nothing_visible_until_commit_prepared(db):
    sink = make_sink(db)
    committables = write(sink, [ChangeBatch.of_rows(ITEMS, [(1, "a", Decimal(1))])], commit=False)
    assert [c["xid"] for c in committables] == ["hub:t:0:1"]
    assert db.prepared("hub:t:") == ["hub:t:0:1"]
    assert db.visible("items") == 0
    committer = sink.create_committer()
    ctx = CommitContext("t", 1, None)
    committer.commit(committables, ctx)
    committer.commit(committables, ctx)  # idempotent
    committer.close()
    assert db.count("items") == 1 and db.prepared("hub:t:") == []


def test_recover_commits_restored_and_rolls_back_the_rest(db):
    sink = make_sink(db)
    done = write(sink, [ChangeBatch.of_rows(ITEMS, [(1, "a", Decimal(1))])], checkpoint=1,
                 commit=False)
    later = write(sink, [ChangeBatch.of_rows(ITEMS, [(2, "b", Decimal(2))])], checkpoint=2,
                  commit=False)
    other = write(sink, [ChangeBatch.of_rows(ITEMS, [(3, "c", Decimal(3))])], checkpoint=2,
                  pipeline="other", commit=False)
    committer = sink.create_committer()
    committer.recover(done, CommitContext("t", 1, None))
    committer.close()
    assert db.rows("items", "id") == {(1,)}
    assert db.prepared("hub:t:") == []
    assert db.prepared("hub:other:") == [c["xid"] for c in other]
    assert later  # was prepared, then rolled back
    committer = sink.create_committer()
    committer.recover(other, CommitContext("other", 2, None))
    committer.close()
    assert db.rows("items", "id") == {(1,), (3,)}


def test_append_mode_inserts_row_images(db):
    sink = make_sink(db, **{"write-mode": "append"})
    write(sink, [ChangeBatch(ITEMS, "cud", rows=[(1, "a", Decimal(1)), (1, "b", Decimal(2)),
                                                  (1, None, None)])])
    assert sorted(db.query(f"SELECT name FROM {db.q('items')}")) == [("a",), ("b",)]
