"""The delta sink against real Delta tables on local folders, read back with deltalake and
Polars: current state by key (MERGE), change rows, one commit per checkpoint and table with
its application transaction, replays, types."""
from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal

import pytest

pytest.importorskip("deltalake")
pytest.importorskip("polars")

from deltalake import DeltaTable  # noqa: E402

from runtime.batch import ChangeBatch  # noqa: E402
from runtime.errors import TerminalError  # noqa: E402
from tests.integration.delta.helpers import (PIPELINE, Driver, checkpoint_commits,  # noqa: E402
                                             commits, read, rows_of, schema)

pytestmark = [pytest.mark.integration, pytest.mark.delta]

#: The write-ahead-log path for inserts too (what these tests guard: the committer writing
#: the data files; see test_delta_staged.py for the staged ones).
NOT_STAGED = {"stage-data-files": False}
ORDERS = schema("shop.orders", {"id": "BIGINT", "name": "STRING", "qty": "INT"})


@pytest.mark.parametrize("stage", [True, False])
def test_upserts_keep_each_tables_current_state_one_merge_per_checkpoint(tmp_path, stage):
    """Staged (snapshot reads and inserts written as data files by the writers): checkpoint 1
    adds its files as they are (creating the table), checkpoint 2's staged insert collides
    with its updates of key 5 and is merged, checkpoint 3's insert of key 2 joins the MERGE
    of the checkpoint's deletes (not staged: the checkpoint before had changes besides
    inserts; one commit per table and checkpoint).
    Not staged: one commit per checkpoint (an append creates the table)."""
    d = Driver(tmp_path, **{"stage-data-files": stage})
    d.checkpoint(ChangeBatch(ORDERS, "rrrr", rows=[(1, "a", 1), (2, "b", 2), (3, "c", 3),
                                                  (4, "d", 4)]))
    # an insert (staged: the first batch of the checkpoint has nothing else), then updates,
    # deletes, a key change (delete + insert), more changes of the inserted key
    staged = d.stage(ChangeBatch(ORDERS, "c", rows=[(5, "e", 5)]),
                     ChangeBatch(ORDERS, "uddcuu", rows=[
                         (1, "a2", 10), (2, "b", 2), (3, "c", 3), (30, "c", 3), (5, "e2", 50),
                         (5, "e3", 51)]))
    d.committer.commit(staged, d.context())
    merged = [f["path"] for c in staged for f in c.get("staged", ())]
    assert len(merged) == stage
    assert not [p for p in merged if os.path.exists(p)], "a merged staged file left behind"
    d.checkpoint(ChangeBatch(ORDERS, "dcd", rows=[(4, "d", 4), (2, "b-again", 20),
                                                  (1, "a2", 10)]))
    uri = d.uri("shop.orders")
    assert read(uri) == {2: {"id": 2, "name": "b-again", "qty": 20},
                         5: {"id": 5, "name": "e3", "qty": 51},
                         30: {"id": 30, "name": "c", "qty": 3}}
    app = f"hub:{PIPELINE}:delta:job-1"
    assert checkpoint_commits(uri) == [1, 2, 3]
    assert [c["operation"] for c in commits(uri)] == [
        "CREATE TABLE" if stage else "WRITE", "MERGE", "MERGE"]
    assert DeltaTable(uri).transaction_version(app) == 3
    staging = tmp_path / "state" / "wal" / PIPELINE / "delta.staged"
    assert not staging.exists() or not list(staging.iterdir()), "side records left"


