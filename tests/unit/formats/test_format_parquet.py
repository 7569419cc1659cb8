"""Parquet specifics: row groups, compression, resuming, conversion errors."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from formats.file.base import annotated_arrow_schema
from formats.registry import resolve_format
from runtime.schema import Column, TableSchema
from runtime.types import T

SCHEMA = annotated_arrow_schema(TableSchema("db.t", (Column("id", T("BIGINT")),
                                                     Column("name", T("STRING")))))


def _write(path: Path, rows: int, writes: int, **options: object) -> None:
    fmt = resolve_format("parquet", options)
    per = rows // writes
    with open(path, "wb") as f:
        w = fmt.open_writer(f, SCHEMA)
        for i in range(writes):
            ids = range(i * per, (i + 1) * per)
            w.write(pa.table({"id": list(ids), "name": [f"n{j}" for j in ids]}, schema=SCHEMA))
        w.close()


def test_small_writes_make_full_row_groups_with_the_chosen_codec(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    _write(path, 30, 10, **{"row-group-size": 8})
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [8, 8, 8, 6]
    assert meta.row_group(0).column(0).compression == "ZSTD"
    _write(path, 10, 2, compression="snappy")
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "SNAPPY"


def test_resume_inside_a_later_row_group(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    _write(path, 100, 4, **{"row-group-size": 10})
    fmt = resolve_format("parquet")
    with fmt.open_reader(str(path), SCHEMA, 57, batch_rows=7) as r:
        first = r.read()
        assert first is not None
        ids = first.batch.column(0).to_pylist()
        assert ids[0] == 57 and first.progress == 57 + len(ids)
        while (chunk := r.read()) is not None:
            ids += chunk.batch.column(0).to_pylist()
    assert ids == list(range(57, 100))


def test_missing_columns_read_as_nulls_and_bad_values_are_isolated(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"id": ["1", "x", "3", None]}), path)
    bad: list = []
    fmt = resolve_format("parquet")
    handler = lambda e, rec: bad.append((str(e), rec))  # noqa: E731
    with fmt.open_reader(str(path), SCHEMA, on_bad_record=handler) as r:
        chunk = r.read()
    assert chunk is not None and chunk.progress == 4
    assert chunk.batch.to_pylist() == [{"id": 1, "name": None}, {"id": 3, "name": None},
                                       {"id": None, "name": None}]
    assert bad == [(f"{path}: row 1: " + bad[0][0].split(": row 1: ")[1], {"id": "x"})]


def _write_names(path: Path, names: list[str], **options: object) -> pq.FileMetaData:
    """``names`` and a status column of three values written by the Parquet format."""
    schema = annotated_arrow_schema(TableSchema("db.t", (Column("name", T("STRING")),
                                                         Column("status", T("STRING")))))
    fmt = resolve_format("parquet", {"compression": "none", **options})
    with open(path, "wb") as f:
        w = fmt.open_writer(f, schema)
        w.write(pa.table({"name": names,
                          "status": (["paid", "shipped", "pending"] * len(names))[:len(names)]},
                         schema=schema))
        w.close()
    assert pq.read_table(path).column("name").to_pylist() == names
    return pq.ParquetFile(path).metadata


def _dictionary_bytes(meta: pq.FileMetaData, c: int) -> int:
    col = meta.row_group(0).column(c)
    if col.dictionary_page_offset is None:
        return 0
    return col.data_page_offset - col.dictionary_page_offset


def test_only_columns_of_few_distinct_values_get_a_dictionary(tmp_path: Path) -> None:
    """Distinct names go plain from the start (no dictionary built and given up on, Arrow's
    default); a status of three values is dictionary-encoded."""
    meta = _write_names(tmp_path / "x.parquet", [f"name number {i:08d}" for i in range(60_000)])
    assert _dictionary_bytes(meta, 0) == 0
    assert 0 < _dictionary_bytes(meta, 1) < 1024


def test_a_dictionary_outgrowing_its_page_limit_goes_on_plain(tmp_path: Path) -> None:
    """Names of few distinct values in the file's first rows get a dictionary; when later
    rows bring distinct ones, it stops at ``dictionary-page-size`` (~1.3 MB of names here)."""
    names = [f"name number {i % 10:08d}" for i in range(10_000)] + \
        [f"name number {i:08d}" for i in range(10_000, 60_000)]
    meta = _write_names(tmp_path / "x.parquet", names, **{"dictionary-page-size": 16 * 1024})
    assert 0 < _dictionary_bytes(meta, 0) < 32 * 1024


def test_dictionary_columns_of_every_hub_type_and_a_null_column() -> None:
    """Each of the hub's Arrow types is counted (none lacks the kernel); a column of Arrow's
    null type, nested ones and booleans get no dictionary without being counted."""
    import datetime
    import decimal

    from formats.file.parquet import dictionary_columns

    n = 100
    few = [i % 3 for i in range(n)]
    t = pa.table({
        "i8": pa.array(few, pa.int8()), "i64": pa.array(range(n), pa.int64()),
        "f32": pa.array([float(v) for v in few], pa.float32()),
        "dec": pa.array([decimal.Decimal(v) for v in few], pa.decimal128(10, 2)),
        "dec256": pa.array([decimal.Decimal(v) for v in few], pa.decimal256(50, 2)),
        "s": pa.array([str(v) for v in few]), "b": pa.array([bytes([v]) for v in few]),
        "d": pa.array([datetime.date(2026, 1, 1 + v) for v in few], pa.date32()),
        "ts": pa.array(range(n), pa.timestamp("us", "UTC")),
        "dur": pa.array(few, pa.duration("us")), "ok": pa.array([v == 0 for v in few]),
        "tags": pa.array([["a"]] * n, pa.list_(pa.string())), "nothing": pa.nulls(n),
    })
    assert dictionary_columns(t) == ["i8", "f32", "dec", "dec256", "s", "b", "d", "dur"]
