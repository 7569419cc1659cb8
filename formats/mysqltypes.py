"""MySQL column type texts (``int(11) unsigned``, ``decimal(10,2)``, ``datetime(3)``) to
logical types and back, for the formats that carry MySQL types (Canal's ``mysqlType``,
Debezium's schema history ``typeName``).  The mapping of :mod:`runtime.types`: unsigned types
widen, BIT(1) is BOOLEAN, ENUM is STRING, SET is ARRAY<STRING>, geometries are WKB bytes."""
from __future__ import annotations

import re

from runtime.types import DataType, T

_TYPE = re.compile(r"^\s*([a-z ]+?)\s*(?:\((.*?)\))?\s*(unsigned)?\s*(zerofill)?\s*$", re.I)
_SIMPLE = {
    "bool": "BOOLEAN", "boolean": "BOOLEAN", "float": "FLOAT", "double": "DOUBLE",
    "double precision": "DOUBLE", "real": "DOUBLE", "date": "DATE", "year": "INT",
    "json": "JSON", "tinytext": "STRING", "text": "STRING", "mediumtext": "STRING",
    "longtext": "STRING", "tinyblob": "BYTES", "blob": "BYTES", "mediumblob": "BYTES",
    "longblob": "BYTES", "enum": "STRING", "geometry": "BYTES", "point": "BYTES",
    "linestring": "BYTES", "polygon": "BYTES", "multipoint": "BYTES", "multilinestring": "BYTES",
    "multipolygon": "BYTES", "geometrycollection": "BYTES", "geomcollection": "BYTES",
}
_INTS = {"tinyint": ("TINYINT", "SMALLINT"), "smallint": ("SMALLINT", "INT"),
         "mediumint": ("INT", "INT"), "int": ("INT", "BIGINT"), "integer": ("INT", "BIGINT"),
         "bigint": ("BIGINT", "DECIMAL(20,0)")}


def from_mysql(text: str) -> DataType:
    """The logical type of a MySQL column type text.  Raises ValueError naming the text."""
    m = _TYPE.match(text)
    if not m:
        raise ValueError(f"unknown MySQL type {text!r}")
    name, args, unsigned = m.group(1).lower(), m.group(2), bool(m.group(3))
    nums = [int(a) for a in (args or "").split(",") if a.strip().isdigit()]
    if name in _INTS:
        return T(_INTS[name][1 if unsigned else 0])
    if name in ("decimal", "numeric", "dec", "fixed"):
        p = nums[0] if nums else 10
        s = nums[1] if len(nums) > 1 else 0
        return T(f"DECIMAL({p},{s})")
    if name == "bit":
        return T("BOOLEAN") if not nums or nums[0] == 1 else T("BYTES")
    if name in ("char", "varchar", "binary", "varbinary"):
        return T(f"{name.upper()}({nums[0]})") if nums else T(name.upper())
    if name == "time":
        return T(f"TIME({nums[0] if nums else 0})")
    if name == "datetime":
        return T(f"TIMESTAMP({nums[0] if nums else 0})")
    if name == "timestamp":
        return T(f"TIMESTAMP_LTZ({nums[0] if nums else 0})")
    if name == "set":
        return T("ARRAY<STRING>")
    if name in _SIMPLE:
        return T(_SIMPLE[name])
    raise ValueError(f"unknown MySQL type {text!r}")


def to_mysql(t: DataType) -> str:
    """A MySQL type text that maps back to ``t`` (ARRAY types become ``json``)."""
    k = t.kind
    if k == "DECIMAL":
        return f"decimal({t.precision},{t.scale})"
    if k in ("TIME", "TIMESTAMP", "TIMESTAMP_LTZ"):
        name = {"TIME": "time", "TIMESTAMP": "datetime", "TIMESTAMP_LTZ": "timestamp"}[k]
        return f"{name}({t.precision})" if t.precision else name
    if k in ("CHAR", "VARCHAR", "BINARY", "VARBINARY"):
        return f"{k.lower()}({t.length if t.length is not None else 255})"
    return {"BOOLEAN": "bit(1)", "TINYINT": "tinyint", "SMALLINT": "smallint", "INT": "int",
            "BIGINT": "bigint", "FLOAT": "float", "DOUBLE": "double", "STRING": "longtext",
            "BYTES": "longblob", "DATE": "date", "JSON": "json", "ARRAY": "json"}[k]
