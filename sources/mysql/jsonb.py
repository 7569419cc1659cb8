"""MySQL's binary JSON (the JSON column type in row images) to JSON text, exactly as MySQL
prints it, so that a value read from the binlog equals the same value read by the snapshot
(``SELECT`` returns MySQL's own text rendering).

Format (``sql-common/json_binary.cc``): a type byte, then the value.  Objects and arrays come in
a small (16-bit offsets) and a large (32-bit offsets) form: element count, byte size, then key
entries (objects), value entries (type + offset, or the value itself when it fits), keys and
values.  Offsets count from the start of the object (right after its type byte).

Rendering (``Json_wrapper::to_string``): ``", "`` between elements, ``": "`` after keys, keys in
stored order; strings escaped as MySQL does; doubles as ``my_gcvt`` prints them (``1e20``,
``0.1``, ``2.0``); DECIMAL with its scale; DATE/TIME/DATETIME quoted with 6 fraction digits;
other opaque values as ``"base64:type<N>:<base64>"``.  MariaDB stores JSON as text: this
module is for MySQL only.
"""
from __future__ import annotations

import base64
import math
import struct
from decimal import Decimal

from runtime.errors import BadRecordError
from sources.mysql.newdecimal import decimal_text_reader

SMALL_OBJECT, LARGE_OBJECT, SMALL_ARRAY, LARGE_ARRAY = 0x00, 0x01, 0x02, 0x03
LITERAL, INT16, UINT16, INT32, UINT32, INT64, UINT64, DOUBLE, STRING = (
    0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C)
OPAQUE = 0x0F

# MySQL field types that may appear inside an opaque JSON value
_NEWDECIMAL, _DATE, _TIME, _DATETIME, _TIMESTAMP, _VAR_STRING = 246, 10, 11, 12, 7, 253
_ESCAPES = {0x22: '\\"', 0x5C: "\\\\", 0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n", 0x0D: "\\r",
            0x09: "\\t"}


def json_text(data: bytes) -> str:
    """The JSON text of one binary JSON value (an empty value is JSON ``null``)."""
    if not data:
        return "null"
    out: list[str] = []
    try:
        _value(data[0], data, 1, out)
    except (IndexError, struct.error, ValueError) as exc:
        raise BadRecordError(f"invalid MySQL binary JSON ({len(data)} bytes): {exc}") from None
    return "".join(out)


def _value(t: int, data: bytes, pos: int, out: list[str]) -> None:
    """Render the value of type ``t`` stored at ``pos``."""
    if t in (SMALL_OBJECT, LARGE_OBJECT, SMALL_ARRAY, LARGE_ARRAY):
        _container(t, data, pos, out)
    elif t == LITERAL:
        out.append(("null", "true", "false")[data[pos]])
    elif t == INT16:
        out.append(str(struct.unpack_from("<h", data, pos)[0]))
    elif t == UINT16:
        out.append(str(struct.unpack_from("<H", data, pos)[0]))
    elif t == INT32:
        out.append(str(struct.unpack_from("<i", data, pos)[0]))
    elif t == UINT32:
        out.append(str(struct.unpack_from("<I", data, pos)[0]))
    elif t == INT64:
        out.append(str(struct.unpack_from("<q", data, pos)[0]))
    elif t == UINT64:
        out.append(str(struct.unpack_from("<Q", data, pos)[0]))
    elif t == DOUBLE:
        out.append(double_text(struct.unpack_from("<d", data, pos)[0]))
    elif t == STRING:
        n, pos = _varlen(data, pos)
        out.append(quote(data[pos:pos + n]))
    elif t == OPAQUE:
        ftype = data[pos]
        n, pos = _varlen(data, pos + 1)
        out.append(_opaque(ftype, data[pos:pos + n]))
    else:
        raise ValueError(f"unknown JSON value type {t:#x}")


def _container(t: int, data: bytes, base: int, out: list[str]) -> None:
    large = t in (LARGE_OBJECT, LARGE_ARRAY)
    is_object = t in (SMALL_OBJECT, LARGE_OBJECT)
    word, fmt = (4, "<I") if large else (2, "<H")
    count = struct.unpack_from(fmt, data, base)[0]
    pos = base + 2 * word
    keys: list[bytes] = []
    if is_object:
        for _ in range(count):
            off = struct.unpack_from(fmt, data, pos)[0]
            klen = struct.unpack_from("<H", data, pos + word)[0]
            keys.append(data[base + off:base + off + klen])
            pos += word + 2
    out.append("{" if is_object else "[")
    for i in range(count):
        if i:
            out.append(", ")
        if is_object:
            out.append(quote(keys[i]))
            out.append(": ")
        vt = data[pos]
        if vt == LITERAL or vt in (INT16, UINT16) or (large and vt in (INT32, UINT32)):
            _value(vt, data, pos + 1, out)       # inlined in the entry
        else:
            _value(vt, data, base + struct.unpack_from(fmt, data, pos + 1)[0], out)
        pos += 1 + word
    out.append("}" if is_object else "]")