def test_a_replayed_checkpoint_is_never_applied_twice(tmp_path):
    """After a crash between a table's commit and the deletion of the checkpoint's segments,
    the restored committer commits the same committables again: the table's application
    transaction says it holds them, so nothing is written (an append would duplicate)."""
    d = Driver(tmp_path, **{"write-mode": "append"})
    d.checkpoint(ChangeBatch(ORDERS, "cc", rows=[(1, "a", 1), (2, "b", 2)]))
    staged = d.stage(ChangeBatch(ORDERS, "ud", rows=[(1, "a2", 1), (2, "b", 2)]))
    segments = [c["segment"] for c in staged]
    copies = [s + ".copy" for s in segments]
    import shutil

    for s, c in zip(segments, copies):
        shutil.copytree(s, c)
    d.committer.commit(staged, d.context())
    for s, c in zip(segments, copies):  # the segments as a crash before their deletion left them
        shutil.move(c, s)
    again = d.sink.create_committer()
    again.recover(staged, d.context())
    uri = d.uri("shop.orders")
    assert len(rows_of(uri)) == 4
    assert checkpoint_commits(uri) == [1, 2]
    assert not any(__import__("os").path.exists(s) for s in segments)


def test_a_fresh_job_is_not_taken_for_the_earlier_one(tmp_path):
    """Checkpoint ids restart at a fresh start: the job id in the app id keeps its checkpoint
    1 from being skipped as the earlier job's."""
    d = Driver(tmp_path, retention="0s")
    d.checkpoint(ChangeBatch(ORDERS, "c", rows=[(1, "a", 1)]))
    fresh = Driver(tmp_path, job="job-2")
    fresh.checkpoint(ChangeBatch(ORDERS, "c", rows=[(2, "b", 2)]))
    assert sorted(read(d.uri("shop.orders"))) == [1, 2]
    found = fresh.committer.existing_output(PIPELINE)
    assert [f.split(" (")[0] for f in found] == [d.uri("shop.orders")] * 2
    assert "checkpoint 1 of job job-1" in found[0] and "checkpoint 1 of job job-2" in found[1]
    assert fresh.committer.existing_output("other-pipeline") == []
    # after maintenance cleaned the log up to a checkpoint, the checkpoint still tells
    d.committer.maintain(["shop.orders"], d.context())
    assert "hub.app" not in str(commits(d.uri("shop.orders")))
    assert len(fresh.committer.existing_output(PIPELINE)) == 2


def test_append_mode_and_keyless_tables_get_change_rows_in_source_order(tmp_path):
    d = Driver(tmp_path)
    logs = schema("shop.log", {"line": "STRING", "n": "INT"}, key=())
    d.checkpoint(ChangeBatch(logs, "ccd", rows=[("x", 1), ("x", 1), ("y", 2)]),
                 ChangeBatch(ORDERS, "c", rows=[(1, "a", 1)]))
    d.checkpoint(ChangeBatch(logs, "u", rows=[("z", 3)]))
    rows = rows_of(d.uri("shop.log"))
    assert sorted((r["op"], r["line"], r["n"]) for r in rows) == [
        ("c", "x", 1), ("c", "x", 1), ("d", "y", 2), ("u", "z", 3)]
    seqs = sorted(r["seq"] for r in rows)
    assert len(set(seqs)) == 4 and all(r["ts_ms"] == 0 for r in rows)
    assert [r["op"] for r in sorted(rows, key=lambda r: r["seq"])] == ["c", "c", "d", "u"]
    assert read(d.uri("shop.orders")) == {1: {"id": 1, "name": "a", "qty": 1}}

    a = Driver(tmp_path / "append", **{"write-mode": "append"})
    a.checkpoint(ChangeBatch(ORDERS, "cuud", rows=[(1, "a", 1), (1, "b", 1), (1, "c", 1),
                                                   (1, "c", 1)]))
    rows = sorted(rows_of(a.uri("shop.orders")), key=lambda r: r["seq"])
    assert [(r["op"], r["name"]) for r in rows] == [("c", "a"), ("u", "b"), ("u", "c"),
                                                    ("d", "c")]


def test_a_column_named_like_a_change_column_stops_append_mode(tmp_path):
    d = Driver(tmp_path, **{"write-mode": "append"})
    s = schema("shop.t", {"id": "BIGINT", "op": "STRING"})
    with pytest.raises(TerminalError, match=r"table shop.t: column 'op'"):
        d.checkpoint(ChangeBatch(s, "c", rows=[(1, "x")]))


