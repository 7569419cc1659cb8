"""Logical types (the Flink CDC set) and their mapping to Python values and Arrow.

Every source maps its native types to these, every sink maps from them.  A type is written
and parsed as text (``DECIMAL(12,2)``, ``TIMESTAMP(6)``, ``ARRAY<STRING>``), which is also how
schemas are stored in checkpoints.

Python value of each type (what rows carry):

==================  ===========================================================
BOOLEAN             bool
TINYINT..BIGINT     int
DECIMAL(p,s)        decimal.Decimal (exact; BIGINT UNSIGNED maps to DECIMAL(20,0))
FLOAT, DOUBLE       float
CHAR/VARCHAR/STRING str
BINARY/VARBINARY/   bytes (trailing zero bytes are part of the value)
BYTES
DATE                datetime.date
TIME(p)             datetime.timedelta (signed: MySQL TIME reaches -838:59:59)
TIMESTAMP(p)        naive datetime.datetime (wall clock of the source)
TIMESTAMP_LTZ(p)    aware datetime.datetime in UTC (an instant)
JSON                str holding the JSON text (sinks embed it as JSON, never as a quoted string)
ARRAY<T>            list
==================  ===========================================================
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import pyarrow as pa

#: Type names without parameters, in the order of the table above.
KINDS = (
    "BOOLEAN", "TINYINT", "SMALLINT", "INT", "BIGINT", "DECIMAL", "FLOAT", "DOUBLE",
    "CHAR", "VARCHAR", "STRING", "BINARY", "VARBINARY", "BYTES", "DATE", "TIME",
    "TIMESTAMP", "TIMESTAMP_LTZ", "JSON", "ARRAY",
)
_ALIASES = {"INTEGER": "INT", "BOOL": "BOOLEAN", "REAL": "FLOAT", "TEXT": "STRING"}


@dataclass(frozen=True, slots=True)
class DataType:
    """A logical type.  ``precision`` is DECIMAL precision or TIME/TIMESTAMP fractional digits;
    ``length`` is CHAR/BINARY length; ``element`` is the ARRAY element type."""

    kind: str
    precision: int | None = None
    scale: int | None = None
    length: int | None = None
    element: DataType | None = None

    def __str__(self) -> str:
        if self.kind == "DECIMAL":
            return f"DECIMAL({self.precision},{self.scale})"
        if self.kind in ("TIME", "TIMESTAMP", "TIMESTAMP_LTZ"):
            return f"{self.kind}({self.precision})"
        if self.kind in ("CHAR", "VARCHAR", "BINARY", "VARBINARY") and self.length is not None:
            return f"{self.kind}({self.length})"
        if self.kind == "ARRAY":
            return f"ARRAY<{self.element}>"
        return self.kind

    @property
    def is_integer(self) -> bool:
        return self.kind in ("TINYINT", "SMALLINT", "INT", "BIGINT")

    @property
    def is_string(self) -> bool:
        return self.kind in ("CHAR", "VARCHAR", "STRING")

    @property
    def is_binary(self) -> bool:
        return self.kind in ("BINARY", "VARBINARY", "BYTES")


_TYPE_RE = re.compile(r"^\s*([A-Za-z_]+)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*$")


@lru_cache(maxsize=4096)
def parse_type(text: str) -> DataType:
    """Parse ``DECIMAL(12,2)``-style text.  Raises ValueError naming the text."""
    s = text.strip()
    if s.upper().startswith("ARRAY<") and s.endswith(">"):
        return DataType("ARRAY", element=parse_type(s[6:-1]))
    m = _TYPE_RE.match(s)
    if not m:
        raise ValueError(f"unknown type {text!r}")
    kind = _ALIASES.get(m.group(1).upper(), m.group(1).upper())
    a = int(m.group(2)) if m.group(2) is not None else None
    b = int(m.group(3)) if m.group(3) is not None else None
    if kind not in KINDS or kind == "ARRAY":
        raise ValueError(f"unknown type {text!r}; known: {', '.join(KINDS)}")
    if kind == "DECIMAL":
        p = 10 if a is None else a
        sc = 0 if b is None else b
        if not 1 <= p <= 76 or not 0 <= sc <= p:
            raise ValueError(f"bad DECIMAL precision/scale in {text!r}")
        return DataType("DECIMAL", precision=p, scale=sc)
    if kind in ("TIME", "TIMESTAMP", "TIMESTAMP_LTZ"):
        p = (0 if kind == "TIME" else 6) if a is None else a
        if not 0 <= p <= 9:
            raise ValueError(f"bad fractional precision in {text!r}")
        return DataType(kind, precision=p)
    if kind in ("CHAR", "VARCHAR", "BINARY", "VARBINARY"):
        return DataType(kind, length=a)
    if a is not None:
        raise ValueError(f"type {kind} takes no parameters: {text!r}")
    return DataType(kind)


def T(text: str) -> DataType:  # noqa: N802 - short constructor used in schemas
    """Shorthand: ``T("BIGINT")``."""
    return parse_type(text)


@lru_cache(maxsize=4096)
def to_arrow(t: DataType) -> pa.DataType:
    """The Arrow type that holds values of ``t`` without loss."""
    k = t.kind
    simple = {
        "BOOLEAN": pa.bool_(), "TINYINT": pa.int8(), "SMALLINT": pa.int16(), "INT": pa.int32(),
        "BIGINT": pa.int64(), "FLOAT": pa.float32(), "DOUBLE": pa.float64(), "CHAR": pa.string(),
        "VARCHAR": pa.string(), "STRING": pa.string(), "BINARY": pa.binary(),
        "VARBINARY": pa.binary(), "BYTES": pa.binary(), "DATE": pa.date32(), "JSON": pa.string(),
    }
    if k in simple:
        return simple[k]
    if k == "DECIMAL":
        assert t.precision is not None and t.scale is not None
        if t.precision <= 38:
            return pa.decimal128(t.precision, t.scale)
        return pa.decimal256(t.precision, t.scale)
    unit = "us" if (t.precision or 0) <= 6 else "ns"
    if k == "TIME":
        return pa.duration(unit)
    if k == "TIMESTAMP":
        return pa.timestamp(unit)
    if k == "TIMESTAMP_LTZ":
        return pa.timestamp(unit, tz="UTC")
    if k == "ARRAY":
        assert t.element is not None
        return pa.list_(to_arrow(t.element))
    raise ValueError(f"no Arrow mapping for {t}")


def from_arrow(a: pa.DataType) -> DataType:
    """The logical type for an Arrow type (used by sources reading Parquet/Arrow)."""
    if pa.types.is_boolean(a):
        return DataType("BOOLEAN")
    ints = {8: "TINYINT", 16: "SMALLINT", 32: "INT", 64: "BIGINT"}
    if pa.types.is_signed_integer(a):
        return DataType(ints[a.bit_width])
    if pa.types.is_unsigned_integer(a):
        # widen so every unsigned value fits (BIGINT UNSIGNED -> DECIMAL(20,0))
        return DataType("DECIMAL", precision=20, scale=0) if a.bit_width == 64 else DataType(
            ints[a.bit_width * 2])
    if pa.types.is_float32(a) or pa.types.is_float16(a):
        return DataType("FLOAT")
    if pa.types.is_float64(a):
        return DataType("DOUBLE")
    if pa.types.is_decimal(a):
        return DataType("DECIMAL", precision=a.precision, scale=a.scale)
    if pa.types.is_string(a) or pa.types.is_large_string(a):
        return DataType("STRING")
    if pa.types.is_binary(a) or pa.types.is_large_binary(a) or pa.types.is_fixed_size_binary(a):
        return DataType("BYTES")
    if pa.types.is_date(a):
        return DataType("DATE")
    if pa.types.is_duration(a) or pa.types.is_time(a):
        return DataType("TIME", precision=9 if a.unit == "ns" else 6)
    if pa.types.is_timestamp(a):
        p = {"s": 0, "ms": 3, "us": 6, "ns": 9}[a.unit]
        return DataType("TIMESTAMP_LTZ" if a.tz else "TIMESTAMP", precision=p)
    if pa.types.is_list(a) or pa.types.is_large_list(a):
        return DataType("ARRAY", element=from_arrow(a.value_type))
    if pa.types.is_null(a):
        return DataType("STRING")
    raise ValueError(f"no logical type for Arrow type {a}")
