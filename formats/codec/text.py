"""Text encodings of Arrow values, shared by the text formats (jsonl, csv).

One encoding per logical type, the same in both formats, vectorised with Arrow compute
(per-value Python only where Arrow has no kernel: base64 and ARRAY values inside CSV):

=====================  ==============================================================
DECIMAL                exact decimal text ``"-12.50"`` (a JSON *string*: no reader rounds it
                       through a double)
FLOAT, DOUBLE          shortest round-trip text; NaN and infinities are written as null
DATE                   ``2024-01-31``
TIME                   ``[-]HH:MM:SS.ffffff`` (hours may exceed 23: MySQL TIME is a duration;
                       9 fractional digits for TIME(7..9))
TIMESTAMP              ``2024-01-31T12:34:56.123456`` (ISO-8601, microseconds; 9 digits for
                       TIMESTAMP(7..9))
TIMESTAMP_LTZ          the same in UTC with a ``Z`` suffix
BINARY/BYTES           base64 (standard alphabet, padded)
JSON                   the JSON text itself (embedded in jsonl, a plain field in csv)
ARRAY<T>               a JSON array (native in jsonl, its JSON text in csv)
=====================  ==============================================================
"""
from __future__ import annotations

import binascii
import decimal
import json
import re
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_TIME_RE = r"^(?P<sign>-?)(?P<h>\d+):(?P<m>[0-5]\d):(?P<s>[0-5]\d)(?:\.(?P<f>\d{1,9}))?$"
_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'
_CONTROL = r"[\x00-\x1f]"
_JSON_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"))


# -- encoding ---------------------------------------------------------------------------------
def timestamp_text(arr: pa.Array) -> pa.Array:
    """ISO-8601 text of a timestamp array (``Z`` suffix when it has a time zone)."""
    t = arr.type
    unit = t.unit if t.unit in ("us", "ns") else "us"  # always at least microseconds
    arr = arr.cast(pa.timestamp(unit, "UTC" if t.tz else None))
    # Arrow's cast prints "2024-01-31 12:34:56.123456[Z]": 10x faster than strftime
    return pc.replace_substring(arr.cast(pa.string()), " ", "T", max_replacements=1)


def duration_text(arr: pa.Array) -> pa.Array:
    """``[-]HH:MM:SS.ffffff`` text of a duration array (TIME values)."""
    unit = arr.type.unit
    if unit not in ("us", "ns"):
        arr = arr.cast(pa.duration("us"))
        unit = "us"
    per_s = 1_000_000 if unit == "us" else 1_000_000_000
    v = arr.cast(pa.int64())
    a = pc.abs(v)
    secs = pc.divide(a, per_s)  # integer division on int64

    def pad(x: pa.Array, width: int) -> pa.Array:
        return pc.utf8_lpad(x.cast(pa.string()), width=width, padding="0")

    sign = pc.if_else(pc.less(v, 0), "-", "")
    hours = pad(pc.divide(secs, 3600), 2)
    minutes = pad(pc.remainder(pc.divide(secs, 60), 60), 2)
    fraction = pad(pc.remainder(a, per_s), 6 if unit == "us" else 9)
    return pc.binary_join_element_wise(sign, hours, ":", minutes, ":",
                                       pad(pc.remainder(secs, 60), 2), ".", fraction, "")


def base64_text(arr: pa.Array) -> pa.Array:
    """Base64 text of a binary array (per value: Arrow has no base64 kernel)."""
    b2a = binascii.b2a_base64
    return pa.array([None if v is None else b2a(v, newline=False).decode("ascii")
                     for v in arr.to_pylist()], pa.string())


def json_string_literal(arr: pa.Array) -> pa.Array:
    """Each string as a quoted JSON string literal (nulls stay null)."""
    needs = pc.match_substring_regex(arr, _NEEDS_ESCAPE)
    if arr.null_count == len(arr) or not pc.any(needs).as_py():
        return pc.binary_join_element_wise('"', arr, '"', "")
    original = arr
    for old, new in _JSON_ESCAPES:
        arr = pc.replace_substring(arr, old, new)
    rare = pc.match_substring_regex(arr, _CONTROL)
    if pc.any(rare).as_py():
        # other control characters need \u00XX: rare enough for json.dumps on those values
        vals = arr.to_pylist()
        for i in np.flatnonzero(rare.fill_null(False).to_numpy(zero_copy_only=False)):
            vals[i] = json.dumps(original[i].as_py(), ensure_ascii=False)[1:-1]
        arr = pa.array(vals, pa.string())
    return pc.binary_join_element_wise('"', arr, '"', "")


