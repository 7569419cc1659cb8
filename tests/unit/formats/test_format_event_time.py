"""A message's event time of 0 (the epoch) is a time, not a missing one: the decoders take
the first event-time field that is present, never the next one because the first is 0."""
from __future__ import annotations

import json

import pytest

from formats.message.base import event_time
from formats.registry import resolve_message_format
from tests.unit.formats.test_format_canal import ROW as CANAL_ROW, canal


def test_event_time_takes_the_first_present_candidate():
    assert event_time(0, 5, 7) == 0
    assert event_time(None, 0, 7) == 0
    assert event_time(None, None, 7) == 7
    assert event_time(None, "12", 7) == 12


def _debezium(source_ts, ts) -> bytes:
    source = {"db": "inventory", "table": "customers"}
    if source_ts is not None:
        source["ts_ms"] = source_ts
    return json.dumps({"before": None, "after": {"id": 1}, "source": source, "op": "c",
                       "ts_ms": ts}).encode()


@pytest.mark.parametrize("source_ts, ts, expected", [
    (0, 500, 0),  # the source's commit time of 0 wins over the envelope's time
    (None, 0, 0),  # no source time: the envelope's 0, not the message timestamp
    (None, None, 999),
])
def test_debezium_zero_ts_ms(source_ts, ts, expected):
    d = resolve_message_format("debezium-json", {"columns": {"id": "INT"},
                                                 "primary-key": ["id"]}).decoder()
    out = d.decode([None], [_debezium(source_ts, ts)], [999], "dbserver1.inventory.customers")
    assert out.bad == [] and out.elements[0].ts_ms_list() == [expected]


def test_debezium_schema_history_zero_ts_ms():
    msg = json.dumps({"source": {"server": "dbserver1", "ts_ms": 0}, "ts_ms": 5,
                      "databaseName": "inventory", "tableChanges": [
                          {"type": "DROP", "id": "\"inventory\".\"customers\""}]}).encode()
    d = resolve_message_format("debezium-json").decoder()
    out = d.decode([None], [msg], [999], "dbserver1")
    assert [(e.kind, e.ts_ms) for e in out.elements] == [("drop_table", 0)]


@pytest.mark.parametrize("es, ts, expected", [(0, 7, 0), (None, 0, 0)])
def test_canal_zero_es_and_ts(es, ts, expected):
    d = resolve_message_format("canal-json").decoder()
    out = d.decode([None], [canal("INSERT", [CANAL_ROW], es=es, ts=ts)], [999], "canal")
    assert out.bad == [] and out.elements[0].ts_ms_list() == [expected]
