"""The fast paths of the Kafka connectors, without a broker: the JSON encoder's batch encoding
(quotes folded into separators, timestamps patched in place) gives the bytes of the plain
per-column encoding; tombstones; versions and event times of decoded records."""
from __future__ import annotations

import datetime as dt
import json
import random
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

from formats.codec.text import json_text
from formats.message.json import JsonEncoder
from formats.message.values import object_texts, split_utf8
from runtime.batch import ChangeBatch
from runtime.schema import Column, TableSchema
from runtime.types import T
from sinks.kafka.transactions import records_batch
from sinks.kafka.writer import _with_tombstones
from sources.kafka.reader import KafkaReader

TYPES = {"id": "BIGINT", "s": "STRING", "d": "DECIMAL(12,2)", "big": "DECIMAL(30,5)",
         "ts3": "TIMESTAMP(3)", "ts6": "TIMESTAMP(6)", "ts9": "TIMESTAMP(9)",
         "ltz": "TIMESTAMP_LTZ(3)", "day": "DATE", "tm": "TIME(6)", "b": "BYTES",
         "f": "DOUBLE", "flag": "BOOLEAN", "j": "JSON", "arr": "ARRAY<STRING>"}
SCHEMA = TableSchema("db.t", tuple(Column(n, T(t), n != "id") for n, t in TYPES.items()),
                     ("id",))
STRINGS = ["a", "é ü", "", "plain text", "\u2028", "日本"]
ESCAPED = ['q"uote', "back\\slash", "nl\nx", "\x01ctl", "tab\t"]


def _value(kind: str, i: int, rnd: random.Random, escapes: bool):
    return {
        "id": i, "s": rnd.choice(STRINGS + (ESCAPED if escapes else [])),
        "d": Decimal(rnd.randint(-10**9, 10**9)) / 100,
        "big": Decimal(rnd.randint(-10**20, 10**20)) / 10**5,
        "ts3": dt.datetime(2024, 1, 1) + dt.timedelta(milliseconds=rnd.randint(0, 10**10)),
        "ts6": dt.datetime(2024, 1, 1) + dt.timedelta(microseconds=rnd.randint(0, 10**13)),
        "ts9": dt.datetime(1999, 12, 31) + dt.timedelta(microseconds=rnd.randint(0, 10**13)),
        "ltz": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
        + dt.timedelta(milliseconds=rnd.randint(0, 10**10)),
        "day": dt.date(2020, 1, 1) + dt.timedelta(days=rnd.randint(0, 3000)),
        "tm": dt.timedelta(seconds=rnd.randint(-10**5, 10**6),
                           microseconds=rnd.randint(0, 10**6 - 1)),
        "b": bytes(rnd.randint(0, 255) for _ in range(rnd.randint(0, 5))),
        "f": rnd.choice([1.5, -0.1, 1e300, float("nan"), 3.0]),
        "flag": rnd.random() < 0.5, "j": rnd.choice(['{"a":1}', "[1,2]", "3"]),
        "arr": ["a", 'b"'],
    }[kind]


def _batch(nulls: bool, escapes: bool, ops: str = "") -> ChangeBatch:
    rnd = random.Random(7)
    rows = [tuple(None if nulls and c.nullable and rnd.random() < 0.3
                  else _value(c.name, i, rnd, escapes) for c in SCHEMA.columns)
            for i in range(40)]
    return ChangeBatch(SCHEMA, ops or "c" * len(rows), rows=rows,
                       ts_ms=list(range(1000, 1000 + len(rows))))


def _reference(rb: pa.RecordBatch, schema: TableSchema, extra=()) -> list[str]:
    """The plain encoding: each column's JSON texts (textcodec), joined per row in Python."""
    cols = [json_text(col, raw_json=c.type.kind == "JSON").to_pylist()
            for c, col in zip(schema.columns, rb.columns)]
    names = [json.dumps(c.name, ensure_ascii=False) for c in schema.columns]
    out = []
    for i in range(rb.num_rows):
        fields = [f"{n}:{col[i]}" for n, col in zip(names, cols)]
        fields += [f"{json.dumps(n)}:{t if isinstance(t, str) else t[i].as_py()}"
                   for n, t in extra]
        out.append("{" + ",".join(fields) + "}")
    return out


