"""Row-image decoding specialised per table map.

For each (table map, present-columns bitmap) a decoder function is generated as Python source
with one straight-line block per column (struct formats and helpers bound as constants), then
compiled once and cached.  Decoding a rows event is then one call that loops over its rows:
no per-column dispatch, no per-value method calls.  Values follow the policy of
:mod:`sources.mysql.types` (identical to the snapshot's).

Guards against known decode faults of mysql-replication 1.0.17: negative TIME(1..4) fractions
are decoded by MySQL's own packing rules; BINARY(n) gets back the trailing zero bytes the binlog
drops; columns absent from a partial row image (MINIMAL/NOBLOB) are :data:`MISSING`, never NULL.
"""
from __future__ import annotations

import datetime as dt
import struct
from decimal import Decimal
from typing import Any, Callable

from runtime.errors import BadRecordError, TerminalError
from sources.mysql.catalog import MySqlTable
from sources.mysql.jsonb import json_text
from sources.mysql.newdecimal import EXACT, decimal_layout
from sources.mysql.tablemap import (
    T_BIT, T_BLOB, T_DATE, T_DATETIME, T_DATETIME2, T_DOUBLE, T_ENUM, T_FLOAT, T_GEOMETRY, T_INT24,
    T_JSON, T_LONG, T_LONG_BLOB, T_LONGLONG, T_MEDIUM_BLOB, T_NEWDECIMAL, T_SET, T_SHORT, T_STRING,
    T_TIME, T_TIME2, T_TIMESTAMP, T_TIMESTAMP2, T_TINY, T_TINY_BLOB, T_VAR_STRING, T_VARCHAR,
    T_YEAR, TableMap, string_length)
from sources.mysql.types import NativeColumn, wkb_of

MISSING = type("Missing", (), {"__repr__": lambda self: "MISSING", "__slots__": ()})()

_CODECS = {"utf8mb4": "utf-8", "utf8mb3": "utf-8", "utf8": "utf-8", "latin1": "cp1252",
           "ascii": "ascii"}


def layout_matches(tmap: TableMap, table: MySqlTable) -> bool:
    """Whether a table map can be decoded with ``table``'s columns: same count, same type
    families (and, with full metadata, the same names)."""
    if len(tmap.types) != len(table.natives):
        return False
    if tmap.full and list(tmap.names or ()) != list(table.schema.names):
        return False
    for t, nat in zip(tmap.types, table.natives):
        fam = _FAMILY.get(t)
        if fam is not None and nat.data_type not in fam:
            return False
    return True


# -- value helpers (bound into generated code) --------------------------------------------------
def _frac(data: bytes, pos: int, fsp: int) -> int:
    if fsp <= 0:
        return 0
    if fsp <= 2:
        return data[pos] * 10000
    if fsp <= 4:
        return int.from_bytes(data[pos:pos + 2], "big") * 100
    return int.from_bytes(data[pos:pos + 3], "big")


def make_datetime2(fsp: int, zero_null: bool, where: str):
    def read(data: bytes, pos: int) -> dt.datetime | None:
        v = int.from_bytes(data[pos:pos + 5], "big") - 0x8000000000
        ymd, hms = v >> 17, v & 0x1FFFF
        ym = ymd >> 5
        us = _frac(data, pos + 5, fsp)
        try:
            return dt.datetime(ym // 13, ym % 13, ymd & 31, hms >> 12, (hms >> 6) & 63, hms & 63, us)
        except ValueError:
            return _zero(zero_null, where)
    return read


def make_timestamp2(fsp: int, zero_null: bool, where: str):
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)

    def read(data: bytes, pos: int) -> dt.datetime | None:
        sec = int.from_bytes(data[pos:pos + 4], "big")
        if sec == 0:
            return _zero(zero_null, where)
        return epoch + dt.timedelta(seconds=sec, microseconds=_frac(data, pos + 4, fsp))
    return read


def make_timestamp_old(zero_null: bool, where: str):
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)

    def read(sec: int) -> dt.datetime | None:
        return epoch + dt.timedelta(seconds=sec) if sec else _zero(zero_null, where)
    return read


