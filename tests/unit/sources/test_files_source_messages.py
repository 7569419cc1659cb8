"""The files source reading files of messages (debezium-json, canal-json, maxwell-json, json,
raw, avro), driven by the fakes of ``test_files_source``."""
from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from formats.registry import resolve_files_format
from runtime.batch import ChangeBatch
from runtime.errors import BadRecordError, HubError
from runtime.schema import Column, SchemaChange, TableSchema
from runtime.types import T
from tests.unit.sources.test_files_source import Harness, _source

ORDERS = TableSchema("shop.orders", (Column("id", T("BIGINT"), False), Column("name", T("STRING")),
                                     Column("price", T("DECIMAL(8,2)")),
                                     Column("ms", T("BIGINT"))), ("id",))


def _batch(ids: range, op: str = "c", schema: TableSchema = ORDERS) -> ChangeBatch:
    rows = [(i, f"n{i}", Decimal(i) / 4, 1_700_000_000_000 + i) for i in ids]
    return ChangeBatch(schema, op * len(rows), rows=rows, ts_ms=[10_000 + i for i in ids])


def _write(path: Path, fmt: str, *batches: ChangeBatch, **options: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    f = resolve_files_format(fmt, options)
    buf = io.BytesIO()
    w = f.open_file_writer(buf, batches[0].schema)
    for b in batches:
        w.write(b)
    w.close()
    path.write_bytes(buf.getvalue())


def _ids(h: Harness) -> list[int]:
    return sorted(r[0] for r in h.rows())


@pytest.mark.parametrize("fmt", ["debezium-json", "canal-json", "maxwell-json", "avro"])
def test_table_from_the_messages_ops_and_time_from_the_messages(tmp_path: Path, fmt: str) -> None:
    ext = resolve_files_format(fmt).file_extension
    customers = TableSchema("crm.customers", ORDERS.columns, ("id",))
    _write(tmp_path / "in" / f"a.{ext}", fmt, _batch(range(5)), _batch(range(2), "d"))
    _write(tmp_path / "in" / f"b.{ext}", fmt, _batch(range(3), schema=customers))
    h = Harness(_source(path=str(tmp_path / "in"), format=fmt, **{"primary-key": ["id"]}))
    h.poll()
    assert all(h.ended)
    got = {(b.table, b.ops) for b in h.batches()}
    assert got == {("shop.orders", "cccccdd"), ("crm.customers", "ccc")}
    ts = [t for b in h.batches() if b.table == "shop.orders" for t in b.ts_ms_list()]
    assert ts == ([10_000, 10_001, 10_002, 10_003, 10_004, 10_000, 10_001] if fmt != "maxwell-json"
                  else [10_000] * 7)  # maxwell's ts is in seconds
    assert all(b.schema.primary_key == ("id",) for b in h.batches())
    # ``table`` sends every event to one table
    h = Harness(_source(path=str(tmp_path / "in"), format=fmt, table="all.in"))
    h.poll()
    assert {b.table for b in h.batches()} == {"all.in"} and len(h.rows()) == 10


def test_flat_json_and_raw_take_the_table_from_the_source(tmp_path: Path) -> None:
    _write(tmp_path / "orders.json", "json", _batch(range(4)))
    h = Harness(_source(path=str(tmp_path / "orders.json"), format="json",
                        columns={"id": "BIGINT", "name": "STRING", "price": "DECIMAL(8,2)",
                                 "ms": "BIGINT"}, **{"primary-key": ["id"]}))
    h.poll()
    (batch,) = h.batches()
    assert batch.table == "files.orders" and batch.schema.primary_key == ("id",)
    assert batch.rows()[1] == (1, "n1", Decimal("0.25"), 1_700_000_000_001)
    (tmp_path / "log.txt").write_bytes(b"first line\n\nthird \xff line\nlast")
    h = Harness(_source(path=str(tmp_path / "log.txt"), format="raw"))
    h.poll()
    assert [r for b in h.batches() for r in b.rows()] == [
        (b"first line",), (b"",), (b"third \xff line",), (b"last",)]
    assert h.batches()[0].table == "files.log"


def test_bad_lines_go_to_the_dead_letter_queue_with_file_line_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    _write(path, "debezium-json", _batch(range(3)))
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + b"not json at all\n" + lines[1] + b"{}\n" + lines[2])
    h = Harness(_source(path=str(path), format="debezium-json"))
    with pytest.raises(BadRecordError) as err:
        h.poll()
    assert str(err.value).startswith(f"{path}:2: not a debezium-json message: JSONDecodeError: "
                                     f"Expecting value: line 1 column 1 (char 0) (byte offset "
                                     f"{len(lines[0])}) [record ")
    assert "--skip-record" in str(err.value)
    dead = tmp_path / "dead"
    h = Harness(_source(path=str(path), format="debezium-json"), tolerance="all")
    h.dead_letter.path = str(dead)
    h.poll()
    assert _ids(h) == [0, 1, 2] and h.dead_letter.count == 2
    logged = [json.loads(x) for x in (dead / "pipeline.deadletter.jsonl").read_text().splitlines()]
    assert [x["record"] for x in logged] == ["not json at all", "{}"]
    assert logged[1]["error"].startswith(f"{path}:4: ") and logged[0]["origin"] == f"files:{path}"


