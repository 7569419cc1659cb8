"""Versions of change batches: the clock, runs and the last change per key."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from runtime.batch import ChangeBatch
from runtime.schema import Column, TableSchema
from runtime.types import T
from runtime.versioned import VersionClock, last_per_key, runs

A = TableSchema("a.b", (Column("id", T("INT"), False),), ("id",))
A2 = TableSchema("a.b", (Column("id", T("INT"), False), Column("v", T("INT"))), ("id",))
B = TableSchema("a.c", (Column("id", T("INT"), False),), ("id",))


def test_last_per_key_by_position():
    assert last_per_key(pa.array(["1", "2", "1", "3", "2"])).tolist() == [2, 3, 4]
    assert last_per_key(pa.array(["1", "2"])) is None
    assert last_per_key(pa.array([b"a", b"b", b"a"], pa.binary())).tolist() == [1, 2]


def test_last_per_key_by_version_whatever_the_order():
    # rows of two writers, one after the other: key 1's newest change (version 50) is first
    keys = pa.array([1, 2, 1, 1, 3], pa.int64())
    assert last_per_key(keys, np.array([50, 60, 10, 20, 5])).tolist() == [0, 1, 4]
    # equal versions: the later position wins
    assert last_per_key(keys, np.array([7, 7, 7, 7, 7])).tolist() == [1, 3, 4]


def test_runs_merge_per_table_and_schema_in_order():
    b1 = ChangeBatch(A, "cc", rows=[(1,), (2,)], ts_ms=[1, 2], versions=np.array([1, 2]))
    c1 = ChangeBatch(B, "c", rows=[(9,)], ts_ms=3, versions=np.array([3]))
    b2 = ChangeBatch(A, "d", rows=[(1,)], ts_ms=[4], versions=np.array([4]))
    merged, other = runs([b1, c1, b2])
    assert merged.table == "a.b" and other.table == "a.c"
    assert merged.ops == "ccd" and merged.rows() == [(1,), (2,), (1,)]
    assert list(merged.versions) == [1, 2, 4] and merged.ts_ms_list() == [1, 2, 4]


def test_a_schema_change_starts_a_new_run_also_back_to_an_earlier_schema():
    v = np.array([1])
    out = runs([ChangeBatch(A, "c", rows=[(1,)], versions=v),
                ChangeBatch(A2, "u", rows=[(1, 5)], versions=v + 1),
                ChangeBatch(A, "u", rows=[(1,)], versions=v + 2),
                ChangeBatch(A, "u", rows=[(2,)], versions=v + 3)])
    assert [(r.schema is A2, len(r)) for r in out] == [(False, 1), (True, 1), (False, 2)]


def test_version_clock_is_increasing_and_leaves_batches_alone():
    clock = VersionClock()
    b = ChangeBatch(A, "cc", rows=[(1,), (2,)])
    s1, s2 = clock.stamp(b), clock.stamp(b)
    assert b.versions is None
    assert list(s1.versions)[1] < list(s2.versions)[0]
    given = ChangeBatch(A, "c", rows=[(1,)], versions=np.array([42]))
    assert clock.stamp(given) is given


# -- versions going backwards per key ------------------------------------------------------------
def test_first_regression_is_per_key_not_per_table() -> None:
    from runtime.versioned import first_regression

    keys = pa.array(["a", "b", "a", "c"])
    # a table's versions go down (snapshot rows at HIGH - 1, then binlog changes of other
    # chunks' keys, lower): legitimate, each key's own versions rise
    assert first_regression(keys, np.array([100, 100, 101, 50])) is None
    assert first_regression(keys, np.array([1, 2, 3, 4])) is None
    assert first_regression(keys, np.array([5, 5, 5, 5])) is None  # equal: a replay, or d+c
    assert first_regression(keys, np.array([100, 7, 99, 1])) == (0, 2)
    assert first_regression(pa.chunked_array([["x", "y"], ["x"]]), np.array([3, 1, 2])) == (0, 2)


def test_check_versions_names_table_key_versions_and_remedy() -> None:
    from runtime.errors import TerminalError
    from runtime.versioned import check_versions

    check_versions("es", "shop.t", pa.array([1, 2]), np.array([9, 1]), "do this")
    with pytest.raises(TerminalError, match=r"^es: table shop\.t: the versions of key 7 go "
                                            r"backwards \(change #0 has version 9, the later "
                                            r"change #1 version 3\).*: do this$"):
        check_versions("es", "shop.t", pa.array([7, 7]), np.array([9, 3]), "do this")
