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


def test_a_column_of_distinct_values_gives_up_its_dictionary_early(tmp_path: Path) -> None:
    """Distinct names outgrow a small dictionary page and go on in plain encoding (Arrow's
    own limit, 1 MB, would have built a dictionary of all 60,000 names, ~1 MB); few distinct
    values keep theirs."""
    path = tmp_path / "x.parquet"
    schema = annotated_arrow_schema(TableSchema("db.t", (Column("name", T("STRING")),
                                                         Column("status", T("STRING")))))
    fmt = resolve_format("parquet", {"dictionary-page-size": 16 * 1024, "compression": "none"})
    with open(path, "wb") as f:
        w = fmt.open_writer(f, schema)
        w.write(pa.table({"name": [f"name number {i:08d}" for i in range(60_000)],
                          "status": ["paid", "shipped", "pending"] * 20_000}, schema=schema))
        w.close()
    group = pq.ParquetFile(path).metadata.row_group(0)

    def dictionary_bytes(c: int) -> int:
        col = group.column(c)
        return col.data_page_offset - col.dictionary_page_offset

    assert dictionary_bytes(0) < 32 * 1024  # ~1.3 MB of names: fell back at the limit
    assert 0 < dictionary_bytes(1) < 1024
    assert pq.read_table(path).column("name").to_pylist()[-1] == "name number 00059999"
