"""Change events and Avro: the mapping between logical types and Avro schemas, and between
rows and Avro records, shared by the ``avro`` message format (:mod:`formats.message.avro`,
Confluent wire format) and Avro container files (:mod:`formats.file.avro`).

Every field carries its logical type in the ``hub.logical-type`` property (:data:`PROP`), so
reading back what we wrote is exact; schemas written by others map through their Avro
logical types.  TIME is a signed long of microseconds (MySQL TIME reaches -838:59:59, which
Avro's time-micros can't hold).
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

from runtime.schema import Column, TableSchema
from runtime.types import DataType, T

PROP = "hub.logical-type"


# -- logical types <-> Avro -------------------------------------------------------------------
def _avro_type(t: DataType) -> Any:
    k = t.kind
    base: Any
    if k == "DECIMAL":
        base = {"type": "bytes", "logicalType": "decimal", "precision": t.precision,
                "scale": t.scale}
    elif k == "DATE":
        base = {"type": "int", "logicalType": "date"}
    elif k == "TIMESTAMP":
        base = {"type": "long", "logicalType": "local-timestamp-micros"}
    elif k == "TIMESTAMP_LTZ":
        base = {"type": "long", "logicalType": "timestamp-micros"}
    elif k == "ARRAY":
        assert t.element is not None
        base = {"type": "array", "items": ["null", _avro_type(t.element)]}
    else:
        base = {"type": {"BOOLEAN": "boolean", "TINYINT": "int", "SMALLINT": "int",
                         "INT": "int", "BIGINT": "long", "FLOAT": "float", "DOUBLE": "double",
                         "TIME": "long"}.get(k, "bytes" if t.is_binary else "string")}
    base[PROP] = str(t)
    return base


def avro_name(text: str) -> str:
    """``text`` as an Avro name (letters, digits, underscores)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", text) or "_"


def row_record(schema: TableSchema, name: str) -> dict:
    return {"type": "record", "name": name, "fields": [
        {"name": c.name, "type": ["null", _avro_type(c.type)] if c.nullable else
         _avro_type(c.type), **({"default": None} if c.nullable else {})}
        for c in schema.columns]}


def envelope_record(schema: TableSchema) -> dict:
    """The Avro schema of our change-event envelope for rows of ``schema``: Kafka record
    values (``avro`` format) and the records of Avro container files."""
    name = avro_name(schema.table)
    row = row_record(schema, f"{name}_Value")
    return {"type": "record", "name": f"{name}_Envelope", "namespace": "hub", "fields": [
        {"name": "before", "type": ["null", row], "default": None},
        {"name": "after", "type": ["null", row["name"]], "default": None},
        {"name": "op", "type": "string"},
        {"name": "ts_ms", "type": "long"},
        {"name": "source", "type": {"type": "record", "name": "Source", "fields": [
            {"name": "db", "type": "string"}, {"name": "table", "type": "string"}]}}]}


def _logical(avro: Any) -> DataType:
    if isinstance(avro, list):
        branches = [b for b in avro if b != "null"]
        return _logical(branches[0]) if len(branches) == 1 else T("JSON")
    if isinstance(avro, str):
        avro = {"type": avro}
    if PROP in avro:
        return T(avro[PROP])
    lt, kind = avro.get("logicalType"), avro.get("type")
    if lt == "decimal":
        return T(f"DECIMAL({avro.get('precision', 38)},{avro.get('scale', 0)})")
    simple = {"date": "DATE", "time-millis": "TIME(3)", "time-micros": "TIME(6)",
              "timestamp-millis": "TIMESTAMP_LTZ(3)", "timestamp-micros": "TIMESTAMP_LTZ(6)",
              "local-timestamp-millis": "TIMESTAMP(3)", "local-timestamp-micros": "TIMESTAMP(6)",
              "uuid": "STRING"}
    if lt in simple:
        return T(simple[lt])
    if kind == "array":
        return DataType("ARRAY", element=_logical(avro["items"]))
    prim = {"boolean": "BOOLEAN", "int": "INT", "long": "BIGINT", "float": "FLOAT",
            "double": "DOUBLE", "string": "STRING", "bytes": "BYTES", "fixed": "BYTES",
            "enum": "STRING"}
    return T(prim.get(kind, "JSON"))


def _nullable(avro: Any) -> bool:
    return isinstance(avro, list) and "null" in avro


def _record_of(avro: Any) -> dict | None:
    """The record schema defined in a field type (a union's record branch), else None."""
    if isinstance(avro, list):
        return next((b for b in avro if isinstance(b, dict) and b.get("type") == "record"),
                    None)
    return avro if isinstance(avro, dict) and avro.get("type") == "record" else None


def schema_columns(raw: dict) -> tuple[bool, list[Column], list[int]]:
    """(envelope?, columns, indexes of TIME columns) of a writer schema: a change envelope
    (``before``/``after``/``op``) or a plain row record."""
    names = {f["name"] for f in raw.get("fields", [])}
    envelope = {"before", "after", "op"} <= names
    if envelope:  # the row record is defined at its first use, referenced after
        images = [f["type"] for f in raw["fields"] if f["name"] in ("before", "after")]
        fields = next(r for r in map(_record_of, images) if r)["fields"]
    else:
        fields = raw["fields"]
    cols = [Column(f["name"], _logical(f["type"]), _nullable(f["type"])) for f in fields]
    return envelope, cols, [i for i, c in enumerate(cols) if c.type.kind == "TIME"]


# -- rows <-> records -------------------------------------------------------------------------
def image_row(image: dict, cols: list[Column], times: list[int]) -> tuple:
    """A decoded record (a row image) as a row of ``cols``; ``times``: indexes of the TIME
    columns, whose longs (microseconds) or ``datetime.time`` become ``timedelta``."""
    row = [image.get(c.name) for c in cols]
    for j in times:
        v = row[j]
        if isinstance(v, int):
            row[j] = dt.timedelta(microseconds=v)
        elif isinstance(v, dt.time):
            row[j] = dt.timedelta(hours=v.hour, minutes=v.minute, seconds=v.second,
                                  microseconds=v.microsecond)
    return tuple(row)


def row_image(names: tuple[str, ...], row: tuple, times: list[int]) -> dict:
    """A row as a record to encode (the inverse of :func:`image_row`): TIME values
    (``timedelta``) as signed microseconds."""
    rec = dict(zip(names, row))
    for j in times:
        v = row[j]
        if v is not None:
            rec[names[j]] = (v.days * 86_400_000_000 + v.seconds * 1_000_000 + v.microseconds)
    return rec