def json_text(arr: pa.Array, raw_json: bool = False) -> pa.Array:
    """JSON text of each value; nulls become ``null``.  ``raw_json``: the strings already are
    JSON documents (the JSON logical type) and are embedded as they are."""
    t = arr.type
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_null(t):
        out = pa.nulls(len(arr), pa.string())
    elif pa.types.is_boolean(t) or pa.types.is_integer(t):
        out = arr.cast(pa.string())
    elif pa.types.is_floating(t):
        out = _float_text(arr)
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        out = arr.cast(pa.string()) if raw_json else json_string_literal(arr.cast(pa.string()))
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        out = _list_json(arr)
    elif pa.types.is_dictionary(t) or pa.types.is_struct(t) or pa.types.is_map(t):
        out = pa.array([None if v is None else json.dumps(v, default=str, ensure_ascii=False)
                        for v in arr.to_pylist()], pa.string())
    else:
        # decimals, dates, times, timestamps, base64: texts that never need escaping
        out = pc.binary_join_element_wise('"', text(arr), '"', "")
    return out.fill_null("null")


def _list_json(arr: pa.Array) -> pa.Array:
    # .offsets follow a slice, .values is the whole child: they stay consistent
    items = json_text(arr.values)
    lists = type(arr).from_arrays(arr.offsets, items)  # (a mask is refused with a slice)
    out = pc.binary_join_element_wise("[", pc.binary_join(lists, ","), "]", "")
    if arr.null_count:
        out = pc.if_else(arr.is_valid(), out, pa.scalar(None, pa.string()))
    return out


def text(arr: pa.Array) -> pa.Array:
    """Plain text of scalar values (the CSV cell, or the content of a JSON string)."""
    t = arr.type
    if pa.types.is_timestamp(t):
        return timestamp_text(arr)
    if pa.types.is_duration(t):
        return duration_text(arr)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return base64_text(arr)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pc.if_else(arr.is_valid(), json_text(arr), pa.scalar(None, pa.string()))
    if pa.types.is_floating(t):
        return _float_text(arr)
    return arr.cast(pa.string())


def _float_text(arr: pa.Array) -> pa.Array:
    """Shortest round-trip text; NaN and infinities (no JSON form) become null."""
    out = arr.cast(pa.string())
    finite = pc.is_finite(arr)
    if pc.all(finite).as_py() is False:
        out = pc.if_else(finite, out, pa.scalar(None, pa.string()))
    return out


# -- decoding ---------------------------------------------------------------------------------
class JsonNumber(float):
    """A JSON number with a fraction or an exponent, as a decoder read it (``parse_float``):
    a float for every use, and its ``text`` for DECIMAL columns, which take it exactly."""

    def __new__(cls, text: str) -> JsonNumber:
        obj = super().__new__(cls, text)
        obj.text = text
        return obj


