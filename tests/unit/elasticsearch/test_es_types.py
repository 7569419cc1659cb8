"""Elasticsearch sink: options, mappings, bulk lines and the writer's log, without a server."""
from __future__ import annotations

import datetime
import json
import os
import re
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest
from pydantic import ValidationError

from runtime.batch import ChangeBatch
from runtime.schema import Column, TableSchema
from runtime.sink import CommitContext, WriterContext
from runtime.types import T
from runtime.wal import WriteAheadLog, wal_root
from sinks.elasticsearch.config import ElasticsearchSinkConfig
from sinks.elasticsearch.sink import ElasticsearchSink
from sinks.elasticsearch.types import (body_bytes, body_chunks, bulk_lines, document_ids,
                                       index_mapping)

ALL = TableSchema("Shop.Items", (
    Column("id", T("BIGINT"), False), Column("name", T("STRING")),
    Column("price", T("DECIMAL(10,2)")), Column("big", T("DECIMAL(30,0)")),
    Column("at", T("TIMESTAMP(6)")), Column("at_utc", T("TIMESTAMP_LTZ(6)")),
    Column("day", T("DATE")), Column("doc", T("JSON")), Column("raw", T("BYTES")),
    Column("score", T("DOUBLE")), Column("ok", T("BOOLEAN")), Column("dur", T("TIME(6)")),
    Column("tags", T("ARRAY<STRING>"))), ("id",))

ROW = (7, 'say "hi"\n\tback\\slash \x01', Decimal("12.30"), Decimal("123456789012345678901234"),
       datetime.datetime(2024, 5, 1, 12, 30, 0, 123456),
       datetime.datetime(2024, 5, 1, 12, 30, 0, 1, tzinfo=datetime.timezone.utc),
       datetime.date(1969, 12, 31), '{"a": [1, {"b": null}]}', b"\x00\xff", float("nan"), True,
       datetime.timedelta(seconds=-1, microseconds=5), ["x", "y"])
NULLS = (8,) + (None,) * 12


def config(**kw) -> ElasticsearchSinkConfig:
    return ElasticsearchSinkConfig.model_validate({k.replace("_", "-"): v for k, v in kw.items()})


def test_index_template_and_names():
    assert config().index_for("Shop.Orders") == "shop_orders"
    assert config(index="cdc-{table}").index_for("a.b c") == "cdc-b_c"
    with pytest.raises(ValidationError, match="unknown placeholder"):
        config(index="{schema}_{table}")
    with pytest.raises(ValidationError, match="lower case"):
        config(index="Orders")


def test_index_names_from_hostile_table_names():
    from runtime.errors import ConfigError

    c = config(index="{table}")
    for table, index in [("s.Orders", "orders"), ("s.it's", "it_s"), ("s.a b;c", "a_b_c"),
                         ("s.ünï", "n_"), ("s._x", "x"), ("s.+-x", "x"), ("s.q*?", "q__")]:
        assert c.index_for(table) == index, table
    assert c.index_source("s.Orders") != c.index_source("s.orders")  # a collision: refused
    assert config(index="{table}").index_source("a.t") == config(
        index="{table}").index_source("b.t")  # shards: a deliberate merge
    for bad in ("s.__", "s.-+_", "s." + "x" * 256):
        start = re.escape(bad[:4])
        with pytest.raises(ConfigError, match=rf"^index: elasticsearch: table '{start}.*gives "
                                              r"no valid index name"):
            c.index_for(bad)


def test_mapping_follows_the_schema_and_options():
    props = index_mapping(ALL)["properties"]
    assert props["price"] == {"type": "scaled_float", "scaling_factor": 100}
    assert props["big"] == {"type": "double"}  # 10^30 does not fit a scaled long
    assert props["at"] == {"type": "date_nanos"} and props["day"]["format"] == "strict_date"
    assert props["doc"] == {"type": "object"} and props["raw"] == {"type": "binary"}
    assert props["tags"]["type"] == "text" and props["dur"] == {"type": "long"}
    other = index_mapping(ALL, decimal="keyword", timestamp="date", json_mapping="flattened")
    assert other["properties"]["price"] == {"type": "keyword"}
    assert other["properties"]["at"] == {"type": "date"}
    assert other["properties"]["doc"] == {"type": "flattened"}


