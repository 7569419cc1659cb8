"""Snapshot reads and inserts staged by the delta writers as the table's data files
(:mod:`sinks.lake.staging`): added as they are when their keys collide with nothing, merged
when they do (with each other, with the checkpoint's other changes, with the table), exactly
once across crashes between staging and commit and after the commit, and the files of a
checkpoint that never completed deleted at restore.  Read back with deltalake and Polars."""
from __future__ import annotations

import os

import pytest

pytest.importorskip("deltalake")
pytest.importorskip("polars")

from deltalake import DeltaTable  # noqa: E402

from runtime.batch import ChangeBatch  # noqa: E402
from tests.integration.delta.helpers import (PIPELINE, Driver, checkpoint_commits,  # noqa: E402
                                             commits, read, schema)

pytestmark = [pytest.mark.integration, pytest.mark.delta]

ORDERS = schema("shop.orders", {"id": "BIGINT", "name": "STRING", "qty": "INT"})
APP = f"hub:{PIPELINE}:delta:job-1"


class Crash(Exception):
    pass


def crashing_at(monkeypatch, point: str):
    """Make crash point ``point`` raise :class:`Crash` in the lake and delta committers."""
    import sinks.delta.committer as delta_committer
    import sinks.lake.committer as lake_committer

    def crash_point(name: str, checkpoint: int) -> None:
        if name == point:
            raise Crash(name)

    monkeypatch.setattr(delta_committer, "crash_point", crash_point)
    monkeypatch.setattr(lake_committer, "crash_point", crash_point)


def staged_paths(committables: list[dict]) -> list[str]:
    return [f["path"] for c in committables for f in c.get("staged", ())]


def test_a_snapshot_is_added_as_the_writers_files_with_key_statistics(tmp_path):
    """Two writers' snapshot reads: one commit adding both writers' files as they are
    (no rewrite: the files the writers wrote are the table's), with row counts and key
    bounds in the log (deltalake prunes by them)."""
    d = Driver(tmp_path, **{"target-file-size": "1KB"})
    w0 = d.stage(ChangeBatch(ORDERS, "r" * 300, rows=[(i, f"n{i}", i) for i in range(300)]),
                 subtask=0)
    d.cp = 0
    w1 = d.stage(ChangeBatch(ORDERS, "r" * 200,
                             rows=[(i, f"n{i}", i) for i in range(300, 500)]), subtask=1)
    files = staged_paths(w0 + w1)
    assert len(files) >= 2 and all(os.path.exists(p) for p in files)
    d.committer.commit(w0 + w1, d.context(1))
    uri = d.uri("shop.orders")
    got = read(uri)
    assert sorted(got) == list(range(500)) and got[42] == {"id": 42, "name": "n42", "qty": 42}
    t = DeltaTable(uri)
    assert sorted(os.path.basename(p) for p in t.file_uris()) == sorted(
        os.path.basename(p) for p in files)
    assert [c["operation"] for c in commits(uri)] == ["CREATE TABLE"]
    assert t.transaction_version(APP) == 1
    import pyarrow as pa

    adds = pa.table(t.get_add_actions(flatten=True)).to_pylist()
    assert sum(a["num_records"] for a in adds) == 500
    assert min(a["min.id"] for a in adds) == 0 and max(a["max.id"] for a in adds) == 499