def make_time2(fsp: int):
    """TIME(fsp) by MySQL's ``my_time_packed_from_binary``: the fraction of a negative value
    borrows from the integer part (mysql-replication gets this wrong for fsp 1..4)."""
    def read(data: bytes, pos: int) -> dt.timedelta:
        if fsp >= 5:
            packed = int.from_bytes(data[pos:pos + 6], "big") - 0x800000000000
        else:
            intpart = int.from_bytes(data[pos:pos + 3], "big") - 0x800000
            if fsp == 0:
                frac = 0
            elif fsp <= 2:
                frac = data[pos + 3]
                if intpart < 0 and frac:
                    intpart += 1
                    frac -= 0x100
                frac *= 10000
            else:
                frac = int.from_bytes(data[pos + 3:pos + 5], "big")
                if intpart < 0 and frac:
                    intpart += 1
                    frac -= 0x10000
                frac *= 100
            packed = (intpart << 24) + frac
        neg = packed < 0
        packed = -packed if neg else packed
        hms, us = packed >> 24, packed % (1 << 24)
        td = dt.timedelta(hours=(hms >> 12) % 1024, minutes=(hms >> 6) % 64, seconds=hms % 64,
                          microseconds=us)
        return -td if neg else td
    return read


def make_date(zero_null: bool, where: str):
    def read(x: int) -> dt.date | None:
        try:
            return dt.date(x >> 9, (x >> 5) & 15, x & 31)
        except ValueError:
            return _zero(zero_null, where)
    return read


def _zero(zero_null: bool, where: str) -> None:
    if zero_null:
        return None
    raise BadRecordError(f"{where}: zero or invalid date with zero-date = \"error\"")


def set_of(members: tuple[str, ...]):
    def read(mask: int) -> list[str]:
        return [m for i, m in enumerate(members) if mask >> i & 1]
    return read


# -- code generation ----------------------------------------------------------------------------
_FIXED = {T_TINY: (1, None), T_SHORT: (2, "h"), T_LONG: (4, "i"), T_LONGLONG: (8, "q"),
          T_FLOAT: (4, "f"), T_DOUBLE: (8, "d")}
_FAMILY = {
    T_TINY: {"tinyint", "bool", "boolean"}, T_SHORT: {"smallint"}, T_INT24: {"mediumint"},
    T_LONG: {"int", "integer"}, T_LONGLONG: {"bigint"}, T_FLOAT: {"float"},
    T_DOUBLE: {"double", "real"}, T_NEWDECIMAL: {"decimal", "numeric"}, T_DATE: {"date"},
    T_DATETIME2: {"datetime"}, T_DATETIME: {"datetime"}, T_TIMESTAMP2: {"timestamp"},
    T_TIMESTAMP: {"timestamp"}, T_TIME2: {"time"}, T_TIME: {"time"}, T_YEAR: {"year"},
    T_BIT: {"bit"}, T_JSON: {"json"}, T_ENUM: {"enum"}, T_SET: {"set"},
}