def parse_duration(arr: pa.Array, target: pa.DataType) -> pa.Array:
    """``[-]HH:MM:SS[.f]`` strings to a duration array.  Raises ValueError on a bad value."""
    arr = arr.cast(pa.string())
    m = pc.extract_regex(arr, _TIME_RE)
    matched = m.is_valid()
    bad = pc.and_(arr.is_valid(), pc.invert(matched))
    if pc.any(bad).as_py():
        first = arr.filter(bad)[0].as_py()
        raise ValueError(f"{first!r} is not a time like 'HH:MM:SS.ffffff'")
    # null rows have empty strings in the fields, which would not cast: zeros instead
    h, mi, s = (pc.if_else(matched, m.field(k), "0").cast(pa.int64()) for k in ("h", "m", "s"))
    ns_frac = pc.utf8_rpad(m.field("f"), width=9, padding="0").cast(pa.int64())
    total = pc.add(pc.multiply(pc.add(pc.add(pc.multiply(h, 3600), pc.multiply(mi, 60)), s),
                               1_000_000_000), ns_frac)
    total = pc.if_else(pc.equal(m.field("sign"), "-"), pc.negate(total), total)
    if target.unit != "ns":
        total = pc.divide(total, {"us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}[target.unit])
    total = pc.if_else(matched, total, pa.scalar(None, pa.int64()))
    return total.cast(target)


def parse_instant(arr: pa.Array, target: pa.DataType) -> pa.Array:
    """ISO-8601 strings to a time-zone-aware timestamp; values without an offset are UTC
    (as Arrow's JSON reader takes them; its CSV reader would reject them)."""
    arr = arr.cast(pa.string())
    zoned = pc.match_substring_regex(arr, r"(Z|[+-]\d\d(:?\d\d)?)$")
    arr = pc.if_else(zoned, arr, pc.binary_join_element_wise(arr, "Z", ""))
    return arr.cast(target)


def parse_base64(arr: pa.Array, target: pa.DataType) -> pa.Array:
    a2b = binascii.a2b_base64
    out = []
    for v in arr.to_pylist():
        try:
            out.append(None if v is None else a2b(v, strict_mode=True))
        except binascii.Error as exc:
            raise ValueError(f"{v[:40]!r} is not base64: {exc}") from None
    return pa.array(out, target)


def parse_json_values(arr: pa.Array, target: pa.DataType) -> pa.Array:
    """JSON texts (CSV cells of ARRAY columns) to values of ``target``."""
    try:
        vals = [None if v is None else json.loads(v) for v in arr.to_pylist()]
    except json.JSONDecodeError as exc:
        raise ValueError(f"bad JSON array text: {exc}") from None
    return from_json_values(vals, target)


def from_json_values(vals: list, target: pa.DataType) -> pa.Array:
    """Python values decoded from JSON to an array of ``target`` (strings -> decoded)."""
    if pa.types.is_list(target) and _needs_text_decode(target.value_type):
        flat, offsets, mask = [], [0], []
        for v in vals:
            if v is not None and not isinstance(v, list):
                raise ValueError(f"expected a JSON array, got {v!r:.40}")
            mask.append(v is None)
            flat.extend(v or ())
            offsets.append(len(flat))
        child = from_json_values(flat, target.value_type)
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), child,
                                        mask=pa.array(mask, pa.bool_()), type=target)
    if _needs_text_decode(target):
        if pa.types.is_decimal(target):
            vals = _number_texts(vals)
        return decode_text(pa.array(vals, pa.string()), target)
    return pa.array(vals, target)


def _number_texts(vals: list) -> list:
    """JSON numbers met in a DECIMAL column (some producers write decimals so) as their text,
    which :func:`parse_decimal` takes exactly (a :class:`JsonNumber` keeps its digits);
    other values as they are (a boolean or an object then fails the conversion to text)."""
    return [v.text if isinstance(v, JsonNumber) else
            str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
            for v in vals]


_STRING_FIELD_MET = re.compile(r"Column\(/(.*?)\) changed from string to (\w+)")


def string_field_met(error: str) -> tuple[str, str] | None:
    """What ``pyarrow.json``'s error says a field it reads as a string met instead: (the
    column, the JSON kind: ``number``, ``object``...); None for another error."""
    m = _STRING_FIELD_MET.search(error)
    return (m.group(1), m.group(2)) if m else None


def _needs_text_decode(t: pa.DataType) -> bool:
    return bool(pa.types.is_decimal(t) or pa.types.is_date(t) or pa.types.is_timestamp(t)
                or pa.types.is_duration(t) or pa.types.is_binary(t))


def decode_text(arr: pa.Array, target: pa.DataType) -> pa.Array:
    """Strings in the encodings above to ``target``.  Raises ValueError (or ArrowInvalid, a
    ValueError) on a value that does not parse."""
    decoder = _DECODERS.get(_kind(target))
    if decoder is not None:
        return decoder(arr, target)
    return arr.cast(target)