@pytest.mark.parametrize("case", ["twice", "held", "changed"])
def test_colliding_staged_keys_are_merged_in_source_order(tmp_path, case):
    """Staged rows whose keys collide are merged, the last change of a key in source order
    winning: a key staged by two writers (the later version wins), a staged key the table
    holds (replaced, not doubled), a staged key the checkpoint updates and deletes."""
    d = Driver(tmp_path)
    d.checkpoint(ChangeBatch(ORDERS, "rr", rows=[(1, "a", 1), (2, "b", 2)]))
    if case == "twice":
        d.seq += 10
        late = d.stage(ChangeBatch(ORDERS, "c", rows=[(7, "late", 2)], versions=[d.seq + 5]),
                       subtask=1)
        d.cp -= 1
        early = d.stage(ChangeBatch(ORDERS, "c", rows=[(7, "early", 1)], versions=[d.seq]))
        staged = late + early
        want = {1: ("a", 1), 2: ("b", 2), 7: ("late", 2)}
    elif case == "held":
        staged = d.stage(ChangeBatch(ORDERS, "rc", rows=[(2, "b2", 20), (3, "c", 3)]))
        want = {1: ("a", 1), 2: ("b2", 20), 3: ("c", 3)}
    else:
        staged = d.stage(ChangeBatch(ORDERS, "cucdc", rows=[
            (5, "e", 5), (5, "e2", 50), (6, "f", 6), (6, "f", 6), (8, "h", 8)]))
        want = {1: ("a", 1), 2: ("b", 2), 5: ("e2", 50), 8: ("h", 8)}
    d.committer.commit(staged, d.context())
    uri = d.uri("shop.orders")
    assert {k: (r["name"], r["qty"]) for k, r in read(uri).items()} == want
    assert checkpoint_commits(uri) == [1, 2]
    # the collapsed changes of "twice" are one insert of a key the table lacks: appended
    assert [c["operation"] for c in commits(uri)][1] == ("WRITE" if case == "twice" else "MERGE")
    assert not [p for p in staged_paths(staged) if os.path.exists(p)], "merged file left"


def test_every_logical_type_survives_the_merge_of_staged_rows(tmp_path):
    """Staged rows read back for a MERGE (keys the table holds) keep every value: the
    Delta types of the staged file are cast back exactly."""
    from tests.integration.delta.test_delta_sink import ALL_TYPES, ALL_TYPES_ROW

    row = ALL_TYPES_ROW
    nulls = (2,) + (None,) * (len(row) - 1)
    d = Driver(tmp_path)
    d.checkpoint(ChangeBatch(ALL_TYPES, "rr", rows=[nulls, (1,) + nulls[1:]]))
    d.checkpoint(ChangeBatch(ALL_TYPES, "cc", rows=[row, (2,) + row[1:]]))  # held: merged
    uri = d.uri("shop.types")
    assert [c["operation"] for c in commits(uri)] == ["CREATE TABLE", "MERGE"]
    got = read(uri)
    for key in (1, 2):
        r = got[key]
        assert r["t"] == -(838 * 3600 * 10**6 + 1)  # TIME: signed microseconds
        assert r["ltz"] == row[15] and r["ts"] == row[14]
        assert {k: v for k, v in r.items() if k not in ("id", "t", "ltz")} == {
            k: v for k, v in zip(ALL_TYPES.names, row) if k not in ("id", "t", "ltz")}


@pytest.mark.parametrize("point", ["delta-files-staged", "delta-changes-committed",
                                   "delta-files-added", "delta-checkpoint-committed"])
def test_a_crash_around_adding_staged_files_commits_them_once(tmp_path, monkeypatch, point):
    """A crash before the staged files' commit, between the commit of the checkpoint's
    other changes and the files' addition (two commits: new-keys-append-threshold allows
    them), after the addition (side records not yet deleted): the restored committer commits
    the same committables again, and every part lands exactly once."""
    d = Driver(tmp_path, **{"new-keys-append-threshold": 1})
    d.checkpoint(ChangeBatch(ORDERS, "rr", rows=[(1, "a", 1), (2, "b", 2)]))
    staged = d.stage(ChangeBatch(ORDERS, "cudc", rows=[(3, "c", 3), (1, "a2", 10),
                                                       (2, "b", 2), (4, "d", 4)]))
    with monkeypatch.context() as m:
        crashing_at(m, point)
        with pytest.raises(Crash):
            d.committer.commit(staged, d.context())
    again = d.sink.create_committer()
    again.recover(staged, d.context())
    again.commit(staged, d.context())  # once more: a no-op
    uri = d.uri("shop.orders")
    assert read(uri) == {1: {"id": 1, "name": "a2", "qty": 10},
                         3: {"id": 3, "name": "c", "qty": 3}, 4: {"id": 4, "name": "d", "qty": 4}}
    assert [c["operation"] for c in commits(uri)] == ["CREATE TABLE", "MERGE", "WRITE"]
    assert checkpoint_commits(uri) == [1, 2, 2]
    t = DeltaTable(uri)
    assert t.transaction_version(APP) == 2 and t.transaction_version(APP + "#changes") == 2
    assert all(os.path.exists(p) for p in staged_paths(staged)), "an added file deleted"


