"""Two-phase commit holds in the corners: a MySQL DDL never commits the XA transaction early
(so append mode never duplicates and nothing is visible before its checkpoint), transaction
ids that are all taken stop the writer instead of writing outside a transaction,
``Committer.abort`` releases what a checkpoint that will never complete prepared, and a
writer begins its next transaction once told that the previous one committed."""
from __future__ import annotations

import pytest

from runtime.batch import ChangeBatch
from runtime.errors import TerminalError, TransientError
from runtime.schema import Column, SchemaChange, TableSchema
from runtime.sink import CommitContext, WriterContext
from runtime.types import T
from sinks.jdbc import writer as writer_module
from sinks.jdbc.config import JdbcSinkConfig
from sinks.jdbc.sink import JdbcSink
from tests.integration.jdbc.writing import commit, write_and_commit

pytestmark = [pytest.mark.integration, pytest.mark.jdbc]

V1 = TableSchema("src.items", (Column("id", T("BIGINT"), False), Column("v", T("INT"))), ("id",))
V2 = TableSchema("src.items", V1.columns + (Column("w", T("INT"), default="5"),), ("id",))
OTHER = TableSchema("src.other", (Column("id", T("BIGINT"), False),), ("id",))


def make_sink(db, **options) -> JdbcSink:
    return JdbcSink(JdbcSinkConfig.model_validate({"url": db.url, **options}))


def context(pipeline: str = "tp") -> WriterContext:
    return WriterContext(pipeline, 0, 1, "a1", "/tmp")


def test_mysql_ddl_keeps_the_rows_before_it_in_the_checkpoint_transaction(my):
    """Rows, ADD COLUMN, rows (append mode): before the checkpoint commits nothing is visible;
    a crash after the checkpoint is stored restores the rows after the DDL from the writer's
    state, and the end has every row exactly once."""
    sink = make_sink(my, **{"write-mode": "append"})
    w = sink.create_writer(context("tpddl"), None)
    w.write(ChangeBatch.of_rows(V1, [(1, 10), (2, 20)]))
    w.write(ChangeBatch.of_rows(OTHER, [(1,)]))
    w.write_schema_change(SchemaChange("add_column", "src.items", V2, {"column": "w"}))
    w.write(ChangeBatch.of_rows(V2, [(3, 30, 3)]))
    # the old code committed the XA transaction here, before the DDL
    assert my.visible("items") == 0 and my.visible("other") == 0
    committables = w.prepare_commit(1)
    state = w.snapshot_state(1)
    assert my.visible("items") == 0
    w.close()  # a crash after checkpoint 1 was stored: the rows after the DDL are in its state
    committer = sink.create_committer()
    committer.recover(committables, CommitContext("tpddl", 1, None))
    assert my.rows("items") == {(1, 10), (2, 20)} and my.rows("other") == {(1,)}
    w = sink.create_writer(context("tpddl"), state)
    committables = w.prepare_commit(2)
    commit(committer, committables, CommitContext("tpddl", 2, None))
    w.close()
    committer.close()
    # the rows before the DDL read the column's default, as at the source
    assert sorted(my.query("SELECT id, v, w FROM items")) == [(1, 10, 5), (2, 20, 5), (3, 30, 3)]
    assert my.prepared("hub:tpddl:") == []


def test_mysql_ddl_of_an_untouched_table_runs_at_once_beside_the_transaction(my):
    sink = make_sink(my)
    w = sink.create_writer(context("tpu"), None)
    try:
        w.write_schema_change(SchemaChange("create_table", "src.items", V1))
        w.write(ChangeBatch.of_rows(OTHER, [(1,)]))
        w.write_schema_change(SchemaChange("add_column", "src.items", V2, {"column": "w"}))
        # the items table is not in the open transaction: changed at once, nothing committed
        assert [r[0] for r in my.query("SELECT column_name FROM information_schema.columns "
                                       "WHERE table_schema = DATABASE() AND table_name = "
                                       "'items' ORDER BY ordinal_position")] == ["id", "v", "w"]
        assert my.visible("other") == 0
        assert not (w.snapshot_state(1) or {}).get("deferred")
    finally:
        w.close()


