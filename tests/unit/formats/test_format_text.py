"""JSON lines and CSV specifics: encodings, escaping, bad records, options."""
from __future__ import annotations

import datetime as dt
import decimal
import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pydantic import ValidationError

from formats.file.base import annotated_arrow_schema
from formats.registry import resolve_format
from runtime.errors import BadRecordError, ConfigError
from runtime.schema import Column, TableSchema
from runtime.types import T


def _schema(**cols: str) -> pa.Schema:
    columns = tuple(Column(k, T(v)) for k, v in cols.items())
    return annotated_arrow_schema(TableSchema("db.t", columns))


def _written(name: str, table: pa.Table, **options: Any) -> bytes:
    buf = io.BytesIO()
    w = resolve_format(name, options).open_writer(buf, table.schema)
    w.write(table)
    w.close()
    return buf.getvalue()


def _read(name: str, path: Path, schema: pa.Schema, bad: list | None = None,
          batch_rows: int = 1000, **options: Any) -> list[dict]:
    handler = None if bad is None else (lambda err, rec: bad.append((str(err), rec)))
    rows: list[dict] = []
    fmt = resolve_format(name, options)
    with fmt.open_reader(str(path), schema, batch_rows=batch_rows, on_bad_record=handler) as r:
        while (chunk := r.read()) is not None:
            rows += chunk.batch.to_pylist()
    return rows


# -- jsonl --------------------------------------------------------------------------------------
def test_jsonl_lines_are_json_objects_with_documented_encodings() -> None:
    schema = _schema(id="BIGINT", amount="DECIMAL(10,2)", f="DOUBLE", s="STRING", doc="JSON",
                     at="TIMESTAMP(6)", ltz="TIMESTAMP_LTZ(6)", b="BYTES", t="TIME(6)", d="DATE")
    row = {"id": 1, "amount": decimal.Decimal("12.50"), "f": float("nan"), "s": "a\"\\\n\x02é",
           "doc": '{"k": [1, true]}', "at": dt.datetime(2024, 5, 6, 7, 8, 9, 10),
           "ltz": dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc), "b": b"\xff\x00",
           "t": dt.timedelta(hours=30, seconds=1), "d": dt.date(2024, 5, 6)}
    nulls = {k: None for k in row}
    out = _written("jsonl", pa.Table.from_pylist([row, nulls], schema=schema))
    lines = out.decode().splitlines()
    assert len(lines) == 2 and lines[0].startswith('{"id":1,"amount":"12.50",')
    assert json.loads(lines[0]) == {
        "id": 1, "amount": "12.50", "f": None, "s": "a\"\\\n\x02é", "doc": {"k": [1, True]},
        "at": "2024-05-06T07:08:09.000010", "ltz": "2024-05-06T07:08:09.000000Z", "b": "/wA=",
        "t": "30:00:01.000000", "d": "2024-05-06"}
    assert json.loads(lines[1]) == nulls


def test_jsonl_reader_tolerates_missing_extra_keys_blank_lines_and_no_final_newline(
        tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"id": 1, "extra": [1]}\n\n  \n{"name": "b", "id": 2}\n{"id": 3}')
    rows = _read("jsonl", path, _schema(id="BIGINT", name="STRING"))
    assert rows == [{"id": 1, "name": None}, {"id": 2, "name": "b"}, {"id": 3, "name": None}]


def test_jsonl_bad_lines_go_to_the_handler_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"id": 1}\n{"id": 2\n{"id": "three"}\n{"id": 4}\n')
    bad: list = []
    rows = _read("jsonl", path, _schema(id="BIGINT"), bad)
    assert rows == [{"id": 1}, {"id": 4}]
    assert [rec for _, rec in bad] == [b'{"id": 2\n', b'{"id": "three"}\n']
    assert f"{path}:2:" in bad[0][0] and "byte offset 10" in bad[0][0]
    assert f"{path}:3:" in bad[1][0]
    with pytest.raises(BadRecordError, match=r"x\.jsonl:2:"):
        _read("jsonl", path, _schema(id="BIGINT"))


def test_jsonl_json_columns_keep_any_json_value(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"id": 1, "doc": {"a": [1, {"b": 2}]}}\n{"id": 2, "doc": [1, "x"]}\n'
                     b'{"id": 3, "doc": "text"}\n{"id": 4}\n')
    rows = _read("jsonl", path, _schema(id="BIGINT", doc="JSON"))
    assert [r["doc"] for r in rows] == ['{"a":[1,{"b":2}]}', '[1,"x"]', '"text"', None]