class _Gen:
    """Source lines and bound constants of one generated decoder."""

    def __init__(self, table: MySqlTable, tmap: TableMap, zero_null: bool):
        self.table, self.tmap, self.zero_null = table, tmap, zero_null
        self.env: dict[str, Any] = {"Decimal": Decimal, "MISSING": MISSING, "EXACT": EXACT,
                                    "datetime": dt.datetime, "from_bytes": int.from_bytes}

    def bind(self, name: str, value: Any) -> str:
        self.env[name] = value
        return name

    def column(self, i: int, ind: str) -> list[str]:
        """Lines (indented by ``ind``) that read column ``i`` into ``v{i}`` and advance ``p``."""
        t, meta, nat = self.tmap.types[i], self.tmap.metas[i], self.table.natives[i]
        where = f"{self.table.table_id}.{nat.name}"
        fam = _FAMILY.get(t)
        if fam is not None and nat.data_type not in fam:
            raise TerminalError(
                f"{where}: the binlog has a {nat.data_type!r} column where the known schema has "
                f"{nat.column_type!r}: the table changed in a way the schema history did not "
                "follow; restart the pipeline with --fresh")
        v = f"v{i}"
        unsigned = nat.unsigned
        if t == T_TINY:
            if unsigned:
                return [f"{ind}{v} = data[p]; p += 1"]
            return [f"{ind}{v} = data[p]; p += 1", f"{ind}if {v} > 127: {v} -= 256"]
        if t in _FIXED:
            size, code = _FIXED[t]
            code = code.upper() if unsigned and t != T_FLOAT and t != T_DOUBLE else code
            fn = self.bind(f"S{i}", struct.Struct("<" + code).unpack_from)
            if t == T_LONGLONG and unsigned:
                return [f"{ind}{v} = Decimal({fn}(data, p)[0]); p += 8"]
            return [f"{ind}{v} = {fn}(data, p)[0]; p += {size}"]
        if t == T_INT24:
            return [f"{ind}{v} = int.from_bytes(data[p:p + 3], 'little', signed={not unsigned}); p += 3"]
        if t == T_YEAR:
            return [f"{ind}{v} = data[p]; p += 1", f"{ind}{v} = {v} + 1900 if {v} else 0"]
        if t == T_NEWDECIMAL:
            return self._decimal(v, ind, meta >> 8, meta & 0xFF)
        if t == T_DATE:
            fn = self.bind(f"D{i}", make_date(self.zero_null, where))
            return [f"{ind}{v} = {fn}(data[p] | data[p + 1] << 8 | data[p + 2] << 16); p += 3"]
        if t == T_DATETIME2:
            return self._datetime2(i, v, ind, meta, where)
        if t in (T_DATETIME2, T_TIMESTAMP2, T_TIME2):
            make = {T_DATETIME2: lambda: make_datetime2(meta, self.zero_null, where),
                    T_TIMESTAMP2: lambda: make_timestamp2(meta, self.zero_null, where),
                    T_TIME2: lambda: make_time2(meta)}[t]
            size = {T_DATETIME2: 5, T_TIMESTAMP2: 4, T_TIME2: 3}[t] + (meta + 1) // 2
            return [f"{ind}{v} = {self.bind(f'D{i}', make())}(data, p); p += {size}"]
        if t == T_BIT:
            nbytes = (meta >> 8) + (1 if meta & 0xFF else 0)
            if nat.bit_length == 1:
                return [f"{ind}{v} = data[p] != 0; p += {nbytes}"]
            return [f"{ind}{v} = data[p:p + {nbytes}]; p += {nbytes}"]
        if t in (T_VARCHAR, T_VAR_STRING):
            return self._prefixed(i, v, ind, 1 if meta < 256 else 2, nat, None)
        if t in (T_STRING, T_ENUM, T_SET):
            real, length = t, string_length(meta)
            if real == T_ENUM:
                members = self.bind(f"E{i}", ("",) + nat.values)
                read = "data[p]" if length == 1 else "(data[p] | data[p + 1] << 8)"
                return [f"{ind}{v} = {members}[{read}]; p += {length}"]
            if real == T_SET:
                fn = self.bind(f"E{i}", set_of(nat.values))
                return [f"{ind}{v} = {fn}(int.from_bytes(data[p:p + {length}], 'little')); p += {length}"]
            pad = nat.length if nat.data_type == "binary" else None
            return self._prefixed(i, v, ind, 1 if length < 256 else 2, nat, pad)
        if t in (T_BLOB, T_TINY_BLOB, T_MEDIUM_BLOB, T_LONG_BLOB, T_GEOMETRY, T_JSON):
            lines = [f"{ind}n = int.from_bytes(data[p:p + {meta}], 'little'); "
                     f"{v} = data[p + {meta}:p + {meta} + n]; p += {meta} + n"]
            if t == T_JSON:
                lines.append(f"{ind}{v} = {self.bind('JSON', json_text)}({v})")
            elif nat.is_geometry:
                lines.append(f"{ind}{v} = {self.bind('GEO', wkb_of)}({v})")
            elif not nat.is_binary:
                lines.append(f"{ind}{v} = {v}.decode({self._codec(nat)!r})")
            return lines
        if t == T_TIMESTAMP:
            fn = self.bind(f"D{i}", make_timestamp_old(self.zero_null, where))
            return [f"{ind}{v} = {fn}(int.from_bytes(data[p:p + 4], 'little')); p += 4"]
        raise TerminalError(f"{where}: binlog column type {t} ({nat.column_type}) is not supported")

    def _decimal(self, v: str, ind: str, precision: int, scale: int) -> list[str]:
        """Inline: the binary DECIMAL as one integer, its base-10**9 groups cut out by shifts
        (:func:`~sources.mysql.newdecimal.decimal_layout`), scaled exactly."""
        lay = decimal_layout(precision, scale)
        unscaled = " + ".join(f"(n >> {sh} & {m}) * {w}" if sh else f"(n & {m}) * {w}"
                              for sh, m, w in lay.groups)
        scaled = f".scaleb({-scale}, EXACT)" if scale else ""
        return [f"{ind}n = from_bytes(data[p:p + {lay.size}], 'big'); p += {lay.size}",
                f"{ind}if n & {lay.top}:",
                f"{ind}    n ^= {lay.top}; {v} = Decimal({unscaled}){scaled}",
                f"{ind}else:",
                f"{ind}    n ^= {lay.flip}; {v} = Decimal(-({unscaled})){scaled}"]

    def _datetime2(self, i: int, v: str, ind: str, fsp: int, where: str) -> list[str]:
        """Inline DATETIME2(fsp): 5 bytes of packed fields then the fraction's bytes, read as
        one integer (as :func:`make_datetime2`, which decodes the invalid dates)."""
        fb = (fsp + 1) // 2
        frac = {0: "0", 1: "(n & 255) * 10000", 2: "(n & 255) * 10000", 3: "(n & 65535) * 100",
                4: "(n & 65535) * 100", 5: "n & 16777215", 6: "n & 16777215"}[fsp]
        slow = self.bind(f"D{i}", make_datetime2(fsp, self.zero_null, where))
        return [f"{ind}n = from_bytes(data[p:p + {5 + fb}], 'big')",
                f"{ind}x = (n >> {8 * fb}) - 0x8000000000; ymd = x >> 17; ym = ymd >> 5",
                f"{ind}try:",
                f"{ind}    {v} = datetime(ym // 13, ym % 13, ymd & 31, (x >> 12) & 31, (x >> 6) & 63, "
                f"x & 63, {frac})",
                f"{ind}except ValueError:",
                f"{ind}    {v} = {slow}(data, p)",
                f"{ind}p += {5 + fb}"]

    def _codec(self, nat: NativeColumn) -> str:
        codec = _CODECS.get((nat.charset or "utf8mb4").lower())
        if codec is None:
            raise TerminalError(f"{self.table.table_id}.{nat.name}: character set {nat.charset!r} "
                                "is not supported (utf8mb4, utf8mb3, latin1, ascii are)")
        return codec

    def _prefixed(self, i: int, v: str, ind: str, width: int, nat: NativeColumn,
                  pad: int | None) -> list[str]:
        if width == 1:
            lines = [f"{ind}n = data[p]; {v} = data[p + 1:p + 1 + n]; p += 1 + n"]
        else:
            lines = [f"{ind}n = data[p] | data[p + 1] << 8; {v} = data[p + 2:p + 2 + n]; p += 2 + n"]
        if nat.is_binary:
            if pad:
                lines.append(f"{ind}if n < {pad}: {v} = {v}.ljust({pad}, b'\\0')")
        else:
            lines.append(f"{ind}{v} = {v}.decode({self._codec(nat)!r})")
        return lines

    def image(self, present: list[int], ind: str, mark: set[int] = frozenset(),
              reuse: set[int] = frozenset()) -> list[str]:
        """Lines decoding one row image of the ``present`` columns into ``row``.  Rows without
        NULLs (most) take a block with no per-column null test, where runs of fixed-size
        numeric columns are read by one ``struct`` call.

        Updates: the before image notes where each column of ``mark`` starts (``b<i>``, -1
        when NULL); the after image takes the before's value of a ``reuse`` column whose bytes
        are the same (most columns of an update don't change, and comparing bytes costs a
        fraction of building a Decimal or datetime again)."""
        nb = (len(present) + 7) // 8
        # the bitmap as one integer (bit j: the j-th present column is NULL); the bits past
        # the last column are not always zero
        read = "data[p]" if nb == 1 else f"from_bytes(data[p:p + {nb}], 'little')"
        lines = [f"{ind}nulls = {read}; p += {nb}",
                 f"{ind}if not nulls & {(1 << len(present)) - 1}:"]
        lines += self._no_nulls(present, ind + "    ", mark, reuse)
        lines.append(f"{ind}else:")
        for j, i in enumerate(present):
            lines.append(f"{ind}    if nulls & {1 << j}:")
            lines.append(f"{ind}        v{i} = None")
            if i in mark:
                lines.append(f"{ind}        b{i} = -1")
            lines.append(f"{ind}    else:")
            if i in mark:
                lines.append(f"{ind}        b{i} = p")
            lines.extend(self.column(i, ind + "        "))
        have = set(present)
        cols = ", ".join(f"v{i}" if i in have else "MISSING" for i in range(len(self.tmap.types)))
        lines.append(f"{ind}row = ({cols},)")
        return lines

    def _fixed(self, i: int) -> tuple[str, int, str | None] | None:
        """(struct code, size, wrapper) of a fixed-size numeric column, None for others."""
        t, nat = self.tmap.types[i], self.table.natives[i]
        if t == T_TINY:
            return ("B" if nat.unsigned else "b"), 1, None
        if t not in _FIXED:
            return None
        size, code = _FIXED[t]
        if nat.unsigned and t not in (T_FLOAT, T_DOUBLE):
            return code.upper(), size, "Decimal" if t == T_LONGLONG else None
        return code, size, None

    def reusable(self) -> set[int]:
        """Columns whose value the after image of an update may take from the before image:
        fixed-size ones that cost a Python object of some weight to decode."""
        return {i for i, t in enumerate(self.tmap.types)
                if t in (T_NEWDECIMAL, T_DATETIME2, T_TIMESTAMP2, T_TIME2)}

    def _size(self, i: int) -> int:
        t, meta = self.tmap.types[i], self.tmap.metas[i]
        if t == T_NEWDECIMAL:
            return decimal_layout(meta >> 8, meta & 0xFF).size
        return {T_DATETIME2: 5, T_TIMESTAMP2: 4, T_TIME2: 3}[t] + (meta + 1) // 2

    def _no_nulls(self, present: list[int], ind: str, mark: set[int] = frozenset(),
                  reuse: set[int] = frozenset()) -> list[str]:
        lines: list[str] = []
        run: list[int] = []

        def close_run() -> None:
            if not run:
                return
            parts = [self._fixed(i) for i in run]
            fn = self.bind(f"R{run[0]}", struct.Struct("<" + "".join(c for c, _, _ in parts)).unpack_from)
            names = ", ".join(f"v{i}" for i in run)
            lines.append(f"{ind}{names}{',' if len(run) == 1 else ''} = {fn}(data, p); "
                         f"p += {sum(z for _, z, _ in parts)}")
            lines.extend(f"{ind}v{i} = {w}(v{i})" for i, (_, _, w) in zip(run, parts) if w)
            run.clear()

        for i in present:
            col = self.column(i, ind)   # checks the column against the schema, always
            if self._fixed(i) is not None:
                run.append(i)
                continue
            close_run()
            if i in mark:
                lines.append(f"{ind}b{i} = p")
            if i in reuse:
                z = self._size(i)
                lines.append(f"{ind}if b{i} >= 0 and data[p:p + {z}] == data[b{i}:b{i} + {z}]:")
                lines.append(f"{ind}    v{i} = before[{i}]; p += {z}")
                lines.append(f"{ind}else:")
                col = self.column(i, ind + "    ")
            lines.extend(col)
        close_run()
        return lines


