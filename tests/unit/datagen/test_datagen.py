"""The datagen source, driven directly through its reader and enumerator."""
from __future__ import annotations

import time

import pyarrow as pa
import pytest
from pydantic import ValidationError

from runtime.deadletter import DeadLetterQueue
from runtime.source import EnumeratorContext, InputStatus, ReaderContext, ReaderOutput
from sources.datagen.config import DatagenConfig
from sources.datagen.source import DatagenSource


class Ctx(EnumeratorContext):
    def __init__(self, parallelism=1):
        self.parallelism = parallelism
        self.assigned: dict[int, list] = {}
        self.no_more: set[int] = set()

    def assign_splits(self, assignment):
        for k, v in assignment.items():
            self.assigned.setdefault(k, []).extend(v)

    def signal_no_more_splits(self, subtask):
        self.no_more.add(subtask)

    def registered_readers(self):
        return [0]

    def schedule(self, fn, interval_s):
        pass


class RCtx(ReaderContext):
    def __init__(self):
        self.subtask, self.parallelism, self.dead_letter = 0, 1, DeadLetterQueue()
        self.requests = 0

    def send_split_request(self):
        self.requests += 1

    def send_event_to_enumerator(self, event):
        pass


class Out(ReaderOutput):
    def __init__(self):
        self.batches = []

    def collect(self, batch, split_id):
        self.batches.append(batch)

    def collect_schema_change(self, change, split_id):
        pass

    def split_finished(self, split_id):
        pass


def source(**opts):
    base = {"rows": 1000, "batch-size": 100, "event-time-start": "2026-11-24T00:00:00Z"}
    return DatagenSource(DatagenConfig.model_validate({**base, **opts}))


def drain(src, splits=None, stop_after=None):
    """Read every split to the end (or ``stop_after`` batches); returns (events, reader)."""
    ectx = Ctx()
    enum = src.create_enumerator(ectx, None)
    reader = src.create_reader(RCtx())
    reader.add_splits(splits if splits is not None else _all(enum, ectx))
    reader.notify_no_more_splits()
    out = Out()
    while reader.poll_next(out) is not InputStatus.END_OF_INPUT:
        if stop_after is not None and len(out.batches) >= stop_after:
            break
    events = [(b.table, op) + tuple(row) for b in out.batches for op, row in zip(b.ops, b.rows())]
    return events, reader


def _all(enum, ectx):
    enum.handle_split_request(0)
    return ectx.assigned.pop(0)


def test_deterministic_by_seed():
    a, _ = drain(source(seed=7))
    b, _ = drain(source(seed=7))
    c, _ = drain(source(seed=8))
    assert a == b
    assert a != c


def test_unique_primary_keys_for_inserts():
    events, _ = drain(source(rows=5000, splits=3))
    ids = [e[2] for e in events]
    assert len(ids) == 5000 and len(set(ids)) == 5000


def test_updates_and_deletes_touch_only_live_rows():
    events, _ = drain(source(rows=20000, splits=2, **{"update-ratio": 0.3, "delete-ratio": 0.2}))
    live: set = set()
    counts = {"c": 0, "u": 0, "d": 0}
    for table, op, key, *rest in events:
        counts[op] += 1
        if op == "c":
            assert key not in live
            live.add(key)
        elif op == "u":
            assert key in live
        else:
            assert key in live
            assert all(v is None for v in rest), "deletes carry only the key"
            live.remove(key)
    assert counts["u"] > 4000 and counts["d"] > 2500


def test_restore_from_snapshot_continues_exactly():
    full, _ = drain(source(rows=3000, **{"update-ratio": 0.2, "delete-ratio": 0.1}))
    src = source(rows=3000, **{"update-ratio": 0.2, "delete-ratio": 0.1})
    first, reader = drain(src, stop_after=7)
    state = [s.to_dict() for s in reader.snapshot_state(1)]
    restored = [src.split_type.from_dict(d) for d in state]
    rest, _ = drain(src, splits=restored)
    assert first + rest == full


def test_every_logical_type_generates():
    events, _ = drain(source(tables=["all_types"], rows=300))
    src = source(tables=["all_types"], rows=10)
    schema = src.schemas()[0]
    assert len(events) == 300
    assert len(schema.columns) == 22
    _, reader = drain(src)


def test_custom_columns():
    src = source(columns={"sku": "VARCHAR(12)", "price": "DECIMAL(8,2)", "at": "TIMESTAMP(3)"},
                 table="shop.items", rows=50)
    events, _ = drain(src)
    schema = src.schemas()[0]
    assert schema.table == "shop.items" and schema.primary_key == ("sku",)
    assert len({e[2] for e in events}) == 50


def test_rows_per_second_is_respected():
    src = source(rows=400, **{"rows-per-second": 2000, "batch-size": 50})
    t = time.monotonic()
    events, _ = drain(src)
    assert len(events) == 400
    assert time.monotonic() - t >= 0.15


def test_bad_options_are_rejected():
    with pytest.raises(ValidationError, match="unknown table"):
        DatagenConfig.model_validate({"tables": ["ordres"]})
    with pytest.raises(ValidationError, match="must not exceed 1"):
        DatagenConfig.model_validate({"update-ratio": 0.7, "delete-ratio": 0.5})
    with pytest.raises(ValidationError, match="unknown type"):
        DatagenConfig.model_validate({"columns": {"a": "BIGNUM"}})


def test_arrow_batches_match_schema():
    src = source(tables=["orders", "customers", "all_types"], rows=100)
    ectx = Ctx()
    enum = src.create_enumerator(ectx, None)
    reader = src.create_reader(RCtx())
    reader.add_splits(_all(enum, ectx))
    out = Out()
    reader.poll_next(out)
    for b in out.batches:
        assert b.arrow().schema == b.schema.arrow_schema
        assert isinstance(b.changelog_table(), pa.Table)