def test_transaction_ids_all_taken_stop_the_writer(my, monkeypatch):
    monkeypatch.setattr(writer_module, "MAX_SERIALS", 3, raising=False)
    sink = make_sink(my)
    prepared = []
    for _ in range(3):  # writers without restored state all start at checkpoint 1
        w = sink.create_writer(context("tpids"), None)
        w.write(ChangeBatch.of_rows(OTHER, [(len(prepared),)]))
        prepared += w.prepare_commit(1)
        w.close()
    assert len(my.prepared("hub:tpids:")) == 3
    w = sink.create_writer(context("tpids"), None)
    try:
        with pytest.raises(TerminalError, match="transaction ids"):
            w.write(ChangeBatch.of_rows(OTHER, [(9,)]))
            w.prepare_commit(1)
    finally:
        w.close()
    assert my.visible("other") == 0  # nothing written outside a transaction
    committer = sink.create_committer()
    for _ in range(50):  # MariaDB: "still attached" right after the prepare (logged, retried)
        committer.abort(prepared, CommitContext("tpids", 1, None))
        if not my.prepared("hub:tpids:"):
            break
    committer.close()
    assert my.prepared("hub:tpids:") == []


def test_abort_rolls_back_prepared_transactions_and_is_idempotent(db):
    sink = make_sink(db)
    w = sink.create_writer(context("tpab"), None)
    w.write(ChangeBatch.of_rows(V1, [(1, 1), (2, 2)]))
    committables = w.prepare_commit(1)
    w.close()
    assert db.prepared("hub:tpab:") == [c["xid"] for c in committables]
    committer = sink.create_committer()
    ctx = CommitContext("tpab", 1, None)
    for _ in range(50):  # MariaDB: "still attached" right after the prepare (logged, retried)
        committer.abort(committables, ctx)
        if not db.prepared("hub:tpab:"):
            break
    committer.abort(committables, ctx)  # idempotent: nothing left to roll back
    committer.close()
    assert db.prepared("hub:tpab:") == []
    assert db.visible("items") == 0
    # its locks are gone: another writer writes the same keys at once
    w = sink.create_writer(context("tp2"), None)
    w.write(ChangeBatch.of_rows(V1, [(1, 10)]))
    commit(sink.create_committer(), w.prepare_commit(1), CommitContext("tp2", 1, None))
    w.close()
    assert db.rows("items") == {(1, 10)}


def test_the_next_transaction_waits_for_the_notification_not_the_database(db):
    """The writer learns that its previous transaction committed from the runtime's
    notification (SinkWriter.notify_checkpoint_complete), not by asking the database: until
    told, it does not begin the next one even though the commit is done (the wait is bounded:
    a writer outside a pipeline has no one to tell it, and gives up at once)."""
    sink = make_sink(db)
    w = sink.create_writer(context("tpnote"), None)
    committer = sink.create_committer()
    try:
        w.write(ChangeBatch.of_rows(V1, [(1, 1)]))
        commit(committer, w.prepare_commit(1), CommitContext("tpnote", 1, None))
        assert db.rows("items") == {(1, 1)}
        w.write(ChangeBatch.of_rows(V1, [(2, 2)]))
        with pytest.raises(TransientError, match="checkpoint 1 is still not committed"):
            w.prepare_commit(2)  # flushes: the next transaction would begin
        w.notify_checkpoint_complete(1)
        w.write(ChangeBatch.of_rows(V1, [(3, 3)]))
        commit(committer, w.prepare_commit(3), CommitContext("tpnote", 3, None))
    finally:
        w.close()
        committer.close()
    assert db.rows("items") == {(1, 1), (3, 3)}  # (2, 2) went with the failed attempt