def _varlen(data: bytes, pos: int) -> tuple[int, int]:
    """A length of 7 bits per byte, low groups first, high bit set on all but the last."""
    n = shift = 0
    while True:
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, pos
        shift += 7


def quote(raw: bytes) -> str:
    """A JSON string as MySQL's ``double_quote`` writes it."""
    text = raw.decode("utf-8", errors="replace")
    if not any(ord(c) < 0x20 or c in '"\\' for c in text):
        return f'"{text}"'
    parts = ['"']
    for c in text:
        o = ord(c)
        if o in _ESCAPES:
            parts.append(_ESCAPES[o])
        elif o < 0x1F:
            parts.append(f"\\u00{o:02x}")
        else:
            # 0x1F itself passes through unescaped: MySQL tests ``< 0x1f``
            parts.append(c)
    parts.append('"')
    return "".join(parts)


# -- doubles: my_gcvt(d, MY_GCVT_ARG_DOUBLE, MY_GCVT_MAX_FIELD_WIDTH) plus ".0" --------------
_WIDTH = 34            # MY_GCVT_MAX_FIELD_WIDTH = DBL_DIG + 4 + max(5, MAX_DECPT_FOR_F_FORMAT)
_MAX_DECPT_F = 15      # MAX_DECPT_FOR_F_FORMAT = DBL_DIG


def double_text(d: float) -> str:
    """``my_gcvt``'s choice between the ``f`` and ``e`` formats, on the shortest digits that
    read back as ``d`` (dtoa mode 4 with a width above 17 gives those, as ``repr`` does)."""
    if d != d or d in (float("inf"), float("-inf")):
        return "null"      # MySQL can't store these in JSON; keep the text valid
    neg = math.copysign(1.0, d) < 0
    if d == 0:
        text = "0"
    else:
        _, digits_t, exp = Decimal(repr(abs(d))).normalize().as_tuple()
        digits = "".join(map(str, digits_t))
        # decpt: where the decimal point goes, counted from the first significant digit
        text = _gcvt(digits, len(digits) + exp, _WIDTH - (1 if d < 0 else 0))
    if neg:
        text = "-" + text
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def _gcvt(digits: str, decpt: int, width: int) -> str:
    n = len(digits)
    exp_len = 1 + (decpt >= 101 or decpt <= -99) + (decpt >= 11 or decpt <= -9)
    f_len = n - decpt + 2 if decpt <= 0 else (n + 1 if decpt < n else decpt)
    have_space = f_len <= width
    force_e = decpt <= 0 and width <= 2 - decpt and width >= 3 + exp_len
    use_f = (have_space or (decpt <= width and (decpt >= -1 or (decpt == -2 and (n > 1 or not force_e)))
                            and not force_e)) \
        and (not have_space or (decpt >= -_MAX_DECPT_F + 1 and (decpt <= _MAX_DECPT_F or n > decpt)))
    if use_f:
        if decpt <= 0:
            return "0." + "0" * -decpt + digits
        if decpt < n:
            return digits[:decpt] + "." + digits[decpt:]
        return digits + "0" * (decpt - n)
    e = decpt - 1
    mantissa = digits[0] + ("." + digits[1:] if n > 1 else "")
    return f"{mantissa}e{'-' if e < 0 else ''}{abs(e)}"


# -- opaque values ------------------------------------------------------------------------------
def _opaque(ftype: int, raw: bytes) -> str:
    if ftype == _NEWDECIMAL:
        return decimal_text_reader(raw[0], raw[1])[0](raw, 2)
    if ftype in (_DATE, _DATETIME, _TIMESTAMP, _TIME):
        return '"' + packed_time_text(struct.unpack_from("<q", raw, 0)[0], ftype) + '"'
    if ftype == _VAR_STRING:
        return quote(raw)
    return f'"base64:type{ftype}:{base64.b64encode(raw).decode()}"'


def packed_time_text(v: int, ftype: int) -> str:
    """A packed temporal value (``TIME_to_longlong_packed``) as ``my_TIME_to_str(t, 6)``."""
    neg = v < 0
    v = -v if neg else v
    frac, whole = v % (1 << 24), v >> 24
    if ftype == _TIME:
        h, m, s = (whole >> 12) % (1 << 10), (whole >> 6) % 64, whole % 64
        return f"{'-' if neg else ''}{h:02d}:{m:02d}:{s:02d}.{frac:06d}"
    ymd, hms = whole >> 17, whole % (1 << 17)
    ym = ymd >> 5
    date = f"{ym // 13:04d}-{ym % 13:02d}-{ymd % 32:02d}"
    if ftype == _DATE:
        return date
    return f"{date} {hms >> 12:02d}:{(hms >> 6) % 64:02d}:{hms % 64:02d}.{frac:06d}"
