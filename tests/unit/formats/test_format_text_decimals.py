"""CSV and JSON lines read declared DECIMAL columns exactly: a value a column can't carry
(too many digits, a scale that would need rounding, beyond 128 or 256 bits, no number) is a bad
record naming the file, the line and the column, never a changed value."""
from __future__ import annotations

import json
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from formats.codec.text import parse_decimal
from formats.file.base import annotated_arrow_schema
from formats.registry import resolve_format
from runtime.errors import BadRecordError
from runtime.schema import Column, TableSchema
from runtime.types import T

SCHEMA = annotated_arrow_schema(TableSchema("db.t", (
    Column("id", T("BIGINT")), Column("d", T("DECIMAL(38,10)")), Column("m", T("DECIMAL(12,2)")))))
#: the most digits each column takes, negatives, exponent notation, the smallest step, null
GOOD = [(1, "9999999999999999999999999999.9999999999", "9999999999.99"),
        (2, "-9999999999999999999999999999.9999999999", "-9999999999.99"),
        (3, "1.5E3", "-2.5e-1"),
        (4, "0.0000000001", "0.01"),
        (5, None, "-0"),
        (6, "12345678901234567890123456789012345678e-10", "1e9")]
#: (column, value, what pyarrow 26's own decimal conversion made of it, when it did not fail)
BAD = {
    "overflow-128-bits": ("d", "1234567890123456789012345678901.5"),  # -> 9551369208...
    "precision": ("m", "12345678901.5"),  # -> 12345678901.50, 14 digits in DECIMAL(12,2)
    "scale": ("m", "0.001"),  # would need rounding
    "exponent": ("m", "1e10"),  # 13 digits at scale 2
    "overflow-256-bits": ("d", str(2**256 + 5)),  # Arrow's text parse alone made it 5
    "not-a-number": ("m", "12.5x"),
}


def _expected(rows: list[tuple]) -> list[dict]:
    with localcontext() as ctx:
        ctx.prec = 80
        return [{"id": i, "d": None if d is None else Decimal(d).quantize(Decimal("1e-10")),
                 "m": None if m is None else Decimal(m).quantize(Decimal("0.01"))}
                for i, d, m in rows]


def _csv(rows: list[tuple]) -> bytes:
    cell = lambda v: "" if v is None else str(v)  # noqa: E731 - empty unquoted: null
    return ("id,d,m\n" + "".join(f"{i},{cell(d)},{cell(m)}\n" for i, d, m in rows)).encode()


def _jsonl(rows: list[tuple], numbers: bool = False) -> bytes:
    def value(v: Any) -> str:
        return "null" if v is None else v if numbers else json.dumps(v)
    return "".join(f'{{"id": {i}, "d": {value(d)}, "m": {value(m)}}}\n'
                   for i, d, m in rows).encode()


def _read(name: str, path: Path, bad: list | None = None, batch_rows: int = 1000,
          schema: pa.Schema = SCHEMA) -> list[dict]:
    handler = None if bad is None else (lambda err, rec: bad.append((str(err), rec)))
    rows: list[dict] = []
    fmt = resolve_format(name, {})
    with fmt.open_reader(str(path), schema, batch_rows=batch_rows, on_bad_record=handler) as r:
        while (chunk := r.read()) is not None:
            rows += chunk.batch.to_pylist()
    return rows


FILES = {"csv": _csv, "jsonl": _jsonl,
         "jsonl-numbers": lambda rows: _jsonl(rows, numbers=True)}


@pytest.mark.parametrize("kind", sorted(FILES))
def test_decimals_read_exactly(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"x.{kind.split('-')[0]}"
    path.write_bytes(FILES[kind](GOOD))
    assert _read(kind.split("-")[0], path) == _expected(GOOD)


@pytest.mark.parametrize("kind", sorted(FILES))
@pytest.mark.parametrize("case", sorted(BAD))
def test_a_decimal_that_does_not_fit_is_a_bad_record_naming_file_line_and_column(
        tmp_path: Path, kind: str, case: str) -> None:
    name = kind.split("-")[0]
    column, value = BAD[case]
    if kind == "jsonl-numbers" and case == "not-a-number":
        value = json.dumps(value)  # no JSON number: a string among numbers
    row = (9, value, "1") if column == "d" else (9, "1", value)
    rows = GOOD[:2] + [row] + GOOD[2:]
    path = tmp_path / f"x.{name}"
    path.write_bytes(FILES[kind](rows))
    bad: list = []
    assert _read(name, path, bad) == _expected(GOOD)
    ((reason, record),) = bad
    line = 4 if name == "csv" else 3  # the CSV header is line 1
    assert reason.startswith(f"{path}:{line}: ") and f"column {column!r}" in reason
    assert "\n" not in reason and b"9," in record
    with pytest.raises(BadRecordError, match=rf"x\.{name}:{line}: .*column {column!r}"):
        _read(name, path)


def test_csv_nulls_empty_strings_and_padding(tmp_path: Path) -> None:
    """An unquoted empty field is null; a quoted one is an empty string, no decimal; spaces
    and tabs around a number are allowed (as Arrow's CSV reader allows them for numbers)."""
    path = tmp_path / "x.csv"
    path.write_bytes(b'id,d,m\n1,,\n2,"",1\n3, 1.5 ,\t-2\t\n')
    bad: list = []
    assert _read("csv", path, bad) == _expected([(1, None, None), (3, "1.5", "-2")])
    ((reason, record),) = bad
    assert f"{path}:3:" in reason and "column 'd'" in reason and record == b'2,"",1\n'


def test_jsonl_nulls_missing_keys_and_empty_strings(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"id": 1, "d": null}\n{"id": 2, "d": "", "m": "1"}\n{"id": 3}\n'
                     b'{"id": 4, "d": true}\n')
    bad: list = []
    assert _read("jsonl", path, bad) == _expected([(1, None, None), (3, None, None)])
    assert [r for _, r in bad] == [b'{"id": 2, "d": "", "m": "1"}\n', b'{"id": 4, "d": true}\n']
    # Arrow's JSON reader names the column its own way
    assert "column 'd'" in bad[0][0] and "Column(/d) changed from string to boolean" in bad[1][0]