@pytest.mark.parametrize("threshold", [0, 2])
def test_staged_inserts_and_other_changes_are_one_commit_unless_two_are_allowed(tmp_path,
                                                                              threshold):
    """A checkpoint with staged inserts and other changes of the table: one MERGE of all
    (the default: one commit per table and checkpoint), or, with at least
    new-keys-append-threshold staged rows, a MERGE of the other changes then the staged
    file added as it is."""
    d = Driver(tmp_path, **{"new-keys-append-threshold": threshold})
    d.checkpoint(ChangeBatch(ORDERS, "rr", rows=[(1, "a", 1), (2, "b", 2)]))
    staged = d.stage(ChangeBatch(ORDERS, "cc", rows=[(3, "c", 3), (4, "d", 4)]),
                     ChangeBatch(ORDERS, "ud", rows=[(1, "a2", 10), (2, "b", 2)]))
    d.committer.commit(staged, d.context())
    uri = d.uri("shop.orders")
    assert {k: (r["name"], r["qty"]) for k, r in read(uri).items()} == {
        1: ("a2", 10), 3: ("c", 3), 4: ("d", 4)}
    ops = [(c["operation"], c.get("hub.part")) for c in commits(uri)][1:]
    added = [os.path.basename(p) in {os.path.basename(u) for u in DeltaTable(uri).file_uris()}
             for p in staged_paths(staged)]
    if threshold:
        assert ops == [("MERGE", "changes"), ("WRITE", None)] and added == [True]
    else:
        assert ops == [("MERGE", None)] and added == [False]
    assert checkpoint_commits(uri) == ([1, 2, 2] if threshold else [1, 2])


def test_files_of_a_checkpoint_that_never_completed_are_deleted_at_restore(tmp_path):
    """Restored from checkpoint 1 while checkpoint 2's files were staged (never stored):
    recover deletes checkpoint 2's files, keeps and commits checkpoint 1's."""
    d = Driver(tmp_path)
    first = d.stage(ChangeBatch(ORDERS, "rr", rows=[(1, "a", 1), (2, "b", 2)]))
    later = d.stage(ChangeBatch(ORDERS, "c", rows=[(3, "c", 3)]))
    d.committer.recover(first, d.context(1))
    assert all(os.path.exists(p) for p in staged_paths(first))
    assert not [p for p in staged_paths(later) if os.path.exists(p)]
    assert sorted(read(d.uri("shop.orders"))) == [1, 2]


@pytest.mark.parametrize("threshold", [0, 2])
def test_a_change_stream_stages_no_inserts_delta_would_merge_back(tmp_path, threshold):
    """One commit per checkpoint (threshold 0): from a table's first update or delete in a
    checkpoint on, and through the next checkpoint, its inserts go to the write-ahead log
    (staged, a change stream's inserts would be written, then read back into the MERGE);
    a checkpoint of inserts only stages again after that.  With a threshold the staged
    files are added beside the MERGE: inserts are always staged."""
    from runtime.sink import WriterContext

    d = Driver(tmp_path, **{"new-keys-append-threshold": threshold})
    w = d.sink.create_writer(WriterContext(PIPELINE, 0, 1, "a1", d.state), None)

    def checkpoint(*batches: tuple[str, list]) -> int:
        for ops, rows in batches:
            w.write(ChangeBatch(ORDERS, ops, rows=rows,
                                versions=list(range(d.seq, d.seq + len(ops)))))
            d.seq += len(ops)
        d.cp += 1
        out = w.prepare_commit(d.cp)
        d.committer.commit(out, d.context())
        return sum(c["rows"] for c in out if c.get("staged"))

    assert checkpoint(("rr", [(1, "a", 1), (2, "b", 2)])) == 2
    assert checkpoint(("cc", [(3, "c", 3), (4, "d", 4)]), ("u", [(1, "a2", 10)]),
                      ("c", [(5, "e", 5)])) == (3 if threshold else 2)
    assert checkpoint(("c", [(6, "f", 6)])) == (1 if threshold else 0)
    assert checkpoint(("c", [(7, "g", 7)])) == 1
    w.close()
    assert {k: (r["name"], r["qty"]) for k, r in read(d.uri("shop.orders")).items()} == {
        1: ("a2", 10), 2: ("b", 2), 3: ("c", 3), 4: ("d", 4), 5: ("e", 5), 6: ("f", 6),
        7: ("g", 7)}