ALL_TYPES = schema("shop.types", {
    "id": "BIGINT", "b": "BOOLEAN", "i8": "TINYINT", "i16": "SMALLINT", "i32": "INT",
    "u64": "DECIMAL(20,0)", "dec": "DECIMAL(38,10)", "f": "FLOAT", "d": "DOUBLE",
    "s": "VARCHAR(20)", "j": "JSON", "bin": "BYTES", "day": "DATE", "t": "TIME(6)",
    "ts": "TIMESTAMP(6)", "ltz": "TIMESTAMP_LTZ(6)", "tags": "ARRAY<STRING>"})
#: A row of ALL_TYPES with each type's edge values.
ALL_TYPES_ROW = (1, True, -128, -32768, -2**31, Decimal(2**64 - 1),
                 Decimal("1234567890123456789012345678.0123456789"), 1.5, -2.25, "ünï",
                 '{"a": [1]}', b"\x00\xff\x00", dt.date(1, 1, 1),
                 dt.timedelta(hours=-838, microseconds=-1),
                 dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
                 dt.datetime(2026, 11, 24, 9, 30, 0, 5, tzinfo=dt.timezone.utc), ["x", "y"])


def test_every_logical_type_reads_back_in_deltalake_and_polars(tmp_path):
    row = ALL_TYPES_ROW
    nulls = (2,) + (None,) * (len(row) - 1)
    d = Driver(tmp_path)
    d.checkpoint(ChangeBatch(ALL_TYPES, "rr", rows=[row, nulls]))
    d.checkpoint(ChangeBatch(ALL_TYPES, "u", rows=[(2,) + row[1:]]))  # through MERGE too
    uri = d.uri("shop.types")
    got = read(uri)
    for key in (1, 2):
        r = got[key]
        assert r["t"] == -(838 * 3600 * 10**6 + 1)  # TIME: signed microseconds
        assert r["ltz"] == row[15] and r["ltz"].utcoffset() == dt.timedelta(0)
        assert r["ts"] == row[14] and r["ts"].tzinfo is None
        assert {k: v for k, v in r.items() if k not in ("id", "t", "ltz")} == {
            k: v for k, v in zip(ALL_TYPES.names, row) if k not in ("id", "t", "ltz")}
    fields = {f.name: f.type for f in DeltaTable(uri).schema().fields}
    assert str(fields["ts"]) == 'PrimitiveType("timestamp_ntz")'
    assert str(fields["ltz"]) == 'PrimitiveType("timestamp")'
    assert str(fields["u64"]) == 'PrimitiveType("decimal(20,0)")'
    assert str(fields["t"]) == 'PrimitiveType("long")'


HOSTILE = schema('"my shop"."Ördérs 1"', {"Id": "BIGINT", "my col": "STRING",
                                         'we"ird`': "INT"}, key=("Id", "my col"))


def test_odd_names_merge_by_a_composite_key_and_unsafe_ones_are_refused(tmp_path):
    d = Driver(tmp_path)
    d.checkpoint(ChangeBatch(HOSTILE, "cc", rows=[(1, "a", 1), (1, "b", 2)]))
    d.checkpoint(ChangeBatch(HOSTILE, "ud", rows=[(1, "a", 10), (1, "b", 2)]))
    uri = d.uri(HOSTILE.table)
    assert uri == str(tmp_path / "lake" / "my shop" / "Ördérs 1")
    # deltalake only: Polars 2.1 can't read a Delta table whose path holds a blank or a
    # non-ASCII letter (it opens the percent-encoded file names deltalake lists)
    assert {(r["Id"], r["my col"]): r for r in rows_of(uri)} == {
        (1, "a"): {"Id": 1, "my col": "a", 'we"ird`': 10}}
    # deltalake decodes percent-escapes in paths: a name that needs one would land elsewhere
    unsafe = schema('shop."../x"', {"id": "BIGINT"})
    with pytest.raises(TerminalError, match="has no table path.*route the table"):
        d.checkpoint(ChangeBatch(unsafe, "c", rows=[(1,)]))
    assert sorted(p.name for p in (tmp_path / "lake").iterdir()) == ["my shop"]


