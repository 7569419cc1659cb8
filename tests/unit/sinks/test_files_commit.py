"""Files sink: two-phase commit, replay and recovery."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pyarrow as pa

import pytest

from sink_helpers import EXT, commit_context, files_sink, listing, orders, read_part, writer_context
from sinks.files.committer import FilesCommitter


def test_nothing_is_visible_before_commit(root: Path) -> None:
    sink = files_sink(root)
    writer = sink.create_writer(writer_context(), None)
    writer.write(orders(range(100)))
    assert listing(root)[0] == []
    committables = writer.prepare_commit(1)
    visible, hidden = listing(root)
    assert visible == []
    assert hidden == [f"shop/orders/.part-p1-a1-0-0.{EXT}.inprogress"]
    assert committables == [{"kind": "file", "pending": str(root / hidden[0]),
                             "final": str(root / f"shop/orders/part-p1-a1-0-0.{EXT}"), "rows": 100}]


def test_commit_makes_files_visible_with_all_rows(root: Path) -> None:
    sink = files_sink(root)
    writer = sink.create_writer(writer_context(), None)
    writer.write(orders(range(0, 50), ts_ms=7))
    writer.write(orders(range(50, 60), ts_ms=8, op="d"))
    committables = writer.prepare_commit(1)
    assert sink.create_committer().commit(committables, commit_context()) == []
    visible, hidden = listing(root)
    assert (visible, hidden) == ([f"shop/orders/part-p1-a1-0-0.{EXT}"], [])
    table = read_part(root / visible[0])
    assert table.column_names == ["id", "customer", "amount", "qty", "op", "ts_ms", "seq"]
    assert table.column("id").to_pylist() == list(range(60))
    # seq: the source order (here stamped by the writer: the batches carry none)
    seq = table.column("seq").to_numpy()
    assert table.schema.field("seq").type == pa.int64() and (seq[1:] > seq[:-1]).all()
    assert table.column("op").to_pylist() == ["c"] * 50 + ["d"] * 10
    assert table.column("ts_ms").to_pylist() == [7] * 50 + [8] * 10


def test_commit_replayed_twice_is_a_noop(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    sink = files_sink(root)
    writer = sink.create_writer(writer_context(), None)
    writer.write(orders(range(10)))
    committables = writer.prepare_commit(1)
    committer = sink.create_committer()
    committer.commit(committables, commit_context())
    before = listing(root)
    with caplog.at_level(logging.ERROR):
        assert committer.commit(committables, commit_context()) == []
        assert sink.create_committer().commit(committables, commit_context()) == []
    assert listing(root) == before
    assert not caplog.records


def test_commit_of_vanished_file_logs_an_error_and_goes_on(
        root: Path, caplog: pytest.LogCaptureFixture) -> None:
    sink = files_sink(root)
    writer = sink.create_writer(writer_context(), None)
    writer.write(orders(range(10)))
    committables = writer.prepare_commit(1)
    os.remove(committables[0]["pending"])
    with caplog.at_level(logging.ERROR):
        assert sink.create_committer().commit(committables, commit_context()) == []
    assert "neither pending file" in caplog.text


def test_recover_commits_restored_and_removes_strays_only_of_this_pipeline(root: Path) -> None:
    sink = files_sink(root)
    writer = sink.create_writer(writer_context(attempt="run1"), None)
    writer.write(orders(range(10)))
    restored = writer.prepare_commit(1)        # checkpoint 1 completed, commit never ran
    writer.write(orders(range(10, 20)))
    writer.prepare_commit(2)                   # checkpoint 2 prepared, never completed
    writer.write(orders(range(20, 30)))
    writer._buckets[("shop.orders", str(root / "shop/orders"))].flush()  # in-progress on disk
    # ... and the process dies here: no close().
    table_dir = root / "shop" / "orders"
    others = [f".part-p1-x-run9-0-0.{EXT}.inprogress",   # pipeline "p1-x", not ours
              f".part-p2-run1-0-0.{EXT}.inprogress",     # pipeline "p2"
              f"part-p1-run0-0-0.{EXT}",                 # committed by an earlier run
              "notes.txt"]
    for name in others:
        (table_dir / name).write_bytes(b"x")
    assert len(listing(root)[1]) == 5

    committer = sink.create_committer()
    assert committer.recover(restored, commit_context(pipeline="p1")) == []
    visible, hidden = listing(root)
    assert visible == sorted(["shop/orders/notes.txt", f"shop/orders/part-p1-run0-0-0.{EXT}",
                              f"shop/orders/part-p1-run1-0-0.{EXT}"])
    assert hidden == sorted(f"shop/orders/{n}" for n in others[:2])
    committed = read_part(table_dir / f"part-p1-run1-0-0.{EXT}")
    assert committed.column("id").to_pylist() == list(range(10))
    # recovering again (a crash during recovery) changes nothing
    committer.recover(restored, commit_context(pipeline="p1"))
    assert listing(root) == (visible, hidden)


def test_fresh_start_recover_removes_strays(root: Path) -> None:
    sink = files_sink(root)
    writer = sink.create_writer(writer_context(), None)
    writer.write(orders(range(10)))
    writer.prepare_commit(1)
    sink.create_committer().recover([], commit_context())
    assert listing(root) == ([], [])


def test_close_discards_what_was_not_prepared(root: Path) -> None:
    sink = files_sink(root, rolling_file_size="1KB")
    writer = sink.create_writer(writer_context(), None)
    for i in range(5):
        writer.write(orders(range(i * 100, i * 100 + 100)))
    assert listing(root)[1]  # rolled files, pending but not prepared
    writer.close()
    assert listing(root) == ([], [])


def test_committer_ignores_unknown_kinds(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        assert FilesCommitter(str(root)).commit([{"kind": "??"}], commit_context()) == []
    assert "unknown kind" in caplog.text


def test_a_file_that_fails_to_commit_is_retried_alone_and_holds_its_partition_back(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Per-committable outcomes: the file whose rename failed (transient) is the one to retry;
    the other file is committed; the partition's _SUCCESS waits for both."""
    from runtime.sink import Outcome

    part = root / "shop/orders/dt=1"
    part.mkdir(parents=True)
    files = []
    for name in ("a", "b"):
        (part / f".part-{name}.inprogress").write_bytes(b"x")
        files.append({"kind": "file", "pending": str(part / f".part-{name}.inprogress"),
                      "final": str(part / f"part-{name}")})
    partition = {"kind": "partition", "dir": str(part), "end_ms": 10, "table": "shop.orders",
                 "part": "dt=1"}
    committer = FilesCommitter(str(root))
    rename, flaky = committer._fs.rename, [files[1]["pending"]]

    def failing_rename(src, dst):
        if src in flaky:
            flaky.remove(src)
            raise OSError(5, "Input/output error")
        return rename(src, dst)

    monkeypatch.setattr(committer._fs, "rename", failing_rename)  # the fs object is shared
    first = committer.commit_each(files + [partition], commit_context(watermark_ms=20))
    outcome = {o.committable.get("final", "partition"): o for o in first}
    assert len(first) == 3 and outcome[files[0]["final"]].outcome is Outcome.DONE
    assert outcome[files[1]["final"]].outcome is Outcome.RETRY_LATER
    assert outcome[files[1]["final"]].error.transient
    assert outcome["partition"].outcome is Outcome.RETRY_LATER  # waits for the file
    assert not (part / "_SUCCESS").exists()
    again = committer.commit_each([o.committable for o in first
                                   if o.outcome is Outcome.RETRY_LATER],
                                  commit_context(watermark_ms=20))
    assert [o.outcome for o in again] == [Outcome.DONE, Outcome.DONE]
    assert sorted(p.name for p in part.iterdir()) == ["_SUCCESS", "part-a", "part-b"]
