"""What each format writes, its reader reads back: every logical type, and from any progress."""
from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

import pyarrow as pa
import pytest

from formats.file.base import FileFormat, annotated_arrow_schema, logical_type
from formats.registry import resolve_format
from runtime.schema import Column, TableSchema
from runtime.types import T

FORMATS = ["parquet", "jsonl", "csv"]
UTC = dt.timezone.utc

#: (logical type, a value with the hard cases of that type)
VALUES = [
    ("BOOLEAN", True), ("TINYINT", -128), ("SMALLINT", 32767), ("INT", -2**31),
    ("BIGINT", 2**63 - 1),
    ("DECIMAL(12,2)", decimal.Decimal("-1234567890.12")),
    ("DECIMAL(65,30)",
     decimal.Decimal("-12345678901234567890123456789012345.123456789012345678901234567891")),
    ("DECIMAL(20,0)", decimal.Decimal(2**64 - 1)),
    ("FLOAT", 0.1), ("DOUBLE", 1 / 3), ("STRING", 'said "hi",\n\tthen \\ left\x01 ünï 😀'),
    ("VARCHAR(10)", ""), ("BYTES", b"\x00\xff\n,\"\x00"), ("DATE", dt.date(2024, 2, 29)),
    ("TIME(0)", dt.timedelta(hours=-838, minutes=-59, seconds=-59)),
    ("TIME(6)", dt.timedelta(hours=25, microseconds=5)),
    ("TIMESTAMP(3)", dt.datetime(2024, 1, 2, 3, 4, 5, 123000)),
    ("TIMESTAMP(6)", dt.datetime(1969, 12, 31, 23, 59, 59, 999999)),
    ("TIMESTAMP_LTZ(6)", dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
    ("JSON", '{"a":[1,2,{"b":null}],"c":"x"}'), ("ARRAY<STRING>", ["x", None, 'y"z']),
    ("ARRAY<BIGINT>", [1, 2]), ("ARRAY<DATE>", [dt.date(2020, 1, 1)]),
]
SCHEMA = TableSchema("db.t", tuple(Column(f"c{i}", T(t)) for i, (t, _) in enumerate(VALUES)))
ARROW = annotated_arrow_schema(SCHEMA)


def _table(rows: int) -> pa.Table:
    """Rows alternating the hard values and nulls."""
    cols = [pa.array([v if r % 2 == 0 else None for r in range(rows)], f.type)
            for (_, v), f in zip(VALUES, ARROW)]
    return pa.Table.from_arrays(cols, schema=ARROW)


def _write(fmt: FileFormat, path: Path, table: pa.Table, pieces: int = 3) -> None:
    with open(path, "wb") as f:
        w = fmt.open_writer(f, table.schema)
        step = max(1, table.num_rows // pieces)
        for i in range(0, table.num_rows, step):
            w.write(table.slice(i, step))
        w.close()


def _read_all(fmt: FileFormat, path: Path, schema: pa.Schema, progress: int = 0,
              batch_rows: int = 4) -> tuple[pa.Table, list[int]]:
    batches, marks = [], []
    with fmt.open_reader(str(path), schema, progress, batch_rows=batch_rows) as r:
        while (chunk := r.read()) is not None:
            batches.append(chunk.batch)
            marks.append(chunk.progress)
    return pa.Table.from_batches(batches, schema=schema), marks


@pytest.mark.parametrize("name", FORMATS)
def test_every_type_round_trips_exactly(tmp_path: Path, name: str) -> None:
    fmt = resolve_format(name, {"row-group-size": 5} if name == "parquet" else {})
    table = _table(20)
    path = tmp_path / f"x.{name}"
    _write(fmt, path, table)
    back, marks = _read_all(fmt, path, ARROW)
    assert back.equals(table)
    assert len(marks) > 2 and marks == sorted(marks)


@pytest.mark.parametrize("name", FORMATS)
def test_resume_from_every_progress_reads_exactly_the_rest(tmp_path: Path, name: str) -> None:
    fmt = resolve_format(name, {"row-group-size": 4} if name == "parquet" else {})
    table = _table(23)
    path = tmp_path / f"x.{name}"
    _write(fmt, path, table)
    resume_points = [(0, 0)]  # (progress, rows before it)
    with fmt.open_reader(str(path), ARROW, batch_rows=3) as r:
        while (chunk := r.read()) is not None:
            resume_points.append((chunk.progress, resume_points[-1][1] + chunk.batch.num_rows))
    assert len(resume_points) > 5
    for progress, before in resume_points:
        rest, _ = _read_all(fmt, path, ARROW, progress=progress, batch_rows=3)
        assert rest.equals(table.slice(before)), f"from progress {progress}"


def test_parquet_inference_is_exact_with_annotations(tmp_path: Path) -> None:
    fmt = resolve_format("parquet")
    path = tmp_path / "x.parquet"
    _write(fmt, path, _table(2))
    inferred = fmt.infer_schema(str(path))
    assert [str(logical_type(f)) for f in inferred] == [str(c.type) for c in SCHEMA.columns]


def test_parquet_without_annotations_keeps_arrow_types(tmp_path: Path) -> None:
    fmt = resolve_format("parquet")
    plain = pa.Table.from_arrays(_table(2).columns, schema=SCHEMA.arrow_schema)
    path = tmp_path / "x.parquet"
    _write(fmt, path, plain)
    back, _ = _read_all(fmt, path, SCHEMA.arrow_schema)
    assert back.equals(plain)
    types = [logical_type(f) for f in fmt.infer_schema(str(path))]
    # DECIMAL(65,30) (decimal256), TIME (duration) and TIMESTAMP_LTZ survive without metadata
    assert str(types[6]) == "DECIMAL(65,30)" and types[14].kind == "TIME"
    assert str(types[18]) == "TIMESTAMP_LTZ(6)"


@pytest.mark.parametrize("name", ["jsonl", "csv"])
def test_text_inference_is_a_guess_documented_as_lossy(tmp_path: Path, name: str) -> None:
    fmt = resolve_format(name)
    path = tmp_path / f"x.{name}"
    _write(fmt, path, _table(4))
    inferred = {f.name: logical_type(f) for f in fmt.infer_schema(str(path))}
    assert inferred["c0"].kind == "BOOLEAN" and inferred["c4"].kind == "BIGINT"
    assert inferred["c10"].kind == "STRING" and inferred["c9"].kind == "DOUBLE"
    assert inferred["c12"].kind == "STRING"  # bytes come back as their base64 text
