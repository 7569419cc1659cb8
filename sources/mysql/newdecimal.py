"""MySQL's binary DECIMAL (``MYSQL_TYPE_NEWDECIMAL``): in rows events and inside binary JSON
values.  A module of its own so that the row decoder and the JSON decoder both use it without
importing each other."""
from __future__ import annotations

from decimal import Decimal
from typing import Callable

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


def decimal_reader(precision: int, scale: int) -> tuple[Callable[[bytes, int], Decimal], int]:
    """A reader for MySQL's binary DECIMAL(p,s) and its size in bytes."""
    text, size = decimal_text_reader(precision, scale)
    return (lambda data, pos: Decimal(text(data, pos))), size
