"""Every expression family of [[transform]] on Arrow columns: values, SQL NULL semantics and
type errors (found on an empty batch, before data flows)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from runtime.transform.expr import Env, ExprError, compile_expr, parse


def ev(sql: str, **cols: list[Any]) -> list[Any]:
    n = len(next(iter(cols.values()))) if cols else 1
    env = Env(n, {k: pa.array(v) for k, v in cols.items()})
    return compile_expr(parse(sql)).evaluate(env).to_pylist()


def type_of(sql: str, **types: pa.DataType) -> pa.DataType:
    return compile_expr(parse(sql)).output_type(pa.schema(list(types.items())), {})


@pytest.mark.parametrize("sql, a, b, want", [
    ("a + b", [1, None, 3], [1, 1, None], [2, None, None]),
    ("a - b * 2", [5, 1, 0], [1, 2, 3], [3, -3, -6]),
    ("a / b", [7, -7, 1, None], [2, 2, 0, 1], [3, -3, None, None]),  # truncates; x/0 is NULL
    ("MOD(a, b)", [7, -7, 1, 4], [2, 2, 0, None], [1, -1, None, None]),
    ("a % b", [7, 9, 1, 4], [2, 4, 0, 3], [1, 1, None, 1]),
    ("-a", [1, None, -3, 0], [0, 0, 0, 0], [-1, None, 3, 0]),
    ("ABS(a) + FLOOR(b)", [-1, 2, None, 0], [1, 2, 3, 4], [2, 4, None, 4]),
])
def test_arithmetic(sql: str, a: list, b: list, want: list) -> None:
    assert ev(sql, a=a, b=b) == want


def test_decimal_and_float_arithmetic() -> None:
    assert ev("a * 2", a=[Decimal("1.25"), None]) == [Decimal("2.50"), None]
    assert ev("a * 2.5", a=[2, None]) == [5.0, None]
    assert ev("ROUND(a, 1)", a=[1.25, 2.35, None]) == [1.3, 2.4, None]


def test_integer_overflow_is_an_error_not_a_wrapped_value() -> None:
    with pytest.raises(ExprError, match="overflow"):
        ev("a + 1", a=[2**63 - 1])


def test_comparisons_are_null_when_a_side_is_null() -> None:
    assert ev("a > b", a=[2, 1, None], b=[1, 1, 1]) == [True, False, None]
    assert ev("a = b", a=[1, None], b=[1, None]) == [True, None]
    assert ev("a <> b", a=[1, 2], b=[1, 1]) == [False, True]
    assert ev("a = NULL", a=[1, None]) == [None, None]
    assert ev("a BETWEEN 1 AND 2", a=[1, 5, None]) == [True, False, None]


def test_three_valued_logic() -> None:
    t, f, n = True, False, None
    a = [t, t, t, f, f, f, n, n, n]
    b = [t, f, n, t, f, n, t, f, n]
    assert ev("a AND b", a=a, b=b) == [t, f, n, f, f, f, n, f, n]
    assert ev("a OR b", a=a, b=b) == [t, t, t, t, f, n, t, n, n]
    assert ev("NOT a", a=[t, f, n]) == [f, t, n]


def test_is_null_in_and_like() -> None:
    assert ev("a IS NULL", a=[1, None]) == [False, True]
    assert ev("a IS NOT NULL", a=[1, None]) == [True, False]
    assert ev("a IN (1, 2)", a=[1, 3, None]) == [True, False, None]
    # SQL: x IN (1, NULL) is NULL, not FALSE, when x is not 1
    assert ev("a IN (1, NULL)", a=[1, 3]) == [True, None]
    assert ev("a NOT IN (1, 2)", a=[1, 3, None]) == [False, True, None]
    assert ev("s LIKE 'ab%'", s=["abc", "xab", None]) == [True, False, None]
    assert ev("s LIKE 'a_c'", s=["abc", "abbc"]) == [True, False]


def test_strings() -> None:
    assert ev("UPPER(s) || '-' || LOWER(s)", s=["aB", None]) == ["AB-ab", None]
    assert ev("CONCAT(s, '#', n)", s=["x", "y"], n=[1, None]) == ["x#1", None]
    assert ev("UPPER(s)", s=["héllo", "é", None]) == ["HÉLLO", "É", None]  # not ASCII
    sliced = pa.array(["é", "ab", "cd"]).slice(1, 2)  # ASCII in the slice, not the buffer
    assert compile_expr(parse("LOWER(UPPER(s))")).evaluate(
        Env(2, {"s": sliced})).to_pylist() == ["ab", "cd"]
    assert ev("TRIM(s)", s=["  a ", None]) == ["a", None]
    assert ev("CHAR_LENGTH(s)", s=["héllo", ""]) == [5, 0]
    assert ev("SUBSTR(s, 2, 3)", s=["abcdef", "a"]) == ["bcd", ""]
    assert ev("SUBSTRING(s, 3)", s=["abcdef"]) == ["cdef"]
    assert ev("REPLACE(s, 'a', 'o')", s=["banana"]) == ["bonono"]
    assert ev("REGEXP_REPLACE(s, '[0-9]+', '#')", s=["a12b3"]) == ["a#b#"]


def test_dates_and_times() -> None:
    t = [dt.datetime(2024, 3, 9, 14, 5, 6), None]
    assert ev("YEAR(t)", t=t) == [2024, None]
    assert ev("MONTH(t) * 100 + DAY(t)", t=t) == [309, None]
    assert ev("HOUR(t) + MINUTE(t) + SECOND(t)", t=t) == [25, None]
    assert ev("DATE_FORMAT(t, 'yyyy-MM-dd HH:mm')", t=t) == ["2024-03-09 14:05", None]
    assert ev("TO_DATE(s)", s=["2024-01-31", None]) == [dt.date(2024, 1, 31), None]
    assert ev("TO_TIMESTAMP(s, 'yyyy/MM/dd HH:mm:ss')", s=["2024/01/31 10:00:00"]) == [
        dt.datetime(2024, 1, 31, 10)]
    assert ev("FROM_UNIXTIME(n)", n=[0])[0] == dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def test_time_of_evaluation() -> None:
    now = dt.datetime.now(dt.timezone.utc)
    [got] = ev("CURRENT_TIMESTAMP", a=[1])
    assert abs((got - now).total_seconds()) < 60
    assert ev("YEAR(NOW()) >= 2024", a=[1, 2]) == [True, True]
    assert ev("CURRENT_DATE", a=[1]) == [dt.date.today()]
    assert ev("LOCALTIMESTAMP", a=[1])[0].tzinfo is None


def test_case_if_coalesce_nullif() -> None:
    a = [1, 2, None, 5]
    assert ev("CASE WHEN a = 1 THEN 'one' WHEN a > 3 THEN 'big' ELSE 'other' END", a=a) == [
        "one", "other", "other", "big"]  # a NULL condition is not TRUE
    assert ev("CASE a WHEN 1 THEN 10 WHEN 2 THEN 20 END", a=a) == [10, 20, None, None]
    assert ev("IF(a > 1, a, 0)", a=a) == [0, 2, 0, 5]
    assert ev("COALESCE(a, 0)", a=a) == [1, 2, 0, 5]
    assert ev("COALESCE(NULL, a, 7)", a=a) == [1, 2, 7, 5]
    assert ev("NULLIF(a, 2)", a=a) == [1, None, None, 5]


def test_cast_and_try_cast() -> None:
    assert ev("CAST(s AS INT)", s=["1", " 2", None]) == [1, 2, None]
    assert ev("CAST(s AS DECIMAL(10,2))", s=["1.5"]) == [Decimal("1.50")]
    assert ev("CAST(n AS STRING)", n=[1, None]) == ["1", None]
    assert ev("CAST(s AS DATE)", s=["2024-02-29"]) == [dt.date(2024, 2, 29)]
    with pytest.raises(ExprError, match="cannot be cast.*TRY_CAST"):
        ev("CAST(s AS INT)", s=["1", "x"])
    assert ev("TRY_CAST(s AS INT)", s=["1", "x", None, "99999999999", "-3"]) == [
        1, None, None, None, -3]
    assert ev("TRY_CAST(s AS DOUBLE)", s=["1.5", "1e3", "nope"]) == [1.5, 1000.0, None]
    assert ev("TRY_CAST(s AS DATE)", s=["2024-01-31", "31/01/2024"]) == [
        dt.date(2024, 1, 31), None]
    assert ev("TRY_CAST(n AS TINYINT)", n=[1, 300, -129]) == [1, None, None]


def test_json_value() -> None:
    j = ['{"a": {"b": 1}, "c": "x"}', None, "[1, 2]", '{"a": {"b": "two"}}', '{"c": 1}',
         '{"a": {"b": {"deep": 1}}}']
    assert ev("JSON_VALUE(j, '$.c')", j=j) == ["x", None, None, None, "1", None]
    # values of different types per row: still right (read row by row for that batch)
    assert ev("JSON_VALUE(j, '$.a.b')", j=j) == ["1", None, None, "two", None, None]
    assert ev("JSON_VALUE(j, '$.a.b')", j=['{"a":{"b":true}}', '{"a":{"b":2.5}}']) == [
        "true", "2.5"]
    sliced = pa.array(['{"a": 1}', '{"a": 2}', '{"a": 3}', '{"a": 4}']).slice(1, 2)
    env = Env(2, {"j": sliced})
    assert compile_expr(parse("JSON_VALUE(j, '$.a')")).evaluate(env).to_pylist() == ["2", "3"]
    with pytest.raises(ExprError, match="only \\$.key"):
        ev("JSON_VALUE(j, '$[0]')", j=["[1]"])


def test_literals_broadcast_to_the_batch() -> None:
    assert ev("'x'", a=[1, 2]) == ["x", "x"]
    assert ev("NULL", a=[1, 2]) == [None, None]
    assert ev("1 + 2", a=[1, 2]) == [3, 3]


def test_identifiers_quoted_with_backticks_or_double_quotes() -> None:
    env = Env(1, {"a b": pa.array([2]), "x": pa.array([3])})
    assert compile_expr(parse("`a b` * \"x\"")).evaluate(env).to_pylist() == [6]


@pytest.mark.parametrize("sql, types, match", [
    ("s > 1", {"s": pa.string()}, "type error: greater is not defined for \\(string, int64\\)"),
    ("UPPER(n)", {"n": pa.int64()}, "type error: utf8_upper"),
    ("n + s", {"n": pa.int64(), "s": pa.string()}, "type error"),
    ("YEAR(s)", {"s": pa.string()}, "type error: year"),
    ("IF(n > 1, n, 'x')", {"n": pa.int64()}, "cannot be cast|type error"),
])
def test_type_errors_show_on_an_empty_batch(sql: str, types: dict, match: str) -> None:
    with pytest.raises(ExprError, match=match):
        type_of(sql, **types)


def test_result_types() -> None:
    assert type_of("n * 2", n=pa.int32()) == pa.int64()
    assert type_of("n > 2", n=pa.int32()) == pa.bool_()
    assert type_of("CAST(n AS DECIMAL(12,3))", n=pa.int32()) == pa.decimal128(12, 3)
    assert type_of("DATE_FORMAT(t, 'yyyy')", t=pa.timestamp("us")) == pa.string()


def test_unknown_function_and_column_and_arity() -> None:
    with pytest.raises(ExprError, match="unknown function FOO"):
        compile_expr(parse("FOO(a)"))
    with pytest.raises(ExprError, match="unknown function UPPPER; did you mean 'UPPER'"):
        compile_expr(parse("UPPPER(a)"))
    with pytest.raises(ExprError, match="unknown column 'amout'; did you mean 'amount'"):
        compile_expr(parse("amout + 1"), known={"amount", "id"})
    with pytest.raises(ExprError, match="SUBSTR takes 2 to 3 arguments, not 1"):
        compile_expr(parse("SUBSTR(a)"))
    with pytest.raises(ExprError, match="cannot parse"):
        parse("a +* 2")
