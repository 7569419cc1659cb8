"""The files source driven by small fakes of the runtime's contexts (no executor)."""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pytest

from formats.file.base import annotated_arrow_schema
from formats.registry import resolve_format
from runtime.batch import ChangeBatch
from runtime.deadletter import DeadLetterQueue
from runtime.errors import BadRecordError, HubError
from runtime.schema import Column, SchemaChange, TableSchema
from runtime.source import (EnumeratorContext, InputStatus, ReaderContext, ReaderOutput, Split,
                            SourceReader)
from runtime.types import T
from sources.files.config import FilesSourceConfig
from sources.files.source import FilesSource
from sources.files.split import FileSplit


# -- fakes of our runtime interfaces -----------------------------------------------------------
class Output(ReaderOutput):
    def __init__(self) -> None:
        self.batches: list[tuple[ChangeBatch, str]] = []
        self.elements: list[ChangeBatch | SchemaChange] = []  # both kinds, in order
        self.finished: list[str] = []

    def collect(self, batch: ChangeBatch, split_id: str) -> None:
        self.batches.append((batch, split_id))
        self.elements.append(batch)

    def collect_schema_change(self, change: SchemaChange, split_id: str) -> None:
        # only message formats carry schema changes (files of debezium-json messages...)
        self.elements.append(change)

    def split_finished(self, split_id: str) -> None:
        self.finished.append(split_id)

    def rows(self) -> list[tuple]:
        return [r for b, _ in self.batches for r in b.rows()]


class Harness(EnumeratorContext):
    """Coordinator and readers in one thread: split requests are queued and answered between
    polls, as an executor would."""

    def __init__(self, source: FilesSource, parallelism: int = 1, tolerance: str = "none",
                 enum_state: dict | None = None, reader_states: list[list[Split]] | None = None):
        self.parallelism = parallelism
        self.dead_letter = DeadLetterQueue(tolerance)
        self.requests: list[int] = []
        self.scheduled: list[tuple[Callable[[], None], float]] = []
        self.enumerator = source.create_enumerator(self, enum_state)
        self.readers: list[SourceReader] = []
        self.outputs = [Output() for _ in range(parallelism)]
        self.ended = [False] * parallelism
        for i in range(parallelism):
            self.readers.append(source.create_reader(_ReaderCtx(self, i)))
        self.enumerator.start()
        for i, r in enumerate(self.readers):
            if reader_states:
                r.add_splits([FileSplit.from_dict(s.to_dict()) for s in reader_states[i]])
            r.start()

    # EnumeratorContext
    def assign_splits(self, assignment: dict[int, list[Split]]) -> None:
        for subtask, splits in assignment.items():
            self.readers[subtask].add_splits(splits)

    def signal_no_more_splits(self, subtask: int) -> None:
        self.readers[subtask].notify_no_more_splits()

    def registered_readers(self) -> list[int]:
        return list(range(self.parallelism))

    def schedule(self, fn: Callable[[], None], interval_s: float) -> None:
        self.scheduled.append((fn, interval_s))

    # driving
    def poll(self, polls: int = 10_000) -> None:
        """Round-robin polls until every reader ended or ``polls`` polls were made."""
        for _ in range(polls):
            while self.requests:
                self.enumerator.handle_split_request(self.requests.pop(0))
            if all(self.ended):
                return
            for i, r in enumerate(self.readers):
                if not self.ended[i]:
                    self.ended[i] = r.poll_next(self.outputs[i]) is InputStatus.END_OF_INPUT

    def rows(self) -> list[tuple]:
        return [r for o in self.outputs for r in o.rows()]

    def batches(self) -> list[ChangeBatch]:
        return [b for o in self.outputs for b, _ in o.batches]

    def checkpoint(self) -> tuple[dict, list[list[Split]]]:
        return (self.enumerator.snapshot_state(1), [r.snapshot_state(1) for r in self.readers])


class _ReaderCtx(ReaderContext):
    def __init__(self, harness: Harness, subtask: int):
        self.harness, self.subtask = harness, subtask
        self.parallelism = harness.parallelism
        self.dead_letter = harness.dead_letter

    def send_split_request(self) -> None:
        self.harness.requests.append(self.subtask)

    def send_event_to_enumerator(self, event: dict[str, Any]) -> None:
        raise AssertionError("not used")


def _source(**options: Any) -> FilesSource:
    return FilesSource(FilesSourceConfig.model_validate(options))


