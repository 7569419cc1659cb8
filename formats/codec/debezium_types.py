"""Kafka Connect / Debezium schemas (the ``schema`` part of JsonConverter messages) to table
schemas, and Debezium's value encodings to our Python values.

Debezium names the semantic type of a field (``io.debezium.time.MicroTimestamp``,
``org.apache.kafka.connect.data.Decimal``...) and encodes values accordingly (days, epoch
micros, base64 two's-complement unscaled decimals...).  Each field maps to a logical type and,
where the encoding is not what :func:`formats.message.values.column_array` reads, to a *native*
conversion applied first.  Fields we wrote ourselves carry the parameter ``hub.logical-type``
with the exact logical type (:mod:`formats.codec.debezium_encoding`; the hub's earlier
envelopes used it with the text encodings of :mod:`formats.codec.text`), which makes our
envelopes round-trip exactly.
"""
from __future__ import annotations

import binascii
import datetime as dt
import struct
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from formats.codec.geometry import join_ewkb
from formats.mysqltypes import source_type
from runtime.schema import Column, TableSchema
from runtime.types import DataType, T

LOGICAL_PARAM = "hub.logical-type"

_EPOCH = dt.date(1970, 1, 1)
_EPOCH_DT = dt.datetime(1970, 1, 1)

Native = Callable[[Any, dict], Any]


def _date(v: Any, p: dict) -> str:
    if isinstance(v, str):  # already ISO text (declared columns of other producers)
        return v
    return (_EPOCH + dt.timedelta(days=v)).isoformat()


