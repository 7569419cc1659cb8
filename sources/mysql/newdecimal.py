"""MySQL's binary DECIMAL (``MYSQL_TYPE_NEWDECIMAL``): in rows events and inside binary JSON
values.  A module of its own so that the row decoder and the JSON decoder both use it without
importing each other."""
from __future__ import annotations

from decimal import Context, Decimal
from typing import Callable, NamedTuple

_DIG2BYTES = (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)


def decimal_text_reader(precision: int, scale: int) -> tuple[Callable[[bytes, int], str], int]:
    """A reader of MySQL's binary DECIMAL(p,s) giving the text ``decimal2string`` prints (no
    sign on zero), and the value's size in bytes."""
    intg = precision - scale
    ig, il = divmod(intg, 9)
    fg, fl = divmod(scale, 9)
    sizes = ([_DIG2BYTES[il]] if il else []) + [4] * ig
    fsizes = [4] * fg + ([_DIG2BYTES[fl]] if fl else [])
    fdigits = [9] * fg + ([fl] if fl else [])
    size = sum(sizes) + sum(fsizes)

    def read(data: bytes, pos: int) -> str:
        raw = bytearray(data[pos:pos + size])
        neg = not raw[0] & 0x80
        raw[0] ^= 0x80
        if neg:
            raw = bytearray(b ^ 0xFF for b in raw)
        p = 0
        ipart = 0
        for s in sizes:
            ipart = ipart * 1_000_000_000 + int.from_bytes(raw[p:p + s], "big")
            p += s
        frac = ""
        for s, d in zip(fsizes, fdigits):
            frac += str(int.from_bytes(raw[p:p + s], "big")).zfill(d)
            p += s
        text = f"{ipart}.{frac}" if frac else str(ipart)
        return "-" + text if neg and (ipart or frac.strip("0")) else text

    return read, size


#: exact for any DECIMAL (65 digits at most): scaling never rounds
EXACT = Context(prec=100)


class DecimalLayout(NamedTuple):
    """How to read a binary DECIMAL(p,s) as one integer: read ``size`` bytes big-endian as
    ``n``; positive when ``n & top``, then the magnitude's bits are ``n ^ top``, else
    ``n ^ flip`` (negatives are stored bit-inverted); the unscaled value is the sum over
    ``groups`` of ``(bits >> shift & mask) * weight`` (base-10**9 digit groups, each in its
    own bytes), and the value is that integer times 10**-scale."""

    size: int
    top: int
    flip: int
    groups: tuple[tuple[int, int, int], ...]
    scale: int


def decimal_layout(precision: int, scale: int) -> DecimalLayout:
    intg = precision - scale
    ig, il = divmod(intg, 9)
    fg, fl = divmod(scale, 9)
    # (bytes, digits) of each group, most significant first
    parts = ([(_DIG2BYTES[il], il)] if il else []) + [(4, 9)] * ig + [(4, 9)] * fg + \
        ([(_DIG2BYTES[fl], fl)] if fl else [])
    size = sum(b for b, _ in parts)
    groups, shift, digits = [], 0, 0
    for nbytes, ndigits in reversed(parts):
        groups.append((shift, (1 << 8 * nbytes) - 1, 10 ** digits))
        shift += 8 * nbytes
        digits += ndigits
    top = 1 << (8 * size - 1)
    return DecimalLayout(size, top, ((1 << 8 * size) - 1) ^ top, tuple(reversed(groups)), scale)


def decimal_reader(precision: int, scale: int) -> tuple[Callable[[bytes, int], Decimal], int]:
    """A reader for MySQL's binary DECIMAL(p,s) and its size in bytes: the value with exactly
    ``scale`` fractional digits (as ``decimal2string`` prints it, no sign on zero)."""
    lay = decimal_layout(precision, scale)
    size, top, flip, groups = lay.size, lay.top, lay.flip, lay.groups

    def read(data: bytes, pos: int) -> Decimal:
        n = int.from_bytes(data[pos:pos + size], "big")
        if n & top:
            n ^= top
            u = sum((n >> sh & m) * w for sh, m, w in groups)
        else:
            n ^= flip
            u = -sum((n >> sh & m) * w for sh, m, w in groups)
        return Decimal(u).scaleb(-scale, EXACT) if scale else Decimal(u)

    return read, size