SCHEMA = TableSchema("db.t", (Column("id", T("BIGINT")), Column("name", T("STRING")),
                              Column("at", T("TIMESTAMP(6)"))), ("id",))


def _write(path: Path, fmt: str, ids: range, changelog: ChangeBatch | None = None,
           **format_options: Any) -> None:
    """A file of rows ``(id, "n<id>", id seconds after the epoch)`` (or a changelog table)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if changelog is not None:
        table = changelog.changelog_table()
    else:
        table = pa.table({"id": list(ids), "name": [f"n{i}" for i in ids],
                          "at": pa.array([i * 1_000_000 for i in ids], pa.timestamp("us"))},
                         schema=annotated_arrow_schema(SCHEMA))
    buf = io.BytesIO()
    w = resolve_format(fmt, format_options).open_writer(buf, table.schema)
    w.write(table)
    w.close()
    path.write_bytes(buf.getvalue())


def _ids(rows: list[tuple]) -> list[int]:
    return sorted(r[0] for r in rows)


# -- tests -------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_single_file_bounded(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"orders.{fmt}"
    _write(path, fmt, range(50))
    source = _source(path=str(path), format=fmt, **{"batch-size": 16})
    assert source.bounded and source.table == "files.orders"
    h = Harness(source)
    h.poll()
    assert h.ended == [True]
    batches = h.batches()
    assert len(batches) >= 3 and all(b.table == "files.orders" for b in batches)
    assert [r[:2] for r in h.rows()[:2]] == [(0, "n0"), (1, "n1")]
    # inferred types: exact for parquet, a guess from the text for csv and jsonl (documented)
    at = {"parquet": "TIMESTAMP(6)", "csv": "TIMESTAMP(9)", "jsonl": "STRING"}[fmt]
    assert str(batches[0].schema.column("at").type) == at
    assert _ids(h.rows()) == list(range(50))
    mtime_ms = os.stat(path).st_mtime_ns // 1_000_000
    assert {b.ops for b in batches} >= {"c" * 16} and all(b.max_ts() == mtime_ms for b in batches)
    assert h.outputs[0].finished == [str(path.resolve())]
    assert len(h.outputs[0].elements) == len(batches)  # no schema changes from file formats


def test_many_files_directory_glob_and_skipped_names(tmp_path: Path) -> None:
    root = tmp_path / "in"
    for i in range(6):
        _write(root / f"d{i % 2}" / f"part-{i}.jsonl", "jsonl", range(i * 10, i * 10 + 10))
    _write(root / "d0" / ".part-9.jsonl.inprogress", "jsonl", range(900, 910))
    _write(root / "d0" / "_tmp" / "x.jsonl", "jsonl", range(800, 810))
    (root / "d1" / "_SUCCESS").write_bytes(b"")
    (root / "empty.jsonl").write_bytes(b"")
    for path in (str(root), str(root / "**" / "*.jsonl")):
        h = Harness(_source(path=path, format="jsonl", table="db.t", **{"batch-size": 4}),
                    parallelism=2)
        h.poll()
        assert all(h.ended)
        assert _ids(h.rows()) == list(range(60)), path
        assert all(o.batches for o in h.outputs)  # both readers got work


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_restore_mid_file_continues_exactly(tmp_path: Path, fmt: str) -> None:
    for i in range(3):
        _write(tmp_path / "in" / f"f{i}.{fmt}", fmt, range(i * 100, i * 100 + 100))
    options = {"path": str(tmp_path / "in"), "format": fmt, "batch-size": 7,
               "format-options": {"row-group-size": 20} if fmt == "parquet" else {}}
    mid_file = 0
    for polls in range(1, 40, 3):
        first = Harness(_source(**options), parallelism=2)
        first.poll(polls)
        enum_state, reader_states = first.checkpoint()
        emitted = _ids(first.rows())  # what went downstream before the checkpoint barrier
        mid_file += any(s.progress > 0 for states in reader_states for s in states)
        first.poll(3)  # read after the checkpoint, then "crash": lost, to be read again
        second = Harness(_source(**options), parallelism=2, enum_state=enum_state,
                         reader_states=reader_states)
        second.poll()
        assert all(second.ended)
        assert sorted(emitted + _ids(second.rows())) == list(range(300)), polls
    assert mid_file >= 3


def test_continuous_discovery_and_enumerator_restore(tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    source = _source(path=str(root / "*.csv"), format="csv", table="db.t",
                     **{"monitor-interval": "50ms"})
    assert not source.bounded
    h = Harness(source)
    assert [i for _, i in h.scheduled] == [0.05]
    h.poll(5)
    assert not h.ended[0] and h.rows() == []
    _write(root / "a.csv", "csv", range(10))
    h.scheduled[0][0]()  # the executor's timer fires
    h.poll(20)
    assert _ids(h.rows()) == list(range(10)) and not h.ended[0]
    enum_state, reader_states = h.checkpoint()
    assert enum_state["discovered"] == [str((root / "a.csv").resolve())]
    _write(root / "b.csv", "csv", range(10, 20))
    restored = Harness(source, enum_state=enum_state, reader_states=reader_states)
    restored.poll(20)  # start() discovered b.csv, not a.csv again
    assert _ids(restored.rows()) == list(range(10, 20))


def test_changelog_files_give_op_and_ts(tmp_path: Path) -> None:
    rows = [(1, "a", None), (2, "b", None), (1, "a2", None), (2, "b", None)]
    log = ChangeBatch(SCHEMA, "cdud", rows=rows, ts_ms=[10, 20, 30, 40])
    for fmt in ("parquet", "jsonl", "csv"):
        _write(tmp_path / f"log.{fmt}", fmt, range(0), changelog=log)
        h = Harness(_source(path=str(tmp_path / f"log.{fmt}"), format=fmt, table="db.t",
                            **{"primary-key": ["id"]}))
        h.poll()
        (batch,) = h.batches()
        assert batch.schema.names == ("id", "name", "at") and batch.schema.primary_key == ("id",)
        assert batch.ops == "cdud" and batch.ts_ms_list() == [10, 20, 30, 40]
        assert [r[:2] for r in batch.rows()] == [r[:2] for r in rows]


def test_event_time_column_drives_ts(tmp_path: Path) -> None:
    _write(tmp_path / "x.parquet", "parquet", range(5))
    h = Harness(_source(path=str(tmp_path / "x.parquet"), format="parquet",
                        **{"event-time-column": "at"}))
    h.poll()
    assert [t for b in h.batches() for t in b.ts_ms_list()] == [0, 1000, 2000, 3000, 4000]


def test_declared_columns_and_bad_records(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"id,price\n1,1.50\n2,abc\n3,2.25\n4\n5,9.99\n")
    options = {"path": str(path), "format": "csv", "table": "shop.prices",
               "columns": {"id": "INT", "price": "DECIMAL(6,2)"}, "primary-key": ["id"]}
    h = Harness(_source(**options))
    with pytest.raises(BadRecordError, match=rf"{path}:3: .*byte offset 16"):
        h.poll()
    h = Harness(_source(**options), tolerance="all")
    h.poll()
    assert [r[0] for r in h.rows()] == [1, 3, 5] and h.dead_letter.count == 2
    assert str(h.batches()[0].schema.column("price").type) == "DECIMAL(6,2)"


def test_bad_op_values_are_bad_records(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"id": 1, "op": "c", "ts_ms": 5}\n{"id": 2, "op": "x", "ts_ms": 6}\n'
                     b'{"id": 3, "op": null, "ts_ms": null}\n')
    h = Harness(_source(path=str(path), format="jsonl"), tolerance="all")
    h.poll()
    (batch,) = h.batches()
    assert batch.ops == "cc" and [r[0] for r in batch.rows()] == [1, 3]
    assert batch.ts_ms_list()[0] == 5 and h.dead_letter.count == 1


def test_missing_path_is_one_clear_line(tmp_path: Path) -> None:
    for path in (tmp_path / "nope.csv", tmp_path / "nodir" / "*.csv"):
        with pytest.raises(HubError) as err:
            Harness(_source(path=str(path), format="csv"))
        named = path.parent if "*" in path.name else path
        assert "\n" not in str(err.value) and str(named) in str(err.value)


def test_config_errors() -> None:
    with pytest.raises(ValueError, match="format"):
        _source(path="x", format="xml")
    with pytest.raises(ValueError, match="columns.a"):
        FilesSourceConfig.model_validate({"path": "x", "format": "csv",
                                          "columns": {"a": "NUMBERZ"}})
    with pytest.raises(ValueError, match="primary-key"):
        FilesSourceConfig.model_validate({"path": "x", "format": "csv", "columns": {"a": "INT"},
                                          "primary-key": ["b"]})
    with pytest.raises(ValueError, match="monitor-interval"):
        FilesSourceConfig.model_validate({"path": "x", "format": "csv", "monitor-interval": "0s"})