@pytest.mark.parametrize("fmt", ["debezium-json", "avro"])
def test_restore_mid_file_continues_exactly(tmp_path: Path, fmt: str, monkeypatch) -> None:
    monkeypatch.setattr("formats.file.avro.SYNC_INTERVAL", 400)  # many blocks
    ext = resolve_files_format(fmt).file_extension
    for i in range(3):
        _write(tmp_path / "in" / f"f{i}.{ext}", fmt,
               *(_batch(range(j, j + 20)) for j in range(i * 100, i * 100 + 100, 20)))
    options = {"path": str(tmp_path / "in"), "format": fmt, "batch-size": 7}
    mid_file = 0
    for polls in range(1, 40, 3):
        first = Harness(_source(**options), parallelism=2)
        first.poll(polls)
        enum_state, reader_states = first.checkpoint()
        emitted = _ids(first)  # what went downstream before the checkpoint barrier
        mid_file += any(s.progress > 0 for states in reader_states for s in states)
        first.poll(3)  # read after the checkpoint, then "crash": lost, to be read again
        second = Harness(_source(**options), parallelism=2, enum_state=enum_state,
                         reader_states=reader_states)
        second.poll()
        assert all(second.ended)
        assert sorted(emitted + _ids(second)) == list(range(300)), polls
    assert mid_file >= 3


def test_schema_changes_flow_in_order_with_the_data(tmp_path: Path) -> None:
    wide = TableSchema("shop.orders", ORDERS.columns + (Column("note", T("STRING")),), ("id",))
    rows = [(9, "n9", Decimal("1.00"), 0, "hello")]
    _write(tmp_path / "x.json", "debezium-json", _batch(range(2)),
           **{"schema-include": True})
    extra = io.BytesIO()
    f = resolve_files_format("debezium-json", {"schema-include": True})
    w = f.open_file_writer(extra, wide)
    w.write(ChangeBatch(wide, "c", rows=rows))
    with open(tmp_path / "x.json", "ab") as out:
        out.write(extra.getvalue())
    h = Harness(_source(path=str(tmp_path / "x.json"), format="debezium-json"))
    h.poll()
    kinds = [e.kind if isinstance(e, SchemaChange) else e.ops for e in h.outputs[0].elements]
    assert kinds == ["cc", "add_column", "c"]
    assert h.outputs[0].elements[2].rows() == rows
    assert str(h.batches()[0].schema.column("price").type) == "DECIMAL(8,2)"  # the schema part


def test_event_time_column_and_continuous_discovery(tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    source = _source(path=str(root / "*.json"), format="canal-json",
                     **{"event-time-column": "ms", "monitor-interval": "1s"})
    h = Harness(source)
    h.poll(5)
    _write(root / "a.json", "canal-json", _batch(range(3)))
    h.scheduled[0][0]()
    h.poll(20)
    assert [t for b in h.batches() for t in b.ts_ms_list()] == [1_700_000_000_000 + i
                                                                for i in range(3)]
    bad = _source(path=str(root / "*.json"), format="canal-json", **{"event-time-column": "name"})
    with pytest.raises(HubError, match="column 'name' of table shop.orders is STRING"):
        Harness(bad).poll()
