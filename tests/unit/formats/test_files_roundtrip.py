"""Round trips through files of messages, on the local executor: datagen (inserts, updates,
deletes) -> files(<format>) -> files source(<format>) -> files(parquet) holds the same change
events, hence the same final state per key, as datagen -> files(parquet) directly."""
from __future__ import annotations

import glob
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from sinks.files.config import FilesSinkConfig
from sinks.files.sink import FilesSink
from sources.datagen.config import DatagenConfig
from sources.datagen.source import DatagenSource
from sources.files.config import FilesSourceConfig
from sources.files.source import FilesSource
from tests.conformance.harness import run_job

ORDERS_COLUMNS = {"id": "BIGINT", "customer_id": "INT", "amount": "DECIMAL(12,2)",
                  "status": "VARCHAR(16)", "note": "VARCHAR(200)", "updated_at": "TIMESTAMP(6)",
                  "attrs": "JSON"}

CASES: dict[str, dict[str, Any]] = {
    # format -> (sink format-options, source options, datagen tables, datagen options)
    "debezium-json": {"sink": {"schema-include": True}, "source": {}},
    "canal-json": {"sink": {}, "source": {}},
    "avro": {"sink": {}, "source": {}},
    # Maxwell carries no types (declared here) and its ts is in seconds (a 1 s step here)
    "maxwell-json": {"sink": {}, "tables": ["orders"], "source": {
        "columns": ORDERS_COLUMNS, "primary-key": ["id"]}, "datagen": {"event-time-step": "1s"}},
}


def _datagen(tables: list[str], **options: Any) -> DatagenSource:
    return DatagenSource(DatagenConfig.model_validate({
        "tables": tables, "rows": 1500, "batch-size": 250, "splits": 2, "update-ratio": 0.3,
        "delete-ratio": 0.15, "event-time-start": "2026-11-24T10:00:00Z", **options}))


def _files_sink(root: Path, fmt: str, **options: Any) -> FilesSink:
    return FilesSink(FilesSinkConfig.model_validate({
        "path": str(root), "format": fmt, "format-options": options,
        "partition-format": "dt=%Y-%m-%d/hr=%H"}))


def _changelog(lake: Path) -> list[dict]:
    """Every event of the parquet lake as a dict (table, the row's columns, op, ts_ms); JSON
    documents canonical (formats that embed them, Canal and Maxwell, re-serialise them)."""
    out = []
    for path in glob.glob(str(lake / "**" / "*.parquet"), recursive=True):
        if os.path.basename(path).startswith("."):
            continue
        table = ".".join(os.path.relpath(path, lake).split(os.sep)[:2])
        for r in pq.read_table(path).to_pylist():
            # seq: stamped by the writer where the source gives no order, so it differs per run
            r.pop("seq", None)
            if r.get("attrs") is not None:
                r["attrs"] = json.dumps(json.loads(r["attrs"]), sort_keys=True)
            out.append({"table": table, **r})
    return out


def _final_state(events: list[dict]) -> dict[tuple, dict]:
    """Replayed in event-time order (unique per table in datagen): the live rows by key."""
    state: dict[tuple, dict] = {}
    for e in sorted(events, key=lambda e: (e["table"], e["ts_ms"])):
        key = (e["table"], e["id"])
        if e["op"] == "d":
            state.pop(key, None)
        else:
            state[key] = e
    return state


@pytest.mark.parametrize("fmt", sorted(CASES))
def test_round_trip_through_files_of_messages_keeps_every_change(tmp_path: Path,
                                                                 fmt: str) -> None:
    case = CASES[fmt]
    tables = case.get("tables", ["orders", "customers"])
    datagen = case.get("datagen", {})
    run_job(_datagen(tables, **datagen), _files_sink(tmp_path / "direct", "parquet"),
            str(tmp_path / "s1"))
    run_job(_datagen(tables, **datagen), _files_sink(tmp_path / "msgs", fmt, **case["sink"]),
            str(tmp_path / "s2"))
    ext = "avro" if fmt == "avro" else "json"
    assert glob.glob(str(tmp_path / "msgs" / "**" / f"part-*.{ext}"), recursive=True)
    source = FilesSource(FilesSourceConfig.model_validate({
        "path": str(tmp_path / "msgs"), "format": fmt, "batch-size": 300, **case["source"]}))
    run_job(source, _files_sink(tmp_path / "back", "parquet"), str(tmp_path / "s3"))

    direct, back = _changelog(tmp_path / "direct"), _changelog(tmp_path / "back")
    assert len(direct) == 1500 * len(tables) and {e["op"] for e in direct} == {"c", "u", "d"}

    def key(e: dict) -> tuple:
        return tuple(sorted(e.items()))

    assert Counter(map(key, back)) == Counter(map(key, direct))
    final = _final_state(direct)
    assert _final_state(back) == final and 0 < len(final) < len(direct)