def build_decoder(table: MySqlTable, tmap: TableMap, present: list[int],
                  present_after: list[int] | None, zero_null: bool) -> Callable:
    """``decode(data, p, end) -> list`` of row tuples, or of (before, after) pairs for updates
    (``present_after`` given)."""
    if len(tmap.types) != len(table.natives):
        raise TerminalError(
            f"{table.table_id}: the binlog has {len(tmap.types)} columns where the known schema has "
            f"{len(table.natives)}: the table changed in a way the schema history did not follow; "
            "restart the pipeline with --fresh")
    gen = _Gen(table, tmap, zero_null)
    lines = ["def decode(data, p, end):", "    out = []", "    ap = out.append",
             "    while p < end:"]
    if present_after is None:
        lines += gen.image(present, "        ")
        lines.append("        ap(row)")
    else:
        both = gen.reusable() & set(present) & set(present_after)
        lines += gen.image(present, "        ", mark=both)
        lines.append("        before = row")
        lines += gen.image(present_after, "        ", reuse=both)
        lines.append("        ap((before, row))")
    lines.append("    return out")
    code = compile("\n".join(lines), f"<decoder {table.table_id}>", "exec")
    exec(code, gen.env)  # noqa: S102 - our own generated source, no outside input
    return gen.env["decode"]


def bitmap_columns(data: bytes, pos: int, count: int) -> tuple[list[int], int]:
    n = (count + 7) // 8
    bits = data[pos:pos + n]
    return [i for i in range(count) if bits[i >> 3] >> (i & 7) & 1], pos + n


def rows_body_start(body: bytes, v2: bool) -> tuple[int, int]:
    """(table id, position of the column count) of a rows event body."""
    table_id = int.from_bytes(body[0:6], "little")
    pos = 8
    if v2:
        extra = body[pos] | body[pos + 1] << 8
        pos += extra
    return table_id, pos
