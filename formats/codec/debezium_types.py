"""Kafka Connect / Debezium schemas (the ``schema`` part of JsonConverter messages) to table
schemas, and Debezium's value encodings to our Python values.

Debezium names the semantic type of a field (``io.debezium.time.MicroTimestamp``,
``org.apache.kafka.connect.data.Decimal``...) and encodes values accordingly (days, epoch
micros, base64 two's-complement unscaled decimals...).  Each field maps to a logical type and,
where the encoding is not what :func:`formats.message.values.column_array` reads, to a *native*
conversion applied first.  Fields we wrote ourselves carry the parameter ``hub.logical-type``
and use our text encodings (:mod:`formats.codec.text`), which makes our envelopes round-trip
exactly.
"""
from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from runtime.schema import Column, TableSchema
from runtime.types import DataType, T

LOGICAL_PARAM = "hub.logical-type"

_EPOCH = dt.date(1970, 1, 1)
_EPOCH_DT = dt.datetime(1970, 1, 1)

Native = Callable[[Any, dict], Any]


def _date(v: Any, p: dict) -> str:
    return (_EPOCH + dt.timedelta(days=v)).isoformat()


def _ts(unit: int) -> Native:
    # integer arithmetic: no float rounding of micro/nanoseconds
    return lambda v, p: (_EPOCH_DT + dt.timedelta(microseconds=v * unit // 1000)).isoformat()


def _time(unit: int) -> Native:
    def conv(v: Any, p: dict) -> str:
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


def _connect_decimal(v: Any, p: dict) -> str:
    if isinstance(v, str) and p.get("scale") is not None:
        unscaled = int.from_bytes(base64.b64decode(v), "big", signed=True)
        return str(Decimal(unscaled).scaleb(-int(p["scale"])))
    return _decimal(v, p)


def _variable_decimal(v: Any, p: dict) -> str:
    unscaled = int.from_bytes(base64.b64decode(v["value"]), "big", signed=True)
    return str(Decimal(unscaled).scaleb(-int(v["scale"])))


def _wkb(v: Any, p: dict) -> str:
    return v["wkb"]  # base64 WKB: the BYTES column decodes it


def _set(v: Any, p: dict) -> list[str]:
    return v.split(",") if v else []


#: Debezium / Connect semantic names -> (logical type, native conversion or None)
_NAMED: dict[str, tuple[Callable[[dict], DataType], Native | None]] = {
    "io.debezium.time.Date": (lambda f: T("DATE"), _date),
    "org.apache.kafka.connect.data.Date": (lambda f: T("DATE"), _date),
    "io.debezium.time.Timestamp": (lambda f: T("TIMESTAMP(3)"), _ts(1_000_000)),
    "org.apache.kafka.connect.data.Timestamp": (lambda f: T("TIMESTAMP(3)"), _ts(1_000_000)),
    "io.debezium.time.MicroTimestamp": (lambda f: T("TIMESTAMP(6)"), _ts(1_000)),
    "io.debezium.time.NanoTimestamp": (lambda f: T("TIMESTAMP(6)"), _ts(1)),
    "io.debezium.time.ZonedTimestamp": (lambda f: T("TIMESTAMP_LTZ(6)"), None),
    "io.debezium.time.IsoTimestamp": (lambda f: T("TIMESTAMP(6)"), None),
    "io.debezium.time.Time": (lambda f: T("TIME(3)"), _time(1_000_000)),
    "org.apache.kafka.connect.data.Time": (lambda f: T("TIME(3)"), _time(1_000_000)),
    "io.debezium.time.MicroTime": (lambda f: T("TIME(6)"), _time(1_000)),
    "io.debezium.time.NanoTime": (lambda f: T("TIME(6)"), _time(1)),
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
    "io.debezium.data.Bits": (lambda f: T("BYTES"), None),
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
    if LOGICAL_PARAM in params:
        return T(params[LOGICAL_PARAM]), None
    name = field.get("name")
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


def row_schema(table: str, struct: dict, primary_key: tuple[str, ...]
               ) -> tuple[TableSchema, dict[str, tuple[Native, dict]]]:
    """The table schema of a Connect struct schema (the ``before``/``after`` field), and the
    native conversions of its columns."""
    cols = []
    natives: dict[str, tuple[Native, dict]] = {}
    for f in struct.get("fields", []):
        t, native = field_type(f)
        cols.append(Column(f["field"], t, bool(f.get("optional", True))))
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
            row[name] = native(v, params)


# -- writing ----------------------------------------------------------------------------------
_CONNECT_OF = {"BOOLEAN": "boolean", "TINYINT": "int8", "SMALLINT": "int16", "INT": "int32",
               "BIGINT": "int64", "FLOAT": "float", "DOUBLE": "double", "BINARY": "bytes",
               "VARBINARY": "bytes", "BYTES": "bytes"}


def connect_field(c: Column) -> dict:
    """The Connect field schema of a column as our encoder writes it (text encodings of
    :mod:`formats.codec.text`, exact type in ``hub.logical-type``)."""
    t = c.type
    f: dict[str, Any] = {"type": _CONNECT_OF.get(t.kind, "string"), "optional": c.nullable,
                         "field": c.name}
    if t.kind == "ARRAY":
        f["type"] = "array"
        f["items"] = {"type": _CONNECT_OF.get(t.element.kind, "string") if t.element else "string",
                      "optional": True}
    if t.kind == "TIMESTAMP_LTZ":
        f["name"] = "io.debezium.time.ZonedTimestamp"  # ISO-8601 with Z: Debezium's own form
    elif t.kind == "JSON":
        f["name"] = "io.debezium.data.Json"
    if t.kind not in _CONNECT_OF or t.kind in ("BINARY", "VARBINARY"):
        f["parameters"] = {LOGICAL_PARAM: str(t)}
    return f


def connect_struct(schema: TableSchema, name: str) -> dict:
    return {"type": "struct", "optional": True, "name": name,
            "fields": [connect_field(c) for c in schema.columns]}