@pytest.mark.parametrize("key", [("id",), ("id", "name")])
def test_inserts_of_new_keys_are_appended_and_any_known_key_takes_the_merge(tmp_path, key):
    """The fast path (append instead of MERGE) applies only where no key is in the table:
    a delete and re-insert of a key in one checkpoint collapses to an insert of a key the
    table holds, which must replace the row, not add a second one."""
    s = schema("shop.orders", {"id": "BIGINT", "name": "STRING", "qty": "INT"}, key=key)
    d = Driver(tmp_path, **NOT_STAGED)
    d.checkpoint(ChangeBatch(s, "cc", rows=[(1, "a", 1), (2, "b", 2)]))
    d.checkpoint(ChangeBatch(s, "rc", rows=[(10, "x", 1), (11, "y", 2)]))  # new keys
    d.checkpoint(ChangeBatch(s, "dcc", rows=[(2, "b", 2), (2, "b", 20), (3, "c", 3)]))
    uri = d.uri("shop.orders")
    assert [c["operation"] for c in commits(uri)] == ["WRITE", "WRITE", "MERGE"]
    got = read(uri, key=key)
    assert sorted((r["id"], r["name"], r["qty"]) for r in got.values()) == [
        (1, "a", 1), (2, "b", 20), (3, "c", 3), (10, "x", 1), (11, "y", 2)]
    assert checkpoint_commits(uri) == [1, 2, 3]


@pytest.mark.parametrize("mode", ["upsert", "append"])
def test_a_value_delta_cant_hold_stops_a_streamed_append_with_its_own_error(tmp_path, mode):
    """Appends stream the rows from the segments into deltalake: an error made while
    shaping a piece (a timestamp with nanoseconds, in the second batch) comes out as the
    hub's own one-line error, not deltalake's text about a failed stream, and nothing is
    committed -- whether the append creates the table or adds to it."""
    import pyarrow as pa

    from runtime.errors import BadRecordError

    s = schema("shop.ts", {"id": "BIGINT", "at": "TIMESTAMP(9)"})

    def batch(ids: list[int], nanos: int) -> ChangeBatch:
        arrow = pa.RecordBatch.from_arrays(
            [pa.array(ids, pa.int64()),
             pa.array([1_700_000_000_000_000_000 + i * 1000 + nanos for i in ids],
                      pa.timestamp("ns"))], schema=s.arrow_schema)
        return ChangeBatch(s, "c" * len(ids), arrow=arrow)

    d = Driver(tmp_path, **{"write-mode": mode})
    uri = d.uri("shop.ts")
    with pytest.raises(BadRecordError, match=r"table shop.ts: column 'at'.*beyond microseconds"):
        d.checkpoint(batch([1, 2], 0), batch([3], 7))
    assert not DeltaTable.is_deltatable(uri)
    d.checkpoint(batch([4], 0))  # a good checkpoint creates the table
    with pytest.raises(BadRecordError, match=r"column 'at'"):
        d.checkpoint(batch([5], 0), batch([6], 1))
    assert sorted(r["id"] for r in rows_of(uri)) == [4]


