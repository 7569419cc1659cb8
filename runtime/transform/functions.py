"""The values side of expressions: functions by name, operators' helpers, casts.

Every function takes and returns Arrow arrays or scalars and calls ``pyarrow.compute``
kernels on whole columns (no per-row Python).  :data:`FUNCTIONS` is the table the compiler
(:mod:`.expr`) looks names up in; adding a function is adding a row there.
"""
from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runtime.transform import decimal64
from runtime.transform.errors import ExprError
from runtime.transform.jsonpath import json_value

Value = pa.Array | pa.Scalar


def arrow_message(exc: Exception) -> str:
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    m = re.match(r"Function '(\w+)' has no kernel matching input types \((.*)\)", msg)
    if m:
        return f"type error: {m.group(1)} is not defined for ({m.group(2)})"
    return msg


def unify(a: Value, b: Value) -> tuple[Value, Value]:
    """Make NULL literals take the other side's type (``x = NULL``, ``COALESCE(x, NULL)``),
    and integer literals beside decimals the narrowest decimal holding them (Arrow would make
    ``100`` a DECIMAL(19,0): a wider result, and twice the work)."""
    if pa.types.is_null(a.type) and not pa.types.is_null(b.type):
        a = a.cast(b.type) if isinstance(a, pa.Scalar) else pc.cast(a, b.type)
    elif pa.types.is_null(b.type) and not pa.types.is_null(a.type):
        b = b.cast(a.type) if isinstance(b, pa.Scalar) else pc.cast(b, a.type)
    if pa.types.is_decimal(a.type):
        b = _narrow_int(b)
    elif pa.types.is_decimal(b.type):
        a = _narrow_int(a)
    return a, b


def _narrow_int(v: Value) -> Value:
    if isinstance(v, pa.Scalar) and v.is_valid and pa.types.is_integer(v.type):
        return _decimal_literal(v.as_py())
    return v


@lru_cache(maxsize=1024)
def _decimal_literal(n: int) -> pa.Scalar:
    return pa.scalar(n, pa.decimal128(max(1, len(str(abs(n)))), 0))


def arithmetic(checked: Callable[[Value, Value], Value], plain: Callable[[Value, Value], Value],
               fast: Callable[[Value, Value], pa.Array | None] | None = None
               ) -> Callable[[Value, Value], Value]:
    """``checked`` (integer overflow is an error, never a wrapped value), except on decimals,
    whose result type always holds the exact result (Arrow's checked decimal kernels only
    cost more); ``fast``: a :mod:`.decimal64` path tried first on decimals."""
    def op(a: Value, b: Value) -> Value:
        if pa.types.is_decimal(a.type) or pa.types.is_decimal(b.type):
            if fast is not None and _rows(a, b) >= FAST_PATH_MIN_ROWS:
                out = fast(a, b)
                if out is not None:
                    return out
            return plain(a, b)
        return checked(a, b)
    return op


#: Below this many rows the numpy fast paths of products (:mod:`.decimal64`) and of the
#: ASCII check before UPPER / LOWER cost more than the Arrow kernel they save (2026-12:
#: a 16-row product 9.7 us vs 5.9 us, UPPER 8.9 us vs 3.8 us; even from ~1000 rows).
#: Small batches are what a change stream sends; comparisons win at every size.
FAST_PATH_MIN_ROWS = 512


def _rows(a: Value, b: Value) -> int:
    """The length of the array among ``a``, ``b`` (0 for two scalars)."""
    return len(a) if isinstance(a, pa.Array) else len(b) if isinstance(b, pa.Array) else 0


def comparison(name: str) -> Callable[[Value, Value], Value]:
    """The Arrow comparison ``name`` (``greater`` ...), with the :mod:`.decimal64` path for a
    decimal column against a literal."""
    kernel = getattr(pc, name)

    def op(a: Value, b: Value) -> Value:
        if pa.types.is_decimal(a.type) or pa.types.is_decimal(b.type):
            out = decimal64.compare(name, a, b)
            if out is not None:
                return out
        return kernel(a, b)
    return op


def common(values: list[Value]) -> list[Value]:
    """Values cast to one type (NULLs to the first typed one; numbers widened)."""
    typed = [v.type for v in values if not pa.types.is_null(v.type)]
    if not typed:
        return values
    target = typed[0]
    for t in typed[1:]:
        if t != target:
            target = _wider(target, t)
    return [v if v.type == target else v.cast(target) for v in values]