def test_jsonl_decimals_as_numbers_after_strings_and_in_arrays(tmp_path: Path) -> None:
    """A file whose first blocks hold decimal strings and later ones JSON numbers (integers
    too) reads exactly throughout; so do arrays of decimals written either way."""
    path = tmp_path / "x.jsonl"
    path.write_bytes(_jsonl(GOOD * 3) + _jsonl(GOOD * 3, numbers=True)
                     + b'{"id": 7, "d": 1234567890123456789012345678, "m": -5}\n')
    assert _read("jsonl", path, batch_rows=4) == _expected(
        GOOD * 6 + [(7, "1234567890123456789012345678", "-5")])
    schema = annotated_arrow_schema(TableSchema("db.t", (
        Column("id", T("BIGINT")), Column("a", T("ARRAY<DECIMAL(38,10)>")))))
    path.write_bytes(b'{"id": 1, "a": ["1.5", null, "-1e-10"]}\n'
                     b'{"id": 2, "a": [1234567890123456789012345678.9012345678, 7]}\n')
    assert _read("jsonl", path, schema=schema) == [
        {"id": 1, "a": [Decimal("1.5000000000"), None, Decimal("-1E-10")]},
        {"id": 2, "a": [Decimal("1234567890123456789012345678.9012345678"),
                        Decimal("7.0000000000")]}]
    path.write_bytes(b'{"id": 1, "a": [1234567890123456789012345678901.5]}\n')
    with pytest.raises(BadRecordError, match=r"x\.jsonl:1: .*column 'a'"):
        _read("jsonl", path, schema=schema)


@pytest.mark.parametrize("text, target", [
    (str(2**256 + 5), (38, 0)),  # main's parse through decimal256 made it 5
    ("-" + str(2**256 + 5), (38, 0)),
    (f"{2**256 // 10**20 + 1}e20", (38, 0)),  # main: 42415992086870360064
    ("1" * 40, (38, 0)),  # a straight cast to decimal128 wraps these two
    ("1234567890123456789012345678901", (38, 10)),
    ("9" * 29 + "." + "0" * 10, (38, 10)),  # 39 digits at the scale: straight, it wraps
    ("-" + "9" * 29 + "." + "0" * 10, (38, 10)),
    ("3402823669209384634633746074317682114e4", (38, 0)),  # straight: -5600
    ("1e40", (12, 2)), ("1.5e-3", (12, 2)), ("1" * 80, (38, 10)), ("1_0" + "0" * 80, (38, 0)),
    ("1." + "0" * 80 + "1", (38, 10)),  # would need rounding
])
def test_parse_decimal_never_wraps_round(text: str, target: tuple[int, int]) -> None:
    """Arrow's text casts wrap round where the digits or the scaled value overflow their
    integer: each of these is an error, never a value."""
    for texts in ([text], ["1.0000000000", None, text, "-0.5000000000"]):
        with pytest.raises(ValueError):
            parse_decimal(pa.array(texts), pa.decimal128(*target))


def test_parse_decimal_reads_long_texts_and_exponents_that_fit() -> None:
    texts = ["0" * 90 + "1.5", "1." + "0" * 80, "-" + "9" * 28 + "." + "9" * 10 + "0" * 50,
             "1.5E3", "-2.5e-9", "0e999", None, "9" * 28 + "." + "9" * 10]
    assert parse_decimal(pa.array(texts), pa.decimal128(38, 10)).to_pylist() == [
        Decimal("1.5"), Decimal("1"), Decimal("-" + "9" * 28 + "." + "9" * 10),
        Decimal("1500"), Decimal("-2.5e-9"), Decimal(0), None, Decimal("9" * 28 + "." + "9" * 10)]
    assert parse_decimal(pa.array(["-" + "9" * 36 + ".99", "1e2"]).slice(0, 1),
                         pa.decimal128(38, 2)).to_pylist() == [Decimal("-" + "9" * 36 + ".99")]
