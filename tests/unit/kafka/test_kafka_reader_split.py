"""The Kafka reader decodes the runs of one topic in one call and hands each run (each
split) what decoding it alone would have given: batches cut where the runs meet, schema
changes and bad messages to the run they belong to, indexes counted from the run's start."""
from __future__ import annotations

import numpy as np

from formats.base import Decoded
from runtime.batch import ChangeBatch
from runtime.schema import Column, SchemaChange, TableSchema
from runtime.types import T
from sources.kafka.reader import split_decoded

SCHEMA = TableSchema("db.t", (Column("id", T("BIGINT"), False),), ("id",))


def batch(ids: list[int]) -> ChangeBatch:
    return ChangeBatch.of_rows(SCHEMA, [(i,) for i in ids], op="c", ts_ms=[10 * i for i in ids])


def test_batches_are_cut_where_runs_meet_and_the_rest_goes_to_its_run():
    # runs of 3, 2 and 4 messages; message 4 is bad; a schema change before message 6;
    # messages 7 and 8 are two events each (Canal)
    change = SchemaChange("add_column", "db.t", SCHEMA, {"column": "id"})
    decoded = Decoded([batch([0, 1, 2, 3]), batch([5]), change, batch([6, 7, 7, 8, 8])],
                      [[0, 1, 2, 3], [5], [6], [6, 7, 7, 8, 8]], [(4, "bad")])
    runs = split_decoded(decoded, np.array([0, 3, 5, 9]))
    assert [r.bad for r in runs] == [[], [(1, "bad")], []]
    assert [[e.ts_ms_list() if isinstance(e, ChangeBatch) else e for e in r.elements]
            for r in runs] == [[[0, 10, 20]], [[30]], [[50], change, [60, 70, 70, 80, 80]]]
    assert [r.indexes for r in runs] == [[[0, 1, 2]], [[0]], [[0], [1], [1, 2, 2, 3, 3]]]
    assert runs[2].elements[0] is decoded.elements[1]  # whole: not copied
    assert [row[0] for row in runs[1].elements[0].rows()] == [3]


def test_one_run_keeps_what_the_decoder_made():
    decoded = Decoded([batch([0, 1])], [[0, 1]], [])
    assert split_decoded(decoded, np.array([0, 2])) == [decoded]


def test_a_whole_take_as_a_range_splits_into_ranges():
    """The json fast path gives a whole take's indexes as a range (no int per message): each
    run gets its own range, and the reader versions it as the list it stands for."""
    from sources.kafka.reader import KafkaReader

    decoded = Decoded([batch(list(range(9)))], [range(9)], [])
    runs = split_decoded(decoded, np.array([0, 3, 5, 9]))
    assert [r.indexes for r in runs] == [[range(3)], [range(2)], [range(4)]]
    assert [list(r.indexes[0]) for r in runs] == [[0, 1, 2], [0, 1], [0, 1, 2, 3]]
    assert [row[0] for row in runs[2].elements[0].rows()] == [5, 6, 7, 8]
    offsets = np.array([10, 11, 12, 13], dtype=np.int64)
    for idx in (range(4), [0, 1, 2, 3]):
        b = KafkaReader._versioned(runs[2].elements[0], idx, offsets, None)
        assert b.versions.tolist() == (offsets << 10).tolist()
    b = KafkaReader._versioned(batch([1, 3]), range(1, 4, 2), offsets, None)
    assert b.versions.tolist() == [11 << 10, 13 << 10]
