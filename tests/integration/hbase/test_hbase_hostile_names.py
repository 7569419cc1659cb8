"""HBase sink: table names from hostile source names.  Each valid table gets an HBase table of
its own; a ``:`` in a name never selects a namespace; a table that gives no valid name, or
whose name differs from another table's only in what HBase names can't hold, stops with one
line naming the tables."""
from __future__ import annotations

import uuid

import numpy as np
import pytest

from runtime.batch import ChangeBatch
from runtime.errors import ConfigError
from runtime.schema import Column, TableSchema, table_id
from runtime.sink import CommitContext, WriterContext
from runtime.types import T
from sinks.hbase.config import HBaseSinkConfig
from sinks.hbase.sink import HBaseSink

pytestmark = [pytest.mark.integration, pytest.mark.hbase]




@pytest.fixture
def make(hbase_server, tmp_path):
    prefix = f"it-{uuid.uuid4().hex[:10]}"

    def make(table: str = "{db}_{table}") -> HBaseSink:
        return HBaseSink(HBaseSinkConfig.model_validate({
            "host": hbase_server.host, "port": hbase_server.port, "table": prefix + table}))

    def commit(sink: HBaseSink, tables: list[str]) -> None:
        writer = sink.create_writer(WriterContext("it", 0, 1, uuid.uuid4().hex[:6],
                                                  str(tmp_path)), None)
        for t in tables:
            schema = TableSchema(t, (Column("id", T("BIGINT"), False),
                                     Column("v", T("STRING"))), ("id",))
            writer.write(ChangeBatch(schema, "c", rows=[(1, t)],
                                     versions=np.array([1], dtype=np.int64)))
        committables = writer.prepare_commit(1)
        writer.close()
        committer = sink.create_committer()
        try:
            committer.commit(committables, CommitContext("it", 1, None, str(tmp_path)))
        finally:
            committer.close()

    return make, commit, prefix


def test_hostile_names_get_valid_distinct_tables(make, hbase_server):
    import happybase

    make_sink, commit, prefix = make
    names = ["../x", "a.b", "it's", "drop;table", "with space", "ünï", "ns:x", "orders"]
    sink = make_sink()
    tables = [table_id("shop", n) for n in names]
    commit(sink, tables)
    conn = happybase.Connection(hbase_server.host, hbase_server.port)
    try:
        mine = {t.decode() for t in conn.tables() if t.decode().startswith(prefix)}
        assert mine == {sink.config.table_for(t) for t in tables}
        assert len(mine) == len(names) and not any(":" in t for t in mine)
        assert f"{prefix}shop_orders" in mine
        for t in tables:  # each table's row in its own HBase table
            rows = list(conn.table(sink.config.table_for(t)).scan())
            assert [cells[b"cf:v"].decode() for _, cells in rows] == [t]
    finally:
        conn.close()


def test_two_tables_sharing_a_table_stop_naming_both(make):
    make_sink, commit, prefix = make
    with pytest.raises(ConfigError, match=rf"^table: hbase: tables shop\.a b and shop\.a_b both "
                                          rf"map to HBase table {prefix}shop_a_b"):
        commit(make_sink(), ["shop.a b", "shop.a_b"])
    commit(make_sink("{table}"), ["shop1.orders", "shop2.orders"])  # a deliberate merge


def test_a_table_without_a_valid_name_stops_naming_it(make):
    make_sink, commit, _prefix = make
    sink = HBaseSink(make_sink().config.model_copy(update={"table": "{db}:{table}"}))
    with pytest.raises(ConfigError, match=r"table 'my-db\.x' gives no valid HBase table name"):
        commit(sink, ["my-db.x"])