def parse_decimal(arr: pa.Array, target: pa.DataType) -> pa.Array:
    """Decimal texts (``-12.50``, ``1.5E3``) to a decimal type, exactly or ValueError.

    Arrow's cast from text checks the target's precision and refuses to round, but it wraps
    round silently where the digits or the value scaled up to the target's scale overflow its
    integer (pyarrow 26: ``"1234567890123456789012345678901.5"`` came out as
    9551369208078320544197092147.1344387584 in a DECIMAL(38,10) through decimal128,
    ``str(2**256 + 5)`` as 5 through decimal256, ``f"{2**256 // 10**20 + 1}e20"`` as
    42415992086870360064), and its own overflow checks miss some of those.  So Arrow casts
    only texts that can't overflow: without an exponent, a text of n characters is below
    10**n, hence below 10**(n + scale) once scaled: n + scale <= 38 casts straight to a
    decimal128 (10**38 < 2**127), as do texts with exactly ``scale`` digits after the point
    and at most 38 digits (no scaling: what the writers write); n + scale <= 76 goes through
    decimal256(76, scale) (10**76 < 2**255), whose cast to the target checks its precision.  The rest (exponents, longer texts: rare) is checked and
    written out at the target's scale by Python's ``decimal`` first."""
    if arr.type != pa.string():
        arr = arr.cast(pa.string())
    scale = target.scale
    longest = pc.max(pc.binary_length(arr)).as_py() or 0
    letters = _has_letters(arr)
    digits = 38 if pa.types.is_decimal128(target) else 76 if pa.types.is_decimal256(target) else 0
    if not letters and (longest + scale <= digits or _at_scale(arr, scale, digits)):
        return arr.cast(target)
    if letters or longest + scale > 76:
        risky = pc.greater(pc.add(pc.binary_length(arr), scale), 76)
        if letters:
            risky = pc.or_(risky, pc.match_substring(arr, "e", ignore_case=True))
        risky = risky.fill_null(False)
        if pc.any(risky).as_py():
            vals = arr.to_pylist()
            for i in np.flatnonzero(risky.to_numpy(zero_copy_only=False)):
                vals[i] = _exact_decimal_text(vals[i], target)
            arr = pa.array(vals, pa.string())
    return arr.cast(pa.decimal256(76, scale)).cast(target)


def _has_letters(arr: pa.Array) -> bool:
    """Whether any byte of the texts is ``A`` or above (letters, an exponent's ``e``): one
    pass of numpy over the values (digits, signs, the point and spaces are all below)."""
    data = arr.buffers()[2]
    if data is None or not len(arr):
        return False
    offsets = np.frombuffer(arr.buffers()[1], np.int32, len(arr) + 1, arr.offset * 4)
    values = np.frombuffer(data, np.uint8)[offsets[0]:offsets[-1]]
    return bool(len(values)) and int(values.max()) >= ord("A")


def _at_scale(arr: pa.Array, scale: int, digits: int) -> bool:
    """Whether every text has its point ``scale`` characters from its end and at most
    ``digits`` characters besides the point and a sign (what the writers write: no rescaling,
    an integer below ``10**digits``), from the byte positions with numpy.  Texts without
    letters are assumed (no exponent)."""
    if not scale or not digits or not len(arr) or arr.buffers()[2] is None:
        return False
    offsets = np.frombuffer(arr.buffers()[1], np.int32, len(arr) + 1, arr.offset * 4)
    data = np.frombuffer(arr.buffers()[2], np.uint8)
    starts, ends = offsets[:-1], offsets[1:]
    lengths = ends - starts
    long_enough = lengths > scale
    point = data[np.where(long_enough, ends - scale - 1, 0)] == ord(".")
    first = data[np.where(long_enough, starts, 0)]
    signed = (first == ord("-")) | (first == ord("+"))
    good = long_enough & point & (lengths - 1 - signed <= digits)
    if arr.null_count:
        good |= ~arr.is_valid().to_numpy(zero_copy_only=False)
    return bool(good.all())


_DECIMAL_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _exact_decimal_text(value: str, target: pa.DataType) -> str:
    """A decimal text Arrow can't be trusted with (an exponent, many characters) as the plain
    text of the same value at ``target``'s scale, which it can; ValueError when it is no
    number, would need rounding or has more digits than ``target``."""
    with decimal.localcontext() as ctx:
        ctx.prec = 80
        ctx.traps[decimal.Inexact] = True
        try:
            if not _DECIMAL_RE.fullmatch(value):  # Arrow's grammar (Python's takes "1_0")
                raise decimal.InvalidOperation
            d = decimal.Decimal(value)
            if d and d.adjusted() >= target.precision - target.scale:
                raise decimal.InvalidOperation
            q = d.quantize(decimal.Decimal(1).scaleb(-target.scale))
        except decimal.DecimalException:
            shown = repr(value[:40]) + ("..." if len(value) > 40 else "")
            raise ValueError(f"the string {shown} is no decimal that fits {target}") from None
    return format(q, "f")


def _kind(t: pa.DataType) -> str:
    if pa.types.is_decimal(t):
        return "decimal"
    if pa.types.is_timestamp(t) and t.tz:
        return "instant"
    if pa.types.is_duration(t):
        return "duration"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "binary"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return "list"
    return ""


_DECODERS: dict[str, Callable[[pa.Array, pa.DataType], pa.Array]] = {
    "instant": parse_instant, "duration": parse_duration, "binary": parse_base64,
    "list": parse_json_values, "decimal": parse_decimal,
}
