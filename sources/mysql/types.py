"""MySQL column types: their logical types, and the snapshot's text values as Arrow arrays.

The logical types come from the project's one MySQL type map (:mod:`formats.mysqltypes`).
One value policy for the snapshot (text protocol) and the binlog (row images), so that the same
row read by both gives identical events:

* unsigned integers widen (``INT UNSIGNED`` -> BIGINT, ``BIGINT UNSIGNED`` -> DECIMAL(20,0));
* ``DATETIME(p)`` -> TIMESTAMP(p), the wall clock as stored, no zone arithmetic;
* ``TIMESTAMP(p)`` -> TIMESTAMP_LTZ(p), the instant in UTC (snapshot sessions run at
  ``time_zone = '+00:00'``, the binlog carries epoch seconds);
* zero dates (``0000-00-00``) become NULL (``zero-date = "null"``) or fail the record;
* ``TIME(p)`` -> TIME(p) (a signed ``timedelta``), ``YEAR`` -> INT;
* ``BIT(1)`` -> BOOLEAN, ``BIT(n)`` -> BYTES (big-endian, ceil(n/8) bytes);
* ``ENUM`` -> STRING, ``SET`` -> ARRAY<STRING>, ``JSON`` -> JSON (the text);
* ``GEOMETRY`` (and its subtypes) -> BYTES holding WKB (EWKB with the SRID when it is not 0);
* ``BINARY(n)`` keeps its trailing zero bytes (the binlog strips them: they are restored).
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from formats.codec.geometry import from_mysql as geometry_from_mysql
from formats.mysqltypes import BLOB_TYPES, GEOMETRY_TYPES, TEXT_TYPES, logical_type, source_type
from runtime.errors import BadRecordError
from runtime.types import DataType, to_arrow

_TEXT, _BLOB, _GEOMETRY = TEXT_TYPES, BLOB_TYPES, GEOMETRY_TYPES
_QUOTED = re.compile(r"'((?:[^']|'')*)'")


@dataclass(frozen=True)
class NativeColumn:
    """One column as the server describes it (``information_schema.COLUMNS``)."""

    name: str
    data_type: str          # lower case: int, varchar, datetime, enum ...
    column_type: str        # full text: int(10) unsigned, enum('a','b'), datetime(6) ...
    nullable: bool = True
    charset: str | None = None
    length: int | None = None      # characters (CHAR/VARCHAR) or bytes (BINARY)
    precision: int | None = None
    scale: int | None = None
    fsp: int = 0

    @property
    def unsigned(self) -> bool:
        return "unsigned" in self.column_type.lower()

    @property
    def values(self) -> tuple[str, ...]:
        """ENUM / SET members, in declaration order."""
        inner = self.column_type[self.column_type.index("(") + 1:self.column_type.rindex(")")]
        return tuple(m.replace("''", "'") for m in _QUOTED.findall(inner))

    @property
    def is_binary(self) -> bool:
        return self.data_type in _BLOB or (self.data_type in _TEXT and self.charset == "binary")

    @property
    def is_geometry(self) -> bool:
        return self.data_type in _GEOMETRY

    @property
    def bit_length(self) -> int:
        return self.precision or 1

    def logical(self) -> DataType:
        """The logical type of this column: the one MySQL type map,
        :func:`formats.mysqltypes.logical_type`."""
        try:
            return logical_type(self.data_type, unsigned=self.unsigned, length=self.length,
                                precision=self.precision, scale=self.scale, fsp=self.fsp,
                                binary_charset=self.charset == "binary")
        except ValueError:
            raise BadRecordError(f"column {self.name!r}: MySQL type {self.column_type!r} is not "
                                 "supported") from None

    def source_type(self) -> str | None:
        """What the column keeps of its MySQL type beside the logical type
        (``Column.source_type``: :func:`formats.mysqltypes.source_type`)."""
        return source_type(self.data_type, bits=self.bit_length, values=(
            self.values if self.data_type in ("enum", "set") else ()))

    def select_expr(self) -> str:
        """How the snapshot selects this column so that its text is exact."""
        q = quote(self.name)
        if self.data_type == "float":
            # FLOAT prints with 6 significant digits; as DOUBLE it prints exactly
            return f"{q} + 0e0"
        return q

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("name", "data_type", "column_type", "nullable",
                                              "charset", "length", "precision", "scale", "fsp")}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NativeColumn:
        return cls(**d)


def quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


# -- per-value conversions shared by both paths -------------------------------------------------
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def parse_time(text: str) -> dt.timedelta:
    """``-838:59:59.000000`` -> timedelta (the sign applies to the whole value)."""
    neg = text.startswith("-")
    h, m, s = text.lstrip("-").split(":")
    sec, _, frac = s.partition(".")
    td = dt.timedelta(hours=int(h), minutes=int(m), seconds=int(sec),
                      microseconds=int((frac + "000000")[:6]) if frac else 0)
    return -td if neg else td


def wkb_of(value: bytes) -> bytes:
    """MySQL stores geometries as a 4-byte SRID then WKB; the logical value is the WKB, as
    EWKB when the SRID is not 0 (:mod:`formats.codec.geometry`)."""
    return geometry_from_mysql(value)


def set_members(text: str) -> list[str]:
    return text.split(",") if text else []


# -- snapshot: text columns -> Arrow -------------------------------------------------------------
def _zero_date_mask(arr: pa.Array) -> pa.Array:
    return pc.starts_with(arr, "0000-00-00")


def text_column_to_arrow(col: NativeColumn, t: DataType, arr: pa.Array, zero_null: bool,
                         table: str) -> pa.Array:
    """Convert one snapshot column (Arrow ``binary`` of the text protocol's values) to the
    Arrow type of its logical type, vectorised where Arrow can; per value where it can't."""
    at = to_arrow(t)
    k = t.kind
    if k in ("BINARY", "VARBINARY", "BYTES") and not col.is_geometry and col.data_type != "bit":
        return arr
    s = arr.cast(pa.string()) if k not in ("BOOLEAN", "BYTES") else arr
    if k in ("CHAR", "VARCHAR", "STRING", "JSON"):
        s.validate(full=True)  # utf8mb4 from the server; a broken value fails here, by name
        return s
    if t.is_integer or k in ("DECIMAL", "FLOAT", "DOUBLE"):
        return pc.cast(s, at)
    if k in ("DATE", "TIMESTAMP", "TIMESTAMP_LTZ"):
        zero = _zero_date_mask(s)
        if pc.any(zero).as_py():
            if not zero_null:
                raise BadRecordError(f"{table}.{col.name}: zero date with zero-date = \"error\"")
            s = pc.if_else(zero, pa.scalar(None, pa.string()), s)
        if k == "DATE":
            return pc.cast(s, pa.date32())
        return pc.cast(pc.cast(s, pa.timestamp("us")), at)
    values = arr.to_pylist()
    if col.data_type == "bit":
        if k == "BOOLEAN":
            out: list[Any] = [None if v is None else any(v) for v in values]
        else:
            out = values
    elif k == "TIME":
        out = [None if v is None else parse_time(v.decode()) for v in values]
    elif k == "ARRAY":
        out = [None if v is None else set_members(v.decode()) for v in values]
    elif col.is_geometry:
        out = [None if v is None else wkb_of(v) for v in values]
    else:
        raise BadRecordError(f"{table}.{col.name}: no snapshot conversion for {col.column_type}")
    return pa.array(out, type=at)


def timestamp_from_epoch(seconds: int, micros: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(seconds=seconds, microseconds=micros)