def _lines(schema, rows, ops, versions, **kw):
    batch = ChangeBatch(schema, ops, rows=rows)
    table = pa.Table.from_batches([batch.arrow()])
    ids = document_ids(table, schema, "_")
    deletes = np.array([op == "d" for op in ops])
    return bulk_lines(table, schema, deletes, np.array(versions), "idx", ids, "external",
                      kw.get("decimal", "scaled_float"), "date_nanos", kw.get("json", "object"))


def test_bulk_lines_are_exact_json():
    lines = _lines(ALL, [ROW, NULLS, NULLS], "cud", [5, 6, 9])
    text = body_bytes(lines, 0, len(lines)).decode()
    parsed = [json.loads(line) for line in text.splitlines()]
    assert parsed[0] == {"index": {"_index": "idx", "_id": "7", "version": 5,
                                   "version_type": "external"}}
    doc = parsed[1]
    assert doc["name"] == ROW[1]  # quotes, newline, tab, backslash, control character
    assert doc["price"] == "12.30" and doc["big"] == "123456789012345678901234"
    assert doc["at"] == "2024-05-01T12:30:00.123456"
    assert doc["at_utc"] == "2024-05-01T12:30:00.000001Z"
    assert doc["day"] == "1969-12-31" and doc["doc"] == {"a": [1, {"b": None}]}
    assert doc["raw"] == "AP8=" and doc["score"] is None and doc["ok"] is True
    assert doc["dur"] == -999995 and doc["tags"] == ["x", "y"]
    assert parsed[3] == {k: None for k in doc} | {"id": 8}
    assert parsed[4] == {"delete": {"_index": "idx", "_id": "8", "version": 9,
                                    "version_type": "external"}}
    assert len(parsed) == 5


def test_json_as_keyword_is_a_string():
    lines = _lines(ALL, [ROW], "c", [1], json="keyword")
    doc = json.loads(body_bytes(lines, 0, 1).decode().splitlines()[1])
    assert doc["doc"] == ROW[7]


def test_composite_ids_and_chunks():
    schema = TableSchema("a.b", (Column("k1", T("STRING"), False), Column("k2", T("INT"), False),
                                 Column("v", T("STRING"))), ("k1", "k2"))
    rows = [(f"a{i}", i, "x" * (i * 10)) for i in range(20)]
    lines = _lines(schema, rows, "c" * 20, list(range(20)))
    first = json.loads(body_bytes(lines, 0, 1).decode().splitlines()[0])
    assert first["index"]["_id"] == "a0_0"
    chunks = body_chunks(lines, max_actions=6, max_bytes=600)
    assert chunks[0][0] == 0 and chunks[-1][1] == 20
    assert all(b == c for (_, b), (c, _) in zip(chunks, chunks[1:]))
    for start, stop in chunks:
        assert stop - start <= 6
        assert len(body_bytes(lines, start, stop)) <= 600 or stop - start == 1


def test_exactly_once_writer_logs_and_recover_discards_strays(tmp_path):
    """A segment of a checkpoint that never completed is removed by the committer's recover
    (which needs no server for that), before any writer exists."""
    sink = ElasticsearchSink(config(hosts=["http://127.0.0.1:9"]))
    ctx = WriterContext("p", 0, 1, "run2", str(tmp_path))
    stray = WriteAheadLog(wal_root(str(tmp_path), "p", "elasticsearch")).write_segment(
        "run1-000-000000007", [ChangeBatch(ALL, "c", rows=[ROW])])["segment"]
    other = WriteAheadLog(wal_root(str(tmp_path), "other", "elasticsearch")).write_segment(
        "run1-000-000000007", [ChangeBatch(ALL, "c", rows=[ROW])])["segment"]
    committer = sink.create_committer()
    committer.recover([], CommitContext("p", 0, None))  # no state_dir: nothing to look at
    assert os.path.isdir(stray)
    assert committer.recover([], CommitContext("p", 0, None, str(tmp_path))) == []
    assert not os.path.exists(stray) and os.path.isdir(other)  # only this pipeline's
    writer = sink.create_writer(ctx, None)
    writer.write(ChangeBatch(ALL, "cc", rows=[ROW, NULLS]))
    (committable,) = writer.prepare_commit(1)
    assert committable["rows"] == 2
    (back,) = WriteAheadLog.read_segment(committable["segment"])
    assert back.versions is not None and len(back) == 2
    assert writer.prepare_commit(2) == []  # nothing new: no empty segment
    writer.close()
