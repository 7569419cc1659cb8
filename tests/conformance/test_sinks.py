"""Sink conformance: every sink passes these, fed by the reference source.

Single split, many splits, exactly-once across failures and restores, a commit replayed twice
is a no-op, and nothing is visible before its checkpoint commits.

The tests that run a job run on the local executor for every sink, and on the Ray executor
(marker ``ray``: the two-node cluster of tests/servers/ray.py, each writer in an actor): in
the default suite :data:`RAY_TESTS` for the sinks of :data:`RAY_CASES`, one per way of
committing; ``HUB_TEST_CONFORMANCE_RAY=all`` runs every test that runs a job on Ray for every
sink (minutes: each run starts its actors).
"""
from __future__ import annotations

import os
from collections import Counter

import pytest

from runtime.checkpoint.storage import CheckpointStorage
from runtime.sink import CommitContext
from tests.conformance.harness import (Abort, AbortingSink, ListSource, make_batches, run_job,
                                       run_with_failures)
from tests.conformance.sinks import SINK_CASES


#: The sinks run on Ray in the default suite: files renamed at commit, a two-phase JDBC
#: transaction, a write-ahead log applied at commit, a transactional Kafka producer.
RAY_CASES = ("files-parquet", "jdbc-postgres", "elasticsearch", "kafka")
#: ... and the tests they run there: many splits over both nodes, and restores after failures
RAY_TESTS = ("test_many_splits", "test_restore_after_abort_is_exactly_once")


def pytest_generate_tests(metafunc):
    """``case`` for every sink; with ``executor`` (tests that run a job) also the Ray pairs."""
    if "case" not in metafunc.fixturenames:
        return
    names = sorted(SINK_CASES)
    if "executor" not in metafunc.fixturenames:
        metafunc.parametrize("case", names, ids=str, indirect=True)
        return
    if os.environ.get("HUB_TEST_CONFORMANCE_RAY") == "all":
        on_ray = names
    else:
        on_ray = [n for n in names if n in RAY_CASES and metafunc.function.__name__ in RAY_TESTS]
    metafunc.parametrize(("case", "executor"), [pytest.param(n, "local", id=n) for n in names] + [
        pytest.param(n, "ray", id=f"{n}-ray", marks=pytest.mark.ray) for n in on_ray],
        indirect=["case"])


@pytest.fixture
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


def test_single_split(case, executor, tmp_path):
    data = make_batches(1, 5, 50)
    run_job(ListSource(data), case.make(tmp_path / "out"), str(tmp_path / "state"), parallelism=1,
            executor=executor)
    assert case.read(tmp_path / "out") == expected(data, case)


def test_many_splits(case, executor, tmp_path):
    data = make_batches(6, 4, 40)
    run_job(ListSource(data), case.make(tmp_path / "out"), str(tmp_path / "state"), parallelism=2,
            executor=executor)
    assert case.read(tmp_path / "out") == expected(data, case)


def test_restore_after_abort_is_exactly_once(case, executor, tmp_path):
    data = make_batches(4, 12, 30)
    aborts = [Abort(tmp_path / f"abort-{k}", after_batches=n) for k, n in enumerate((3, 7, 2))]
    fired = run_with_failures(lambda: ListSource(data),
                              lambda abort: AbortingSink(case.make(tmp_path / "out"), abort),
                              str(tmp_path / "state"), aborts, executor=executor, hold=1)
    assert fired >= 1, "no failure was injected: the test would prove nothing"
    assert case.read(tmp_path / "out") == expected(data, case)


def test_commit_replayed_twice_is_a_no_op(case, executor, tmp_path):
    data = make_batches(2, 3, 20)
    sink = case.make(tmp_path / "out")
    run_job(ListSource(data), sink, str(tmp_path / "state"), executor=executor)
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
