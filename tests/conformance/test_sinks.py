"""Sink conformance: every sink passes these, fed by the reference source.

Single split, many splits, exactly-once across failures and restores, a commit replayed twice
is a no-op, and nothing is visible before its checkpoint commits.
"""
from __future__ import annotations

from collections import Counter

import pytest

from runtime.checkpoint.storage import CheckpointStorage
from runtime.sink import CommitContext, Sink
from tests.conformance.harness import (Abort, ListSource, make_batches, run_job,
                                       run_with_failures)
from tests.conformance.sinks import SINK_CASES


@pytest.fixture(params=sorted(SINK_CASES), ids=str)
def case(request):
    return SINK_CASES[request.param]


def expected(data, case=None) -> Counter:
    if case is not None and case.upsert:
        return final_state(data)
    rows: Counter = Counter()
    for batches in data:
        for b in batches:
            for op, row in zip(b.ops, b.rows()):
                rows[(b.table, op, row[0], row[1])] += 1
    return rows


def final_state(data) -> Counter:
    """What an upsert sink (one row per key, deletes remove it) shows at the end: the last
    image of every live key as ``(table, id, name)``.  Per-key order lives within a split."""
    state: dict = {}
    for batches in data:
        for b in batches:
            for op, row in zip(b.ops, b.rows()):
                if op == "d":
                    state.pop((b.table, row[0]), None)
                else:
                    state[(b.table, row[0])] = row[1]
    return Counter((table, id_, name) for (table, id_), name in state.items())


class AbortingSink(Sink):
    """Wraps a sink: fails at a chosen batch, counts completed commits."""

    def __init__(self, inner: Sink, abort: Abort | None):
        self.inner, self.abort = inner, abort

    def check(self):
        self.inner.check()

    def create_writer(self, context, state):
        writer = self.inner.create_writer(context, state)
        if self.abort:
            write = writer.write

            def failing_write(batch, write=write):
                self.abort.on_batch()
                write(batch)

            writer.write = failing_write
        return writer

    def create_committer(self):
        committer = self.inner.create_committer()
        if self.abort:
            # the committer task commits through commit_each (by default: through commit)
            commit_each = committer.commit_each

            def counting_commit(committables, context, commit_each=commit_each):
                out = commit_each(committables, context)
                self.abort.completed += 1
                return out

            committer.commit_each = counting_commit
        return committer


def test_single_split(case, tmp_path):
    data = make_batches(1, 5, 50)
    run_job(ListSource(data), case.make(tmp_path / "out"), str(tmp_path / "state"), parallelism=1)
    assert case.read(tmp_path / "out") == expected(data, case)


def test_many_splits(case, tmp_path):
    data = make_batches(6, 4, 40)
    run_job(ListSource(data), case.make(tmp_path / "out"), str(tmp_path / "state"), parallelism=2)
    assert case.read(tmp_path / "out") == expected(data, case)


def test_restore_after_abort_is_exactly_once(case, tmp_path):
    data = make_batches(4, 12, 30)
    aborts = [Abort(after_batches=n) for n in (3, 7, 2)]
    fired = run_with_failures(lambda: ListSource(data),
                              lambda abort: AbortingSink(case.make(tmp_path / "out"), abort),
                              str(tmp_path / "state"), aborts)
    assert fired >= 1, "no failure was injected: the test would prove nothing"
    assert case.read(tmp_path / "out") == expected(data, case)


def test_commit_replayed_twice_is_a_no_op(case, tmp_path):
    data = make_batches(2, 3, 20)
    sink = case.make(tmp_path / "out")
    run_job(ListSource(data), sink, str(tmp_path / "state"))
    before = case.read(tmp_path / "out")
    cp = CheckpointStorage(str(tmp_path / "state")).latest()
    committables = cp.data["sink"]["committables"]
    ctx = CommitContext("conformance", cp.checkpoint_id, cp.data["watermark_ms"])
    committer = sink.create_committer()
    committer.commit(committables, ctx)
    committer.commit(committables, ctx)
    committer.recover(committables, ctx)
    assert case.read(tmp_path / "out") == before == expected(data, case)


def test_nothing_visible_before_commit(case, tmp_path):
    from runtime.sink import WriterContext

    data = make_batches(1, 2, 20)
    sink = case.make(tmp_path / "out")
    sink.check()
    writer = sink.create_writer(WriterContext("conformance", 0, 1, "a1", str(tmp_path)), None)
    for b in data[0]:
        writer.write(b)
    committables = writer.prepare_commit(1)
    assert case.read(tmp_path / "out") == Counter()
    writer.notify_checkpoint_stored(1)  # as the runtime does before the commit
    sink.create_committer().commit(committables, CommitContext("conformance", 1, None))
    assert case.read(tmp_path / "out") == expected(data, case)
    writer.close()
