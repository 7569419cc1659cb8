"""The dead-letter queue: tolerance, and skipping one named record."""
from __future__ import annotations

import json

import pytest

from runtime.deadletter import DeadLetterQueue, record_id
from runtime.errors import BadRecordError


def test_record_id_is_stable_and_tells_images_apart():
    a = record_id("shop.orders", {"id": 1}, {"id": 1, "note": "a\x00b"})
    assert a == record_id("shop.orders", {"id": 1}, {"id": 1, "note": "a\x00b"})
    assert a != record_id("shop.orders", {"id": 1}, {"id": 1, "note": "ab"})
    assert a != record_id("shop.other", {"id": 1}, {"id": 1, "note": "a\x00b"})
    assert len(a) == 16 and a.isalnum()


def test_without_tolerance_the_error_names_the_record_and_the_way_out():
    dlq = DeadLetterQueue("none")
    rid = record_id("t", {"id": 1}, {"id": 1})
    with pytest.raises(BadRecordError) as err:
        dlq.report(BadRecordError("bad row"), {"id": 1}, "test", record_id=rid)
    assert str(err.value).startswith("bad row [record " + rid)
    assert f"--skip-record {rid}" in str(err.value)
    with pytest.raises(BadRecordError, match="^bad row$"):
        dlq.report(BadRecordError("bad row"), {"id": 1}, "test")
    assert dlq.count == 0


def test_a_skipped_record_goes_to_the_dead_letters_and_no_other(tmp_path):
    rid = record_id("t", {"id": 1}, {"id": 1})
    dlq = DeadLetterQueue("none", str(tmp_path), "p", skip={rid})
    dlq.report(BadRecordError("bad row"), {"id": 1}, "test", record_id=rid)
    with pytest.raises(BadRecordError):
        dlq.report(BadRecordError("other"), {"id": 2}, "test",
                   record_id=record_id("t", {"id": 2}, {"id": 2}))
    assert dlq.count == 1
    (line,) = (tmp_path / "p.deadletter.jsonl").read_text().splitlines()
    entry = json.loads(line)
    assert entry["record_id"] == rid and entry["record"] == {"id": 1}


def test_dead_lettered_records_are_counted_in_the_metrics(tmp_path):
    from runtime.metrics import PipelineMetrics

    metrics = PipelineMetrics(1)
    dlq = DeadLetterQueue("all", str(tmp_path), "p", metrics=metrics)
    dlq.report(BadRecordError("bad row"), {"id": 1}, "test")
    dlq.report(BadRecordError("bad row"), {"id": 2}, "test")
    assert metrics.dead_letters == 2 and dlq.file == str(tmp_path / "p.deadletter.jsonl")