@pytest.mark.parametrize("types, key", [
    ({"id": "BIGINT", "name": "STRING", "qty": "INT"}, ("id",)),
    ({"id": "STRING", "name": "STRING", "qty": "INT"}, ("id",)),        # a string key range
    ({"id": "DATE", "name": "STRING", "qty": "INT"}, ("id",)),          # no range: held whole
    ({"id": "BIGINT", "name": "STRING", "qty": "INT"}, ("id", "name")),
])
def test_many_new_keys_are_appended_after_a_merge_of_the_other_changes(tmp_path, types, key):
    """With at least new-keys-append-threshold inserts of keys the table lacks, a
    checkpoint is a MERGE of its other changes (updates, deletes, an insert of a key the
    table holds) then an append of the new keys: two commits carrying the checkpoint, the
    MERGE's source without the new keys, the table's state as one MERGE would leave it."""
    import datetime

    def k(i: int):
        return {"BIGINT": i, "STRING": f"k{i:03d}",
                "DATE": datetime.date(2024, 1, 1) + datetime.timedelta(days=i)}[types["id"]]

    s = schema("shop.orders", types, key=key)
    d = Driver(tmp_path, **{"new-keys-append-threshold": 2}, **NOT_STAGED)
    d.checkpoint(ChangeBatch(s, "rrrr", rows=[(k(1), "a", 1), (k(2), "b", 2), (k(3), "c", 3),
                                              (k(4), "d", 4)]))
    d.checkpoint(ChangeBatch(s, "cucdcdc", rows=[
        (k(10), "x", 10), (k(1), "a", 11), (k(3), "c", 30), (k(2), "b", 2), (k(11), "y", 11),
        (k(4), "d", 4), (k(4), "d", 40)]))
    uri = d.uri("shop.orders")
    got = read(uri, key=key)
    assert sorted((r["id"], r["name"], r["qty"]) for r in got.values()) == sorted([
        (k(1), "a", 11), (k(3), "c", 30), (k(4), "d", 40), (k(10), "x", 10),
        (k(11), "y", 11)])
    history = commits(uri)
    assert [c["operation"] for c in history] == ["WRITE", "MERGE", "WRITE"]
    m = history[1]["operationMetrics"]
    # u 1, c 3 (held: an update), d 2, c 4 (deleted and re-inserted: held); not 10 and 11
    assert (m["num_source_rows"], m["num_target_rows_inserted"]) == (4, 0)
    assert history[1]["hub.part"] == "merge" and "hub.part" not in history[2]
    assert checkpoint_commits(uri) == [1, 2, 2]
    app = f"hub:{PIPELINE}:delta:job-1"
    t = DeltaTable(uri)
    assert t.transaction_version(app) == 2 and t.transaction_version(app + "#merge") == 2
    # a third checkpoint below the threshold is one MERGE again
    d.checkpoint(ChangeBatch(s, "cu", rows=[(k(12), "z", 12), (k(10), "x", 100)]))
    assert [c["operation"] for c in commits(uri)][3:] == ["MERGE"]
    assert sorted(r["qty"] for r in read(uri, key=key).values()) == [11, 11, 12, 30, 40, 100]


def test_a_replay_after_a_crash_between_the_merge_and_the_append_appends_only(tmp_path,
                                                                            monkeypatch):
    """A crash after the MERGE of a two-commit checkpoint, before its append: the restored
    committer replays the checkpoint, finds the MERGE's own application transaction and
    appends the new keys only -- no second MERGE, no key twice, one append."""
    import sinks.delta.committer as committer_module

    class Crash(Exception):
        pass

    def crash_point(point: str, checkpoint: int) -> None:
        if point == "delta-part-committed":
            raise Crash(point)

    d = Driver(tmp_path, **{"new-keys-append-threshold": 2}, **NOT_STAGED)
    d.checkpoint(ChangeBatch(ORDERS, "rr", rows=[(1, "a", 1), (2, "b", 2)]))
    staged = d.stage(ChangeBatch(ORDERS, "ucdc", rows=[(1, "a", 10), (5, "e", 5), (2, "b", 2),
                                                       (6, "f", 6)]))
    with monkeypatch.context() as m:
        m.setattr(committer_module, "crash_point", crash_point)
        with pytest.raises(Crash):
            d.committer.commit(staged, d.context())
    uri = d.uri("shop.orders")
    assert [c["operation"] for c in commits(uri)] == ["WRITE", "MERGE"]
    again = d.sink.create_committer()
    again.recover(staged, d.context())
    again.commit(staged, d.context())  # once more: a no-op
    assert read(uri) == {1: {"id": 1, "name": "a", "qty": 10},
                         5: {"id": 5, "name": "e", "qty": 5},
                         6: {"id": 6, "name": "f", "qty": 6}}
    assert [c["operation"] for c in commits(uri)] == ["WRITE", "MERGE", "WRITE"]
    assert checkpoint_commits(uri) == [1, 2, 2]
    assert d.sink.existing_output(PIPELINE) == [
        f"{uri} (Delta table: checkpoint 2 of job job-1)"]