def test_a_transaction_that_fails_to_commit_is_retried_alone(my):
    """One outcome per prepared transaction: while one can't be committed yet (MariaDB: still
    attached to the connection that prepared it, a transient error), the others of the
    checkpoint are committed, and only that one is tried again until it commits."""
    import threading

    from runtime.checkpoint.committer_task import (CheckpointCommitted, CommitCheckpoint,
                                                   CommitterTask)
    from runtime.retry import Backoff
    from runtime.sink import Outcome

    sink = make_sink(my, **{"write-mode": "append"})
    w = sink.create_writer(context("tpeach"), None)
    w.write(ChangeBatch.of_rows(OTHER, [(1,)]))
    first = w.prepare_commit(1)  # the writer detaches from it
    w.close()
    held = my.connect()  # the second, prepared on a connection kept open for a while
    with held.cursor() as cur:
        for statement in ("XA START 'hub:tpeach:1:1'", "INSERT INTO other VALUES (2)",
                          "XA END 'hub:tpeach:1:1'", "XA PREPARE 'hub:tpeach:1:1'"):
            cur.execute(statement)
    second = {"xid": "hub:tpeach:1:1"}
    committer = sink.create_committer()
    calls: list[tuple[list[str], dict[str, Outcome]]] = []
    commit_each = committer.commit_each

    def recording(committables, ctx):
        outcomes = commit_each(committables, ctx)
        calls.append(([c["xid"] for c in committables],
                      {o.committable["xid"]: o.outcome for o in outcomes}))
        return outcomes

    committer.commit_each = recording
    release = threading.Timer(1.0, held.close)
    release.start()
    try:
        report = CommitterTask(committer, "tpeach", "", "job", Backoff(0.1, 0.3, 40)).process(
            CommitCheckpoint(1, first + [second], None))
    finally:
        release.cancel()
        if held.open:
            held.close()
        committer.close()
    assert isinstance(report, CheckpointCommitted), report
    assert calls[0][1][second["xid"]] is Outcome.RETRY_LATER  # still attached at first
    # the first was committed while the second had to wait (not held back with it) ...
    assert any(o[first[0]["xid"]] is Outcome.DONE and o[second["xid"]] is Outcome.RETRY_LATER
               for xids, o in calls if first[0]["xid"] in o), calls
    done: set[str] = set()
    for xids, outcomes in calls:
        assert not done & set(xids), f"committed again: {calls}"  # ... and not tried again
        done |= {x for x, o in outcomes.items() if o is Outcome.DONE}
    assert done == {first[0]["xid"], second["xid"]}
    assert my.rows("other") == {(1,), (2,)} and my.prepared("hub:tpeach:") == []


def test_mysql_deletes_of_many_keys_never_wait_on_another_subtasks_prepared_rows(my):
    """Two subtasks of one checkpoint: one has prepared an update of key 2; the other deletes
    1,500 other keys.  MariaDB turns an IN list of 1,000 keys or more into a join that scans
    the whole primary key, which waited on key 2's lock until the lock wait timeout: the job
    restarted, as the subtask holding key 2 commits only once the other reaches its barrier."""
    sink = make_sink(my)
    write_and_commit(sink, context("tpdel"), [ChangeBatch.of_rows(
        V1, [(i, 0) for i in range(1, 3001)])])
    holder = sink.create_writer(WriterContext("tpdel", 0, 2, "a1", "/tmp"), None)
    deleter = sink.create_writer(WriterContext("tpdel", 1, 2, "a1", "/tmp"), None)
    committer = sink.create_committer()
    try:
        holder.write(ChangeBatch.of_rows(V1, [(2, 1)], op="u"))
        held = holder.prepare_commit(2)
        deleter.write(ChangeBatch.of_rows(V1, [(i, 0) for i in range(1, 3001, 2)], op="d"))
        deleted = deleter.prepare_commit(2)  # waited 10 s, then failed, with one DELETE
        commit(committer, held + deleted, CommitContext("tpdel", 2, None))
    finally:
        holder.close()
        deleter.close()
        committer.close()
    assert my.rows("items") == {(i, 1 if i == 2 else 0) for i in range(2, 3001, 2)}