def test_jsonl_json_column_with_line_breaks_stays_one_line(tmp_path: Path) -> None:
    schema = _schema(id="BIGINT", doc="JSON")
    docs = ['{\n  "a": "x\\ny",\r\n  "b": [1,\n2]\n}', "[\n]"]
    out = _written("jsonl", pa.Table.from_pylist([{"id": i, "doc": d} for i, d in enumerate(docs)],
                                                 schema=schema))
    path = tmp_path / "x.jsonl"
    path.write_bytes(out)
    assert len(out.splitlines()) == 2
    rows = _read("jsonl", path, schema)
    assert [json.loads(r["doc"]) for r in rows] == [json.loads(d) for d in docs]


# -- csv ----------------------------------------------------------------------------------------
def test_csv_keeps_null_and_empty_string_apart(tmp_path: Path) -> None:
    schema = _schema(s="STRING", n="INT")
    table = pa.Table.from_pylist([{"s": "", "n": None}, {"s": None, "n": 1},
                                  {"s": "NULL", "n": 2}], schema=schema)
    path = tmp_path / "x.csv"
    path.write_bytes(_written("csv", table))
    assert _read("csv", path, schema) == table.to_pylist()


def test_csv_single_column_null_rows_survive(tmp_path: Path) -> None:
    schema = _schema(n="INT")
    table = pa.Table.from_pylist([{"n": 1}, {"n": None}, {"n": 3}], schema=schema)
    path = tmp_path / "x.csv"
    path.write_bytes(_written("csv", table))
    assert _read("csv", path, schema) == table.to_pylist()


def test_csv_quoted_newlines_never_split_a_record_across_blocks(tmp_path: Path) -> None:
    schema = _schema(id="INT", text="STRING")
    rows = [{"id": i, "text": ("line\n" * (i % 7)) + '"q"' * (i % 3)} for i in range(300)]
    path = tmp_path / "x.csv"
    path.write_bytes(_written("csv", pa.Table.from_pylist(rows, schema=schema)))
    assert _read("csv", path, schema, batch_rows=2) == rows


def test_csv_matches_columns_by_header_name(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"\xef\xbb\xbfb,extra,a\nx,1,1\ny,2,2\n")
    assert _read("csv", path, _schema(a="INT", b="STRING", c="DATE")) == [
        {"a": 1, "b": "x", "c": None}, {"a": 2, "b": "y", "c": None}]


def test_csv_options_delimiter_no_header_no_quotes(tmp_path: Path) -> None:
    schema = _schema(a="INT", b="STRING")
    table = pa.Table.from_pylist([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}], schema=schema)
    out = _written("csv", table, delimiter=";", header=False)
    assert out == b'1;"x"\n2;"y"\n'
    path = tmp_path / "x.csv"
    path.write_bytes(b'1;"x\n2;y"\n')
    rows = _read("csv", path, schema, delimiter=";", header=False, **{"quote-char": ""})
    assert rows == [{"a": 1, "b": '"x'}, {"a": 2, "b": 'y"'}]


def test_csv_bad_rows_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b'a,b\n1,x\n2\n"3",y\nfour,z\n5,"multi\nline"\n')
    bad: list = []
    rows = _read("csv", path, _schema(a="INT", b="STRING"), bad)
    assert rows == [{"a": 1, "b": "x"}, {"a": 3, "b": "y"}, {"a": 5, "b": "multi\nline"}]
    assert [rec for _, rec in bad] == [b"2\n", b"four,z\n"]
    assert f"{path}:3:" in bad[0][0] and f"{path}:5:" in bad[1][0]


def test_csv_writer_quotes_only_with_double_quotes() -> None:
    with pytest.raises(ConfigError, match="quote-char"):
        resolve_format("csv", {"quote-char": "'"}).open_writer(io.BytesIO(), _schema(a="INT"))


def test_bad_format_options_are_validation_errors_with_key_paths() -> None:
    # every problem, located under format-options (the hub renders them: hub.problems)
    with pytest.raises(ValidationError) as err:
        resolve_format("csv", {"delimiter": ";;", "header": "maybe", "nope": 1})
    assert [e["loc"] for e in err.value.errors()] == [
        ("format-options", "delimiter"), ("format-options", "header"), ("format-options", "nope")]
    assert err.value.errors()[2]["ctx"] == {"known": ["delimiter", "header", "quote-char"]}
    with pytest.raises(ValidationError) as err:
        resolve_format("parquet", {"compression": "zip"})
    assert [e["loc"] for e in err.value.errors()] == [("format-options", "compression")]


def test_csv_instants_without_offset_are_utc(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"at\n2024-01-01 10:00:00\n2024-01-01T10:00:00+02:00\n"
                     b"2024-01-01T10:00:00.5Z\n")
    utc = dt.timezone.utc
    assert [r["at"] for r in _read("csv", path, _schema(at="TIMESTAMP_LTZ(6)"))] == [
        dt.datetime(2024, 1, 1, 10, tzinfo=utc), dt.datetime(2024, 1, 1, 8, tzinfo=utc),
        dt.datetime(2024, 1, 1, 10, 0, 0, 500000, tzinfo=utc)]
