"""The debezium-json writer's ``source`` block carries the binlog coordinates the MySQL source
puts on its batches (``ChangeBatch.positions``, :mod:`sources.mysql.positions`)."""
from __future__ import annotations

import json

from formats.message.debezium_writer import DebeziumJsonEncoder
from runtime.batch import ChangeBatch
from runtime.schema import Column, TableSchema
from runtime.types import DataType
from sources.mysql.positions import Run, constant, from_runs

SCHEMA = TableSchema("shop.t", (Column("id", DataType("INT")),), ("id",))
KEYS = ("server_id", "gtid", "file", "pos", "row")


def _sources(batch: ChangeBatch, schema_include: bool = False) -> list[dict]:
    out = [json.loads(m) for m in DebeziumJsonEncoder(schema_include).encode(batch, "t")]
    return [(m["payload"] if schema_include else m)["source"] for m in out]


def test_binlog_batches_fill_server_id_gtid_file_pos_row():
    positions = from_runs([Run(2, "mysql-bin.000003", 1200, 7, "0-7-42"),
                           Run(1, 'odd"name\\.000001', 1500, 8, None, 5)])
    batch = ChangeBatch(SCHEMA, "cud", rows=[(1,), (2,), (3,)], before=[None, (2,), None],
                        ts_ms=1000, positions=positions)
    for schema_include in (False, True):
        got = [{k: s[k] for k in KEYS} for s in _sources(batch, schema_include)]
        assert got == [
            {"server_id": 7, "gtid": "0-7-42", "file": "mysql-bin.000003", "pos": 1200, "row": 0},
            {"server_id": 7, "gtid": "0-7-42", "file": "mysql-bin.000003", "pos": 1200, "row": 1},
            {"server_id": 8, "gtid": None, "file": 'odd"name\\.000001', "pos": 1500, "row": 5}]


def test_snapshot_batches_carry_their_chunks_position_and_others_none():
    batch = ChangeBatch(SCHEMA, "rr", rows=[(1,), (2,)], ts_ms=1,
                        positions=constant(2, "mysql-bin.000002", 99, ""))
    assert [(s["file"], s["pos"], s["row"], s["gtid"], s["snapshot"]) for s in _sources(batch)] \
        == [("mysql-bin.000002", 99, 0, None, "true")] * 2
    plain = ChangeBatch(SCHEMA, "c", rows=[(1,)], ts_ms=1)
    assert {k: _sources(plain)[0][k] for k in KEYS} == {
        "server_id": 0, "gtid": None, "file": "", "pos": 0, "row": 0}
