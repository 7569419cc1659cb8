"""Files sink with message formats: part files of debezium-json, canal-json, maxwell-json,
json, raw lines and Avro container files, in the same part-file lifecycle."""
from __future__ import annotations

import json
from pathlib import Path

import fastavro
import pytest

from runtime.batch import ChangeBatch
from runtime.deadletter import DeadLetterQueue
from runtime.errors import BadRecordError
from runtime.schema import Column, SchemaChange, TableSchema
from runtime.sink import WriterContext
from runtime.types import T
from sink_helpers import HOUR, ORDERS, commit_context, files_sink, listing, orders, writer_context


def _lines(path: str) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


@pytest.mark.parametrize("fmt,ext", [("debezium-json", "json"), ("canal-json", "json"),
                                     ("maxwell-json", "json"), ("json", "json"), ("avro", "avro")])
def test_part_files_are_hidden_until_commit_and_named_by_format(root: Path, fmt: str,
                                                                ext: str) -> None:
    sink = files_sink(root, format=fmt)
    writer = sink.create_writer(writer_context(), None)
    writer.write(orders(range(3), ts_ms=1000))
    committables = writer.prepare_commit(1)
    visible, hidden = listing(root)
    assert visible == [] and hidden == [f"shop/orders/.part-p1-a1-0-0.{ext}.inprogress"]
    sink.create_committer().commit(committables, commit_context())
    assert listing(root) == ([f"shop/orders/part-p1-a1-0-0.{ext}"], [])


def test_partitions_split_batches_keeping_before_images(root: Path) -> None:
    sink = files_sink(root, format="debezium-json", partition_format="dt=%Y-%m-%d/hr=%H")
    writer = sink.create_writer(writer_context(), None)
    batch = orders([1, 2, 3, 1], ts_ms=[0, HOUR, 2, HOUR + 5])
    batch = ChangeBatch(ORDERS, "cccu", rows=batch.rows(), ts_ms=[0, HOUR, 2, HOUR + 5],
                        before=[None, None, None, batch.rows()[0]])
    writer.write(batch)
    committables = writer.prepare_commit(1)
    sink.create_committer().commit(committables, commit_context(watermark_ms=3 * HOUR))
    visible, _ = listing(root)
    files = {p.split("/")[3]: root / p for p in visible if not p.endswith("_SUCCESS")}
    assert sorted(files) == ["hr=00", "hr=01"]
    first, second = _lines(str(files["hr=00"])), _lines(str(files["hr=01"]))
    assert [(m["op"], m["after"]["id"], m["ts_ms"]) for m in first] == [("c", 1, 0), ("c", 3, 2)]
    assert [(m["op"], m["after"]["id"]) for m in second] == [("c", 2), ("u", 1)]
    # amount 0.25: Debezium's DECIMAL (precise) is base64 of the unscaled 25
    assert second[1]["before"] == {"id": 1, "customer": "c1", "amount": "GQ==", "qty": 1}
    assert sum(p.endswith("_SUCCESS") for p in visible) == 2


def test_a_schema_change_rolls_the_avro_file(root: Path) -> None:
    sink = files_sink(root, format="avro")
    writer = sink.create_writer(writer_context(), None)
    writer.write(orders([1]))
    wider = TableSchema(ORDERS.table, ORDERS.columns + (Column("note", T("STRING")),), ("id",))
    writer.write_schema_change(SchemaChange("add_column", ORDERS.table, wider, {"column": "note"}))
    writer.write(ChangeBatch(wider, "c", rows=[orders([2]).rows()[0] + ("hi",)]))
    committables = writer.prepare_commit(1)
    sink.create_committer().commit(committables, commit_context())
    finals = sorted(c["final"] for c in committables)
    assert len(finals) == 2
    with open(finals[1], "rb") as f:
        assert [r["after"]["note"] for r in fastavro.reader(f)] == ["hi"]


def test_raw_values_with_line_breaks_are_bad_records(root: Path) -> None:
    schema = TableSchema("logs.app", (Column("id", T("BIGINT"), False),
                                      Column("line", T("STRING"))), ("id",))
    batch = ChangeBatch(schema, "ccd", rows=[(1, "ok"), (2, "two\nlines"), (3, "deleted")])
    sink = files_sink(root, format="raw")
    writer = sink.create_writer(writer_context(), None)
    writer.write(batch)
    with pytest.raises(BadRecordError, match=r"table logs.app: .*\(key \(2,\)\) has a line break"):
        writer.prepare_commit(1)
    writer.close()
    dead = DeadLetterQueue("all")
    ctx = WriterContext(pipeline="p1", subtask=0, parallelism=1, attempt="a2", state_dir="",
                        dead_letter=dead)
    writer = sink.create_writer(ctx, None)
    writer.write(batch)
    committables = writer.prepare_commit(1)
    sink.create_committer().commit(committables, commit_context())
    (final,) = [c["final"] for c in committables]
    assert final.endswith(".txt") and Path(final).read_bytes() == b"ok\n" and dead.count == 1
