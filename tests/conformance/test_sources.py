"""Source conformance: every source passes these against the reference two-phase sink.

A source case gives ``make(tmp_path, splits) -> Source`` for a bounded instance; the suite
checks single split, many splits, and exactly-once output across failures and restores.
"""
from __future__ import annotations

import pytest

from tests.conformance.harness import Abort, CollectSink, CollectStore, run_job, run_with_failures
from tests.conformance.sources import SOURCE_CASES


@pytest.fixture(params=sorted(SOURCE_CASES), ids=str)
def case(request):
    return SOURCE_CASES[request.param]


def _reference(case, tmp_path, splits, parallelism=2):
    store = CollectStore()
    run_job(case.make(tmp_path / "data", splits), CollectSink(store), str(tmp_path / "ref"),
            parallelism=parallelism, restore=False)
    return store.rows()


def test_single_split(case, tmp_path):
    rows = _reference(case, tmp_path, splits=1, parallelism=1)
    assert sum(rows.values()) == case.expected_events(1)


def test_many_splits(case, tmp_path):
    rows = _reference(case, tmp_path, splits=4)
    assert sum(rows.values()) == case.expected_events(4)
    assert max(rows.values()) == 1 or case.allows_duplicate_rows


def test_restore_after_abort_is_exactly_once(case, tmp_path):
    expected = _reference(case, tmp_path, splits=4)
    store = CollectStore()
    aborts = [Abort(tmp_path / f"abort-{k}", after_batches=n) for k, n in enumerate((2, 5, 3))]
    fired = run_with_failures(lambda: case.make(tmp_path / "data", 4),
                              lambda abort: CollectSink(store, abort),
                              str(tmp_path / "state"), aborts)
    assert fired >= 1, "no failure was injected: the test would prove nothing"
    assert store.rows() == expected


def test_finished_pipeline_restarted_emits_nothing_more(case, tmp_path):
    store = CollectStore()
    state = str(tmp_path / "state")
    run_job(case.make(tmp_path / "data", 2), CollectSink(store), state)
    first = store.rows()
    run_job(case.make(tmp_path / "data", 2), CollectSink(store), state)
    assert store.rows() == first
