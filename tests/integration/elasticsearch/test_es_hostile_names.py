"""Elasticsearch sink: index names from hostile table names.  Each valid table gets an index
of its own; a table that gives no valid name, or whose name differs from another table's
only in what index names can't hold (case, spaces, quotes), stops with one line naming the
tables, in one process and across processes (the index's ``_meta`` names its table)."""
from __future__ import annotations

import re
import uuid

import numpy as np
import pytest

from runtime.batch import ChangeBatch
from runtime.errors import ConfigError
from runtime.schema import Column, TableSchema, table_id
from runtime.sink import CommitContext, WriterContext
from runtime.types import T
from sinks.elasticsearch.config import ElasticsearchSinkConfig
from sinks.elasticsearch.sink import ElasticsearchSink

pytestmark = [pytest.mark.integration, pytest.mark.elasticsearch]




def _batch(table: str) -> ChangeBatch:
    schema = TableSchema(table, (Column("id", T("STRING"), False), Column("t", T("STRING"))),
                         ("id",))
    return ChangeBatch(schema, "c", rows=[(table, table)], versions=np.array([1], dtype=np.int64))


@pytest.fixture
def make(elasticsearch_server, tmp_path):
    prefix = f"it-{uuid.uuid4().hex[:10]}"

    def make(index: str = "{db}-{table}") -> ElasticsearchSink:
        return ElasticsearchSink(ElasticsearchSinkConfig.model_validate({
            "hosts": [elasticsearch_server.url], **elasticsearch_server.options,
            "index": f"{prefix}-{index}"}))

    def commit(sink: ElasticsearchSink, tables: list[str], committer=None) -> None:
        writer = sink.create_writer(WriterContext("it", 0, 1, uuid.uuid4().hex[:6],
                                                  str(tmp_path)), None)
        for t in tables:
            writer.write(_batch(t))
        committables = writer.prepare_commit(1)
        writer.close()
        (committer or sink.create_committer()).commit(committables, CommitContext("it", 1, None))

    return make, commit, prefix


def test_hostile_names_get_valid_distinct_indexes(make, elasticsearch_server):
    make_sink, commit, prefix = make
    names = ["../x", "a.b", "it's", "drop;table", "with space", "ünï", "semi;colon..", "orders"]
    sink = make_sink()
    tables = [table_id("shop", n) for n in names]
    commit(sink, tables)
    es = elasticsearch_server.client()
    indexes = set(es.indices.get(index=f"{prefix}-*"))
    es.close()
    assert indexes == {sink.config.index_for(t) for t in tables}
    assert len(indexes) == len(names)
    assert f"{prefix}-shop-orders" in indexes


def test_two_tables_sharing_an_index_stop_naming_both(make, elasticsearch_server):
    make_sink, commit, _prefix = make
    sink = make_sink()
    with pytest.raises(ConfigError, match=r"^index: elasticsearch: tables shop\.Orders and "
                                          r"shop\.orders both map to index .*-shop-orders"):
        commit(sink, ["shop.Orders", "shop.orders"])
    # another process (no memory of the first table): the index's _meta names it
    with pytest.raises(ConfigError, match=r"tables shop\.Orders and shop\.orders both map"):
        commit(make_sink(), ["shop.orders"])
    with pytest.raises(ConfigError, match=r"tables shop\.Orders and shop\.ORDERS both map"):
        commit(make_sink(), ["shop.ORDERS"])


def test_the_same_source_name_is_a_deliberate_merge(make, elasticsearch_server):
    make_sink, commit, prefix = make
    sink = make_sink("{table}")  # shards of one table into one index
    commit(sink, ["shop1.orders", "shop2.orders"])
    commit(make_sink("{table}"), ["shop3.orders"])
    # an index made under another option, written under one that merges into it
    commit(make_sink("{db}-{table}"), ["shop.items"])
    commit(make_sink("shop-{table}"), ["other.items"])
    assert committed_tables(elasticsearch_server, f"{prefix}-shop-items") == {"shop.items",
                                                                              "other.items"}
    es = elasticsearch_server.client()
    assert set(es.indices.get(index=f"{prefix}-*")) == {f"{prefix}-orders", f"{prefix}-shop-items"}
    es.close()


def committed_tables(server, index: str) -> set[str]:
    es = server.client()
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=100)["hits"]["hits"]
    es.close()
    return {h["_source"]["t"] for h in hits}


def test_a_table_without_a_valid_index_name_stops_naming_it(make):
    make_sink, commit, _prefix = make
    sink = ElasticsearchSink(make_sink().config.model_copy(update={"index": "{table}"}))
    table = table_id("shop", "..")
    with pytest.raises(ConfigError, match=rf"table {re.escape(repr(table))} gives no valid "
                                          r"index name from index '{table}'"):
        commit(sink, [table])
