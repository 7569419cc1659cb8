"""The json format reads values exactly on each of its paths: the fast path with either
columnar reader (polars when installed, pyarrow.json) and the general path (one json.loads per
message).  A value a column can't carry is a bad message whose reason names the column."""
from __future__ import annotations

import json
from decimal import Decimal, localcontext

import pyarrow as pa
import pytest

import formats.message.json as jm
from formats.codec.text import decode_text
from formats.message.envelope import EnvelopeDecoder
from formats.registry import resolve_message_format

COLUMNS = {"id": "BIGINT", "d": "DECIMAL(38,10)", "m": "DECIMAL(12,2)"}
#: the most digits each column takes, negative, exponent notation, the smallest step
GOOD = [(1, "9999999999999999999999999999.9999999999", "9999999999.99"),
        (2, "-9999999999999999999999999999.9999999999", "-9999999999.99"),
        (3, "1.5E3", "-2.5e-1"),
        (4, "0.0000000001", "0.01"),
        (5, None, "-0")]


@pytest.fixture(params=["polars", "pyarrow.json"])
def reader(request, monkeypatch):
    """The fast path's columnar reader: polars when installed, else pyarrow.json."""
    if request.param == "pyarrow.json":
        monkeypatch.setitem(jm._POLARS, "pl", None)
    else:
        pytest.importorskip("polars")
        jm._POLARS.pop("pl", None)
    return request.param


def _decoder():
    return resolve_message_format("json", {"columns": COLUMNS, "primary-key": ["id"]}).decoder()


def _values(rows) -> list[bytes]:
    return [json.dumps({"id": i, "d": d, "m": m}).encode() for i, d, m in rows]


def _expected(rows):
    with localcontext() as ctx:
        ctx.prec = 80  # 38 digits: more than the default context keeps
        return [(i, None if d is None else Decimal(d).quantize(Decimal("1e-10")),
                 Decimal(m).quantize(Decimal("0.01"))) for i, d, m in rows]


def test_decimal_texts_read_exactly_on_the_fast_and_the_general_path(reader):
    values = _values(GOOD)
    dec = _decoder()
    fast = dec._fast(values, [0] * len(values), "t")
    assert fast is not None  # one columnar read
    general = EnvelopeDecoder.decode(_decoder(), [None] * len(values), values,
                                     [0] * len(values), "t")
    for out in (fast, general):
        assert out.bad == []
        (batch,) = out.elements
        assert batch.rows() == _expected(GOOD)


def test_decimals_written_as_json_numbers_read_exactly_by_the_general_path(reader):
    """No columnar reader carries a JSON number's digits into a decimal (polars reads it
    through a double: 1234567890123456789012345678.9012345678 would come out as
    1234567890123456800000000000): the fast path declines and the general path reads the
    number's text."""
    values = [b'{"id": 1, "d": 1234567890123456789012345678.9012345678, "m": -1.5e3}',
              b'{"id": 2, "d": 0.1000000000, "m": 12.30}']
    dec = _decoder()
    assert dec._fast(values, [0, 0], "t") is None
    out = dec.decode([None, None], values, [0, 0], "t")
    assert out.bad == []
    assert out.elements[0].rows() == [
        (1, Decimal("1234567890123456789012345678.9012345678"), Decimal("-1500.00")),
        (2, Decimal("0.1000000000"), Decimal("12.30"))]