@pytest.mark.parametrize("nulls", [False, True])
@pytest.mark.parametrize("escapes", [False, True])
def test_batch_encoding_gives_the_plain_per_column_bytes(nulls, escapes):
    batch = _batch(nulls, escapes)
    rb = batch.arrow()
    for part in (rb, rb.slice(7, 20)):
        assert object_texts(part, SCHEMA).to_pylist() == _reference(part, SCHEMA)
        ops = pa.array(['"u"'] * part.num_rows)
        extra = [("op", '"c"'), ("n", ops)]
        assert object_texts(part, SCHEMA, extra=extra).to_pylist() == \
            _reference(part, SCHEMA, extra)
    # each column alone: every fast path on its own, next to the key column
    for c in SCHEMA.columns[1:]:
        one = SCHEMA.with_columns((SCHEMA.columns[0], c))
        part = rb.select(["id", c.name])
        assert object_texts(part, one).to_pylist() == _reference(part, one), c.name


@pytest.mark.parametrize("ops", ["c" * 40, "cu" * 20])
def test_json_encoder_values_and_keys(ops):
    batch = _batch(nulls=True, escapes=True, ops=ops)
    enc = JsonEncoder()
    values = enc.encode(batch, "t")
    assert values == [v.encode() for v in enc.encode_arrow(batch, "t").to_pylist()]
    objs = [json.loads(v) for v in values]
    assert [o["op"] for o in objs] == list(ops)
    assert [o["ts_ms"] for o in objs] == batch.ts_ms_list()
    assert [o["id"] for o in objs] == list(range(40))
    assert enc.encode_keys(batch, "t") == [b'{"id":%d}' % i for i in range(40)]
    keyless = ChangeBatch(TableSchema("db.k", (Column("v", T("INT")),)), "cc", rows=[(1,), (2,)])
    assert enc.encode_keys_arrow(keyless, "t") is None
    assert enc.encode_keys(keyless, "t") == [None, None]
    assert JsonEncoder(changelog=False).encode(keyless, "t") == [b'{"v":1}', b'{"v":2}']


def test_split_utf8_keeps_nulls():
    assert split_utf8(pa.array(["a", None, "é"])) == [b"a", None, "é".encode()]
    assert split_utf8(pa.chunked_array([["x"], ["y"]])) == [b"x", b"y"]


def test_tombstones_follow_deletes_with_keys():
    keys = pa.array(["k0", "k1", None, "k3"])
    values = pa.array(["v0", "v1", "v2", "v3"])
    k, v, ts = _with_tombstones("cdcd", keys, values, pa.array([1, 2, 3, 4], pa.int64()))
    assert k.to_pylist() == ["k0", "k1", "k1", None, "k3", "k3"]
    assert v.to_pylist() == ["v0", "v1", None, "v2", "v3", None]
    assert ts.to_pylist() == [1, 2, 2, 3, 4, 4]
    # the write-ahead log keeps them as sent
    rb = records_batch("top", k, v, ts).arrow()
    assert rb.column(2).to_pylist()[2] is None and rb.column(0).to_pylist() == ["top"] * 6


def test_versions_and_message_times_of_decoded_records():
    offsets = np.array([10, 11, 12, 13], np.int64)
    times = np.array([100, 101, 102, 103], np.int64)
    schema = TableSchema("db.t", (Column("id", T("INT"), False),), ("id",))

    def batch(n):
        return ChangeBatch(schema, "c" * n, rows=[(i,) for i in range(n)])

    whole = KafkaReader._versioned(batch(4), [0, 1, 2, 3], offsets, times)
    assert list(whole.versions) == [10 << 10, 11 << 10, 12 << 10, 13 << 10]
    assert whole.ts_ms_list() == [100, 101, 102, 103]
    # record 2 was bad; record 1 held two events (Canal): increasing low bits
    some = KafkaReader._versioned(batch(4), [0, 1, 1, 3], offsets, times)
    assert list(some.versions) == [10 << 10, 11 << 10, (11 << 10) + 1, 13 << 10]
    assert some.ts_ms_list() == [100, 101, 101, 103]
    payload_time = KafkaReader._versioned(batch(2), [0, 3], offsets, None)
    assert list(payload_time.versions) == [10 << 10, 13 << 10]