def _ts(unit: int) -> Native:
    """Epoch integers in units of ``unit`` nanoseconds to ISO text (integer arithmetic: no
    float rounding of micro/nanoseconds); texts pass."""
    def conv(v: Any, p: dict) -> str:
        if isinstance(v, str):
            return v
        if unit == 1:  # nanoseconds: the text keeps all nine digits
            s, ns = divmod(v, 1_000_000_000)
            return (_EPOCH_DT + dt.timedelta(seconds=s)).isoformat() + f".{ns:09d}"
        return (_EPOCH_DT + dt.timedelta(microseconds=v * unit // 1000)).isoformat()
    return conv


def _time(unit: int) -> Native:
    def conv(v: Any, p: dict) -> str:
        if isinstance(v, str):
            return v
        if unit == 1:
            sign = "-" if v < 0 else ""
            s, ns = divmod(abs(v), 1_000_000_000)
            return f"{sign}{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}.{ns:09d}"
        us = v * unit // 1000
        sign = "-" if us < 0 else ""
        us = abs(us)
        s, frac = divmod(us, 1_000_000)
        return f"{sign}{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}.{frac:06d}"
    return conv


def _decimal(v: Any, p: dict) -> Any:
    if isinstance(v, (int, float, str)):  # decimal.handling.mode = double / string
        return str(v)
    raise ValueError(f"{v!r} is not a Connect decimal")


def scaled_text(unscaled: int, scale: int) -> str:
    """The exact decimal text of ``unscaled * 10**-scale``.  The string constructor and
    ``format(.., "f")`` are exact; arithmetic (``scaleb``) would round to the context's 28
    digits."""
    return format(Decimal(f"{unscaled}E{-scale}"), "f")


def _unscaled(text: str) -> int:
    """A base64 two's-complement big-endian integer (Java's ``BigInteger.toByteArray``)."""
    try:
        raw = binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error as exc:
        raise ValueError(f"{text[:40]!r} is not a base64 decimal: {exc}") from None
    return int.from_bytes(raw, "big", signed=True)


def _connect_decimal(v: Any, p: dict) -> str:
    if isinstance(v, str) and p.get("scale") is not None:
        return scaled_text(_unscaled(v), int(p["scale"]))
    return _decimal(v, p)


def _variable_decimal(v: Any, p: dict) -> str:
    return scaled_text(_unscaled(v["value"]), int(v["scale"]))


def _wkb(v: Any, p: dict) -> str:
    """Debezium's Geometry / Point struct as the hub's value (base64: the BYTES column
    decodes it): the WKB, as EWKB when the struct has an SRID (:mod:`formats.codec.geometry`);
    a Point of older Debezium versions without ``wkb`` from its x and y."""
    wkb, srid = v.get("wkb"), v.get("srid")
    if wkb is None:
        raw = struct.pack("<BIdd", 1, 1, float(v["x"]), float(v["y"]))
    elif not srid:
        return wkb
    else:
        try:
            raw = binascii.a2b_base64(wkb, strict_mode=True)
        except binascii.Error as exc:
            raise ValueError(f"{wkb[:40]!r} is not base64: {exc}") from None
    return binascii.b2a_base64(join_ewkb(raw, srid), newline=False).decode("ascii")


def _set(v: Any, p: dict) -> list[str]:
    if isinstance(v, list):  # already an array (our own ARRAY columns)
        return v
    if not isinstance(v, str):
        raise ValueError(f"{v!r:.40} is not a SET text (comma-separated)")
    return v.split(",") if v else []


def _bits(v: Any, p: dict) -> str:
    """Debezium's BIT(n) bytes are little-endian (``MySqlValueConverters.convertBits``); ours,
    like MySQL's own, big-endian: reverse them."""
    try:
        raw = binascii.a2b_base64(v, strict_mode=True)
    except binascii.Error as exc:
        raise ValueError(f"{v[:40]!r} is not base64: {exc}") from None
    return binascii.b2a_base64(raw[::-1], newline=False).decode("ascii")


#: Debezium / Connect semantic names -> (logical type, native conversion or None)
_NAMED: dict[str, tuple[Callable[[dict], DataType], Native | None]] = {
    "io.debezium.time.Date": (lambda f: T("DATE"), _date),
    "org.apache.kafka.connect.data.Date": (lambda f: T("DATE"), _date),
    "io.debezium.time.Timestamp": (lambda f: T("TIMESTAMP(3)"), _ts(1_000_000)),
    "org.apache.kafka.connect.data.Timestamp": (lambda f: T("TIMESTAMP(3)"), _ts(1_000_000)),
    "io.debezium.time.MicroTimestamp": (lambda f: T("TIMESTAMP(6)"), _ts(1_000)),
    "io.debezium.time.NanoTimestamp": (lambda f: T("TIMESTAMP(9)"), _ts(1)),
    "io.debezium.time.ZonedTimestamp": (lambda f: T("TIMESTAMP_LTZ(6)"), None),
    "io.debezium.time.IsoTimestamp": (lambda f: T("TIMESTAMP(6)"), None),
    "io.debezium.time.Time": (lambda f: T("TIME(3)"), _time(1_000_000)),
    "org.apache.kafka.connect.data.Time": (lambda f: T("TIME(3)"), _time(1_000_000)),
    "io.debezium.time.MicroTime": (lambda f: T("TIME(6)"), _time(1_000)),
    "io.debezium.time.NanoTime": (lambda f: T("TIME(9)"), _time(1)),
    "io.debezium.time.ZonedTime": (lambda f: T("STRING"), None),
    "io.debezium.time.Year": (lambda f: T("INT"), None),
    "io.debezium.time.MicroDuration": (lambda f: T("BIGINT"), None),
    "org.apache.kafka.connect.data.Decimal": (
        lambda f: T(f"DECIMAL({_param(f, 'connect.decimal.precision', 38)},"
                    f"{_param(f, 'scale', 0)})"), _connect_decimal),
    "io.debezium.data.VariableScaleDecimal": (lambda f: T("DECIMAL(65,30)"), _variable_decimal),
    "io.debezium.data.Json": (lambda f: T("JSON"), None),
    "io.debezium.data.Enum": (lambda f: T("STRING"), None),
    "io.debezium.data.EnumSet": (lambda f: T("ARRAY<STRING>"), _set),
    "io.debezium.data.Bits": (lambda f: T("BYTES"), _bits),
    "io.debezium.data.Uuid": (lambda f: T("STRING"), None),
    "io.debezium.data.Xml": (lambda f: T("STRING"), None),
    "io.debezium.data.geometry.Geometry": (lambda f: T("BYTES"), _wkb),
    "io.debezium.data.geometry.Geography": (lambda f: T("BYTES"), _wkb),
    "io.debezium.data.geometry.Point": (lambda f: T("BYTES"), _wkb),
}
_PRIMITIVE = {"boolean": "BOOLEAN", "int8": "TINYINT", "int16": "SMALLINT", "int32": "INT",
              "int64": "BIGINT", "float": "FLOAT", "float32": "FLOAT", "float64": "DOUBLE",
              "double": "DOUBLE", "string": "STRING", "bytes": "BYTES"}


def _param(field: dict, name: str, default: int) -> int:
    v = (field.get("parameters") or {}).get(name)
    return int(v) if v is not None else default


def field_type(field: dict) -> tuple[DataType, Native | None]:
    """Logical type and native conversion of one Connect field schema."""
    params = field.get("parameters") or {}
    name = field.get("name")
    if LOGICAL_PARAM in params:
        # our exact type; the semantic name (if any) says how the value is encoded (fields of
        # the hub's earlier envelopes carry no name whose encoding differs from our texts)
        return T(params[LOGICAL_PARAM]), _NAMED[name][1] if name in _NAMED else None
    if name in _NAMED:
        make, native = _NAMED[name]
        return make(field), native
    kind = field.get("type")
    if kind == "array":
        elem, native = field_type(field.get("items") or {"type": "string"})
        conv = None if native is None else (
            lambda v, p, n=native: [None if x is None else n(x, p) for x in v])
        return DataType("ARRAY", element=elem), conv
    if kind in ("struct", "map"):
        return T("JSON"), None
    if kind in _PRIMITIVE:
        return T(_PRIMITIVE[kind]), None
    raise ValueError(f"unsupported Connect type {kind!r} (field {field.get('field')!r})")


def field_source_type(field: dict) -> str | None:
    """The MySQL type a Debezium semantic name says (``Column.source_type``): ENUM and SET
    with their ``allowed`` members, BIT(n) with its ``length``, YEAR, the geometries."""
    name = field.get("name")
    params = field.get("parameters") or {}
    if name in ("io.debezium.data.Enum", "io.debezium.data.EnumSet"):
        allowed = params.get("allowed")
        kind = "enum" if name.endswith("Enum") else "set"
        return source_type(kind, values=tuple(allowed.split(","))) if allowed else None
    if name == "io.debezium.data.Bits" and str(params.get("length", "")).isdigit():
        return source_type("bit", bits=int(params["length"]))
    return {"io.debezium.time.Year": "year", "io.debezium.data.geometry.Geometry": "geometry",
            "io.debezium.data.geometry.Point": "point"}.get(name or "")


def row_schema(table: str, struct: dict, primary_key: tuple[str, ...]
               ) -> tuple[TableSchema, dict[str, tuple[Native, dict]]]:
    """The table schema of a Connect struct schema (the ``before``/``after`` field), and the
    native conversions of its columns."""
    cols = []
    natives: dict[str, tuple[Native, dict]] = {}
    for f in struct.get("fields", []):
        t, native = field_type(f)
        cols.append(Column(f["field"], t, bool(f.get("optional", True)),
                           source_type=field_source_type(f)))
        if native is not None:
            natives[f["field"]] = (native, f.get("parameters") or {})
    names = {c.name for c in cols}
    return TableSchema(table, tuple(cols), tuple(k for k in primary_key if k in names)), natives


def apply_natives(row: dict[str, Any] | None, natives: dict[str, tuple[Native, dict]]) -> None:
    """Convert Debezium-encoded values of ``row`` in place (per value: only named types)."""
    if row is None:
        return
    for name, (native, params) in natives.items():
        v = row.get(name)
        if v is not None:
            try:
                row[name] = native(v, params)
            except (ValueError, TypeError, KeyError) as exc:
                raise ValueError(f"column {name!r}: {exc}") from None


# -- Debezium's encoding options ---------------------------------------------------------------
DecimalMode = Literal["precise", "string", "double"]
TimeMode = Literal["adaptive_time_microseconds", "adaptive", "connect"]
BigintUnsignedMode = Literal["long", "precise"]

#: nanoseconds per unit -> (Debezium name of a TIME, of a DATETIME in that unit)
_UNIT_NAMES = {1_000_000: ("io.debezium.time.Time", "io.debezium.time.Timestamp"),
               1_000: ("io.debezium.time.MicroTime", "io.debezium.time.MicroTimestamp"),
               1: ("io.debezium.time.NanoTime", "io.debezium.time.NanoTimestamp")}
CONNECT_TIME = ("org.apache.kafka.connect.data.Time", "org.apache.kafka.connect.data.Timestamp")


@dataclass(frozen=True)
class Modes:
    """Debezium's options that change value encodings (MySQL connector names and defaults)."""

    decimal: DecimalMode = "precise"
    time: TimeMode = "adaptive_time_microseconds"
    bigint_unsigned: BigintUnsignedMode = "long"

    def time_unit(self, kind: str, precision: int | None) -> tuple[int, str]:
        """Nanoseconds per unit and the semantic name of a TIME (``kind`` "TIME") or DATETIME
        (``kind`` "TIMESTAMP") of ``precision`` under :attr:`time`: ``connect`` is always
        milliseconds; ``adaptive`` follows the precision (<= 3 millis, <= 6 micros, else
        nanos); ``adaptive_time_microseconds`` too, except that TIME is always micros."""
        p = precision or 0
        if self.time == "connect":
            return 1_000_000, CONNECT_TIME[kind == "TIMESTAMP"]
        if kind == "TIME" and self.time == "adaptive_time_microseconds" and p <= 6:
            unit = 1_000
        else:
            unit = 1_000_000 if p <= 3 else 1_000 if p <= 6 else 1
        return unit, _UNIT_NAMES[unit][kind == "TIMESTAMP"]


def _decimal_value(v: Any, p: dict) -> Any:
    """A DECIMAL under ``decimal.handling.mode = precise`` (base64 scaled bytes; the scale is
    the declared column's), or a number / VariableScaleDecimal struct (unambiguous)."""
    if isinstance(v, dict):
        return _variable_decimal(v, p)
    if isinstance(v, str):
        return scaled_text(_unscaled(v), int(p["scale"]))
    return _decimal(v, p)


def declared_natives(schema: TableSchema, modes: Modes) -> dict[str, tuple[Native, dict]]:
    """Conversions of Debezium-encoded values of declared columns (messages without the schema
    part): what a column's logical type and ``modes`` say the producer wrote.  Texts of
    dates and times pass (unambiguous); a DECIMAL string is base64 under ``precise`` and text
    otherwise (the mode decides: ``"1234"`` is both); an ARRAY text is a SET's comma-separated
    members."""
    out: dict[str, tuple[Native, dict]] = {}
    for c in schema.columns:
        t = c.type
        if t.kind == "DATE":
            out[c.name] = (_date, {})
        elif t.kind in ("TIME", "TIMESTAMP"):
            unit, _ = modes.time_unit(t.kind, t.precision)
            out[c.name] = ((_time if t.kind == "TIME" else _ts)(unit), {})
        elif t.kind == "DECIMAL":
            out[c.name] = ((_decimal_value if modes.decimal == "precise" else _decimal),
                           {"scale": t.scale or 0})
        elif t.kind == "ARRAY":
            out[c.name] = (_set, {})
    return out