@pytest.mark.parametrize("row", [
    (9, "1234567890123456789012345678901.5", "1"),  # 41 digits at scale 10: wrapped round
    (9, "1", "12345678901.5"),  # precision 12
    (9, "1", "0.001"),  # scale 2
    (9, "1", "1e10"),  # 13 digits at scale 2
    (9, 1e30, "1"),  # a JSON number
    (9, "1", "12.5x"),
], ids=["overflow-128-bits", "precision", "scale", "exponent", "number", "not-a-number"])
def test_a_decimal_that_does_not_fit_is_a_bad_message_naming_its_column(reader, row):
    rows = GOOD[:2] + [row] + GOOD[2:]
    values = _values(rows)
    dec = _decoder()
    assert dec._fast(values, [0] * len(values), "t") is None  # never read through silently
    out = dec.decode([None] * len(values), values, [0] * len(values), "t")
    ((index, reason),) = out.bad
    column = "m" if row[1] == "1" else "d"
    assert index == 2 and f"column {column!r}" in reason and "\n" not in reason
    assert [r for b in out.elements for r in b.rows()] == _expected(GOOD)


def test_decimal_text_cast_does_not_wrap_round():
    """Arrow's cast straight from text to decimal128 wrapped this one round
    (9551369208078320544197092147.1344387584)."""
    with pytest.raises(ValueError, match="precision 38"):
        decode_text(pa.array(["1234567890123456789012345678901.5"]), pa.decimal128(38, 10))
    assert decode_text(pa.array(["-1.5E3", None]), pa.decimal128(38, 10)).to_pylist() == [
        Decimal("-1500.0000000000"), None]


def test_small_integers_read_by_polars_without_a_panic(reader):
    """polars' 8 and 16 bit integer readers panic (a BaseException, not a polars error): they
    are read as 32 bit integers and cast exactly; a value out of range is a bad message."""
    fmt = resolve_message_format("json", {"columns": {"id": "BIGINT", "t": "TINYINT",
                                                      "s": "SMALLINT"}, "primary-key": ["id"]})
    values = [b'{"id": 1, "t": -128, "s": 32767}', b'{"id": 2, "t": 127, "s": null}']
    fast = fmt.decoder()._fast(values, [0, 0], "t")
    assert fast is not None and fast.elements[0].rows() == [(1, -128, 32767), (2, 127, None)]
    bad = values + [b'{"id": 3, "t": 128, "s": 1}']
    out = fmt.decoder().decode([None] * 3, bad, [0] * 3, "t")
    assert [i for i, _ in out.bad] == [2] and "column 't'" in out.bad[0][1]


def test_a_lone_surrogate_is_not_read_as_nul(reader):
    """polars reads a lone high surrogate escape as U+0000: the others refuse it, so the
    message is bad on every path (a surrogate pair is a character like any other)."""
    fmt = resolve_message_format("json", {"columns": {"id": "BIGINT", "v": "STRING"},
                                          "primary-key": ["id"]})
    values = [b'{"id": 1, "v": "\\ud83d\\ude00"}', b'{"id": 2, "v": "a\\ud800b"}']
    assert fmt.decoder()._fast(values[:1], [0], "t").elements[0].rows() == [(1, "\U0001F600")]
    out = fmt.decoder().decode([None, None], values, [0, 0], "t")
    assert [i for i, _ in out.bad] == [1]
    assert out.elements[0].rows() == [(1, "\U0001F600")]


def test_a_topic_with_decimals_as_json_numbers_stays_on_the_general_path(reader):
    """Once a take showed decimals written as JSON numbers, the topic's next takes go to the
    general path at once (no columnar read that is bound to fail), still exact."""
    dec = _decoder()
    numbers = [b'{"id": 1, "d": 1.5, "m": 2.25}']
    assert dec._fast(numbers, [0], "t") is None
    strings = _values(GOOD)
    assert dec._fast(strings, [0] * len(strings), "t") is None
    assert dec._fast(strings, [0] * len(strings), "other") is not None  # per topic
    out = dec.decode([None] * len(strings), strings, [0] * len(strings), "t")
    assert out.bad == [] and out.elements[0].rows() == _expected(GOOD)
    # an array where a decimal text should be is a bad message, not a reason to give up
    dec = _decoder()
    assert dec._fast([b'{"id": 1, "d": [1], "m": "1"}'], [0], "t") is None
    assert dec._fast(strings, [0] * len(strings), "t") is not None