def _wider(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    num = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal)
    if any(f(a) for f in num) and any(f(b) for f in num):
        if pa.types.is_floating(a) or pa.types.is_floating(b):
            return pa.float64()
        if pa.types.is_decimal(a) or pa.types.is_decimal(b):
            return _wider_decimal(a, b)
        return a if a.bit_width >= b.bit_width else b
    if (pa.types.is_timestamp(a) and pa.types.is_timestamp(b)) and a.tz == b.tz:
        return a if ["s", "ms", "us", "ns"].index(a.unit) >= ["s", "ms", "us", "ns"].index(
            b.unit) else b
    raise ExprError(f"type error: no common type of {a} and {b}")


def _wider_decimal(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    def ps(t: pa.DataType) -> tuple[int, int]:
        if pa.types.is_decimal(t):
            return t.precision, t.scale
        return {8: 3, 16: 5, 32: 10, 64: 19}[t.bit_width], 0
    (pa_, sa), (pb, sb) = ps(a), ps(b)
    scale = max(sa, sb)
    prec = max(pa_ - sa, pb - sb) + scale
    return pa.decimal128(prec, scale) if prec <= 38 else pa.decimal256(min(prec, 76), scale)


def false_if_null(v: Value) -> Value:
    return pc.fill_null(v, False)


def _nonzero(v: Value) -> Value:
    """``v`` with zeros made NULL (SQL division by zero gives NULL here)."""
    if isinstance(v, pa.Scalar):
        return v if not v.is_valid or v.as_py() != 0 else pa.scalar(None, v.type)
    return pc.if_else(pc.equal(v, pa.scalar(0).cast(v.type) if not pa.types.is_decimal(v.type)
                               else pa.scalar(0).cast(v.type)), pa.scalar(None, v.type), v)


def div(a: Value, b: Value) -> Value:
    a, b = unify(a, b)
    return pc.divide(a, _nonzero(b))


def mod(a: Value, b: Value) -> Value:
    a, b = unify(a, b)
    b = _nonzero(b)
    if pa.types.is_integer(a.type) and pa.types.is_integer(b.type):
        return pc.subtract(a, pc.multiply(pc.divide(a, b), b))  # truncating: sign of a
    q = pc.trunc(pc.divide(pc.cast(a, pa.float64()), pc.cast(b, pa.float64())))
    return pc.subtract(a, pc.multiply(q, b))


def _to_string(v: Value) -> Value:
    if pa.types.is_string(v.type) or pa.types.is_large_string(v.type):
        return v
    return v.cast(pa.string()) if isinstance(v, pa.Scalar) else pc.cast(v, pa.string())


def concat(*vs: Value) -> Value:
    return pc.binary_join_element_wise(*[_to_string(v) for v in vs], pa.scalar(""))


def in_list(x: Value, values: list[Value]) -> Value:
    vals = [v for v in values if v.is_valid]
    has_null = len(vals) < len(values)
    if not vals:
        return pa.scalar(None, pa.bool_())
    vset = pa.array([v.as_py() for v in vals])
    if not pa.types.is_null(x.type) and vset.type != x.type:
        vset = vset.cast(x.type)
    found = pc.is_in(x, value_set=vset, skip_nulls=True)
    found = pc.if_else(pc.is_null(x), pa.scalar(None, pa.bool_()), found)
    if has_null:
        found = pc.if_else(found, True, pa.scalar(None, pa.bool_()))
    return found


# Java (Flink's DATE_FORMAT) pattern letters -> strftime
_JAVA_FMT = [("yyyy", "%Y"), ("yy", "%y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"),
             ("mm", "%M"), ("ss", "%S"), ("SSS", "%f")]


def _strftime_pattern(fmt: str) -> str:
    out = fmt
    for java, c in _JAVA_FMT:
        out = out.replace(java, c)
    return out


def _date_format(v: Value, fmt: Value) -> Value:
    if not isinstance(fmt, pa.Scalar):
        raise ExprError("DATE_FORMAT: the format must be a literal")
    if pa.types.is_string(v.type):
        v = pc.cast(v, pa.timestamp("us"))
    return pc.strftime(v, format=_strftime_pattern(fmt.as_py()))


def _to_timestamp(v: Value, fmt: Value | None = None) -> Value:
    if fmt is None:
        return pc.cast(v, pa.timestamp("us"))
    return pc.strptime(v, format=_strftime_pattern(fmt.as_py()), unit="us")


def _to_date(v: Value, fmt: Value | None = None) -> Value:
    return pc.cast(_to_timestamp(v, fmt), pa.date32())


def _substr(s: Value, start: Value, length: Value | None = None) -> Value:
    b = start.as_py()
    b0 = b - 1 if b > 0 else b  # SQL positions start at 1
    if length is None:
        return pc.utf8_slice_codeunits(s, b0)
    return pc.utf8_slice_codeunits(s, b0, b0 + length.as_py())


def _round(x: Value, d: Value | None = None) -> Value:
    return pc.round(x, ndigits=0 if d is None else d.as_py(), round_mode="half_up")


def _from_unixtime(v: Value) -> Value:
    return pc.cast(pc.multiply(pc.cast(v, pa.int64()), 1000),
                   pa.timestamp("ms", tz="UTC"))


def _is_ascii(v: pa.Array) -> bool:
    """Whether every byte of a string column is ASCII (one scan of its data buffer)."""
    if not pa.types.is_string(v.type) or v.buffers()[2] is None:
        return False
    offsets = np.frombuffer(v.buffers()[1], dtype=np.int32)[v.offset:v.offset + len(v) + 1]
    data = np.frombuffer(v.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    return not len(data) or int(data.max()) < 0x80


def _case(v: Value, ascii_fn: Callable[[Value], Value], utf8_fn: Callable[[Value], Value]
          ) -> Value:
    # Arrow's UTF-8 case mapping costs ~40x its ASCII one; most columns are ASCII
    if isinstance(v, pa.Array) and len(v) >= FAST_PATH_MIN_ROWS and _is_ascii(v):
        return ascii_fn(v)
    return utf8_fn(v)


def _literal_arg(name: str, v: Value) -> Value:
    if not isinstance(v, pa.Scalar):
        raise ExprError(f"{name}: this argument must be a literal")
    return v


#: Functions by upper-case name: (min args, max args, implementation).
FUNCTIONS: dict[str, tuple[int, int, Callable[..., Value]]] = {
    # numbers
    "ABS": (1, 1, pc.abs), "CEIL": (1, 1, pc.ceil), "CEILING": (1, 1, pc.ceil),
    "FLOOR": (1, 1, pc.floor), "ROUND": (1, 2, _round), "MOD": (2, 2, mod),
    "POWER": (2, 2, pc.power), "POW": (2, 2, pc.power), "SQRT": (1, 1, pc.sqrt),
    "LN": (1, 1, pc.ln), "LOG10": (1, 1, pc.log10), "SIGN": (1, 1, pc.sign),
    # strings
    "UPPER": (1, 1, lambda s: _case(s, pc.ascii_upper, pc.utf8_upper)),
    "LOWER": (1, 1, lambda s: _case(s, pc.ascii_lower, pc.utf8_lower)),
    "TRIM": (1, 1, pc.utf8_trim_whitespace), "LTRIM": (1, 1, pc.utf8_ltrim_whitespace),
    "RTRIM": (1, 1, pc.utf8_rtrim_whitespace), "CHAR_LENGTH": (1, 1, pc.utf8_length),
    "CHARACTER_LENGTH": (1, 1, pc.utf8_length), "LENGTH": (1, 1, pc.utf8_length),
    "CONCAT": (1, 99, concat), "SUBSTR": (2, 3, _substr), "SUBSTRING": (2, 3, _substr),
    "REPLACE": (3, 3, lambda s, a, b: pc.replace_substring(
        s, _literal_arg("REPLACE", a).as_py(), _literal_arg("REPLACE", b).as_py())),
    "REGEXP_REPLACE": (3, 3, lambda s, a, b: pc.replace_substring_regex(
        s, _literal_arg("REGEXP_REPLACE", a).as_py(), _literal_arg("REGEXP_REPLACE", b).as_py())),
    # dates and times
    "YEAR": (1, 1, pc.year), "MONTH": (1, 1, pc.month), "DAY": (1, 1, pc.day),
    "DAYOFMONTH": (1, 1, pc.day), "HOUR": (1, 1, pc.hour), "MINUTE": (1, 1, pc.minute),
    "SECOND": (1, 1, pc.second), "DATE_FORMAT": (2, 2, _date_format),
    "TO_TIMESTAMP": (1, 2, _to_timestamp), "TO_DATE": (1, 2, _to_date),
    "FROM_UNIXTIME": (1, 1, _from_unixtime),
    # the time of evaluation (not of the change: that is __op_ts__); a replay after a restart
    # evaluates again, so these differ between a run and its replay
    "CURRENT_TIMESTAMP": (0, 0, lambda: pa.scalar(_dt.datetime.now(_dt.timezone.utc),
                                                  pa.timestamp("us", tz="UTC"))),
    "NOW": (0, 0, lambda: pa.scalar(_dt.datetime.now(_dt.timezone.utc),
                                    pa.timestamp("us", tz="UTC"))),
    "LOCALTIMESTAMP": (0, 0, lambda: pa.scalar(_dt.datetime.now(), pa.timestamp("us"))),
    "CURRENT_DATE": (0, 0, lambda: pa.scalar(_dt.date.today(), pa.date32())),
    # conditionals and JSON
    "NULLIF": (2, 2, lambda a, b: pc.if_else(false_if_null(pc.equal(*unify(a, b))),
                                             pa.scalar(None, a.type), a)),
    "JSON_VALUE": (2, 2, lambda j, p: json_value(j, _literal_arg("JSON_VALUE", p).as_py())),
}

#: sqlglot's own node names for functions it knows (the others arrive as Anonymous)
NODE_NAMES = {"Upper": "UPPER", "Lower": "LOWER", "Trim": "TRIM", "Length": "LENGTH",
               "Concat": "CONCAT", "Substring": "SUBSTR", "Round": "ROUND", "Abs": "ABS",
               "Ceil": "CEIL", "Floor": "FLOOR", "Pow": "POWER", "Sqrt": "SQRT", "Ln": "LN",
               "Year": "YEAR", "Month": "MONTH", "Day": "DAY", "Hour": "HOUR",
               "Minute": "MINUTE", "Second": "SECOND", "DayOfMonth": "DAYOFMONTH",
               "Nullif": "NULLIF", "JSONExtractScalar": "JSON_VALUE", "Sign": "SIGN",
               "RegexpReplace": "REGEXP_REPLACE", "DateFormat": "DATE_FORMAT",
               "ToTimestamp": "TO_TIMESTAMP", "StrToTime": "TO_TIMESTAMP", "TsOrDsToDate": "TO_DATE",
               "ToDate": "TO_DATE", "StrToDate": "TO_DATE", "UnixToTime": "FROM_UNIXTIME",
               "Log10": "LOG10", "Mod": "MOD", "Replace": "REPLACE",
               "CurrentTimestamp": "CURRENT_TIMESTAMP", "Localtimestamp": "LOCALTIMESTAMP",
               "CurrentDate": "CURRENT_DATE"}


SQL_TYPES = {"INTEGER": "INT", "TEXT": "STRING", "VARCHAR": "STRING", "CHAR": "STRING",
              "DATETIME": "TIMESTAMP(6)", "TIMESTAMP": "TIMESTAMP(6)", "DECIMAL": "DECIMAL(10,0)",
              "DOUBLEPRECISION": "DOUBLE", "BOOL": "BOOLEAN"}

_INT_RE = r"^\s*[+-]?\d{1,18}\s*$"
_NUM_RE = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"


def is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def try_cast(v: Value, target: pa.DataType) -> Value:
    """``CAST`` that gives NULL for values it cannot convert (vectorised: values that would
    fail are found by pattern or range first, then the rest is cast in one call)."""
    if isinstance(v, pa.Scalar):
        try:
            return v.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return pa.scalar(None, target)
    try:
        return pc.cast(v, target)
    except pa.ArrowInvalid:
        pass
    if pa.types.is_string(v.type):
        if pa.types.is_integer(target) or pa.types.is_decimal(target) or pa.types.is_floating(target):
            ok = pc.match_substring_regex(v, _INT_RE if pa.types.is_integer(target) else _NUM_RE)
            v = pc.if_else(ok, pc.utf8_trim_whitespace(v), pa.scalar(None, pa.string()))
            if pa.types.is_integer(target):
                return _in_range_cast(pc.cast(v, pa.int64()), target)
            return pc.cast(pc.cast(v, pa.float64()), target) if pa.types.is_floating(target) \
                else _safe_each(v, target)
        if pa.types.is_date(target) or pa.types.is_timestamp(target):
            ts = pc.strptime(v, format="%Y-%m-%d %H:%M:%S", unit="us", error_is_null=True)
            d = pc.strptime(v, format="%Y-%m-%d", unit="us", error_is_null=True)
            return pc.cast(pc.coalesce(ts, d), target)
    if pa.types.is_integer(target) and (pa.types.is_integer(v.type) or pa.types.is_floating(v.type)):
        return _in_range_cast(v, target)
    return _safe_each(v, target)


def _in_range_cast(v: pa.Array, target: pa.DataType) -> pa.Array:
    info = {8: 2**7, 16: 2**15, 32: 2**31, 64: 2**63}[target.bit_width]
    lo, hi = (-info, info - 1) if pa.types.is_signed_integer(target) else (0, 2 * info - 1)
    if pa.types.is_floating(v.type):
        v = pc.trunc(v)
    ok = pc.and_(pc.greater_equal(v, lo), pc.less_equal(v, hi))
    return pc.cast(pc.if_else(ok, v, pa.scalar(None, v.type)), target)


def _safe_each(v: pa.Array, target: pa.DataType) -> pa.Array:
    """Last resort for a type pair without a pattern: cast halves until the failing values are
    isolated (log n casts per failing value, no per-row Python for the good ones)."""
    try:
        return pc.cast(v, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if len(v) <= 1:
            return pa.nulls(len(v), target)
    mid = len(v) // 2
    return pa.concat_arrays([_safe_each(v.slice(0, mid), target),
                             _safe_each(v.slice(mid), target)])
