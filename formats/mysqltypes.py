"""The one map of MySQL/MariaDB column types to logical types, used by everything that reads
MySQL types: the MySQL source (columns from ``information_schema`` and binlog table maps,
:meth:`sources.mysql.types.NativeColumn.logical`) and the formats that carry MySQL type texts
(Canal's ``mysqlType``, Debezium's schema history ``typeName``: :func:`from_mysql`).

The mapping (Flink CDC's, ``MySqlTypeUtils``):

* integers keep their width; unsigned ones widen to the next (``INT UNSIGNED`` -> BIGINT,
  ``BIGINT UNSIGNED`` -> DECIMAL(20,0)), ``MEDIUMINT`` either way fits INT;
* ``YEAR`` -> INT: Flink CDC maps it to INT and Debezium to INT32 (``io.debezium.time.Year``),
  so sinks shared with those tools get the same column type; a SMALLINT would hold every year
  too, but a second choice for the same MySQL type is what this module exists to prevent;
* ``DECIMAL(p,s)`` -> DECIMAL(p,s) (MySQL's defaults 10,0); ``FLOAT`` -> FLOAT, ``DOUBLE`` /
  ``REAL`` -> DOUBLE;
* ``BIT(1)`` -> BOOLEAN, ``BIT(n)`` -> BYTES; ``BOOL`` -> BOOLEAN (a type text only:
  ``information_schema`` says ``tinyint``, which stays TINYINT);
* ``DATE`` -> DATE, ``TIME(p)`` -> TIME(p), ``DATETIME(p)`` -> TIMESTAMP(p) (wall clock),
  ``TIMESTAMP(p)`` -> TIMESTAMP_LTZ(p) (an instant);
* ``CHAR(n)`` / ``VARCHAR(n)`` keep their length, ``*TEXT`` -> STRING; with the ``binary``
  character set they are bytes (BYTES);
* ``BINARY(n)`` / ``VARBINARY(n)`` keep their length, ``*BLOB`` -> BYTES;
* ``ENUM`` -> STRING, ``SET`` -> ARRAY<STRING>, ``JSON`` -> JSON;
* geometries -> BYTES holding WKB; a value whose SRID is not 0 is EWKB (PostGIS's WKB with
  the SRID flag and the SRID after the type word: :mod:`formats.codec.geometry`).

Where the logical type does not tell all of the MySQL type (ENUM and SET with their members,
BIT(n), YEAR, the geometries), the column keeps the MySQL type in ``Column.source_type``
(:func:`source_type`): Debezium's semantic names and Canal's ``mysqlType`` come from it.
"""
from __future__ import annotations

import re

from runtime.types import DataType, parse_type

_TYPE = re.compile(r"^\s*([a-z ]+?)\s*(?:\((.*?)\))?\s*(unsigned)?\s*(zerofill)?\s*$", re.I)

#: signed, unsigned
_INTS = {"tinyint": ("TINYINT", "SMALLINT"), "smallint": ("SMALLINT", "INT"),
         "mediumint": ("INT", "INT"), "int": ("INT", "BIGINT"), "integer": ("INT", "BIGINT"),
         "bigint": ("BIGINT", "DECIMAL(20,0)")}
_DECIMALS = frozenset({"decimal", "numeric", "dec", "fixed"})
TEXT_TYPES = frozenset({"char", "varchar", "tinytext", "text", "mediumtext", "longtext"})
BLOB_TYPES = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})
GEOMETRY_TYPES = frozenset({"geometry", "point", "linestring", "polygon", "multipoint",
                            "multilinestring", "multipolygon", "geometrycollection",
                            "geomcollection"})
_SIMPLE = {"bool": "BOOLEAN", "boolean": "BOOLEAN", "float": "FLOAT", "double": "DOUBLE",
           "double precision": "DOUBLE", "real": "DOUBLE", "year": "INT", "date": "DATE",
           "json": "JSON", "enum": "STRING", "tinytext": "STRING", "text": "STRING",
           "mediumtext": "STRING", "longtext": "STRING", "tinyblob": "BYTES", "blob": "BYTES",
           "mediumblob": "BYTES", "longblob": "BYTES", **{g: "BYTES" for g in GEOMETRY_TYPES}}
_TEMPORAL = {"time": "TIME", "datetime": "TIMESTAMP", "timestamp": "TIMESTAMP_LTZ"}

#: Every type name :func:`logical_type` knows (``information_schema.COLUMNS.DATA_TYPE`` values
#: and the aliases type texts use).
TYPE_NAMES = frozenset(_INTS) | _DECIMALS | TEXT_TYPES | BLOB_TYPES | frozenset(_SIMPLE) \
    | frozenset(_TEMPORAL) | {"bit", "set"}


def logical_type(name: str, *, unsigned: bool = False, length: int | None = None,
                 precision: int | None = None, scale: int | None = None, fsp: int = 0,
                 binary_charset: bool = False) -> DataType:
    """The logical type of a MySQL type ``name`` (lower case, as ``DATA_TYPE`` has it) with its
    attributes: ``length`` for CHAR/VARCHAR/BINARY/VARBINARY, ``precision``/``scale`` for
    DECIMAL, ``precision`` as the width of BIT, ``fsp`` for TIME/DATETIME/TIMESTAMP;
    ``binary_charset`` for text columns of the ``binary`` character set.  Raises ValueError
    naming the type when it is not a MySQL type."""
    if name in _INTS:
        return parse_type(_INTS[name][1 if unsigned else 0])
    if name in _DECIMALS:
        return DataType("DECIMAL", precision=precision or 10, scale=scale or 0)
    if name == "bit":
        return DataType("BOOLEAN") if (precision or 1) == 1 else DataType("BYTES")
    if name in _TEMPORAL:
        return DataType(_TEMPORAL[name], precision=fsp)
    if name == "set":
        return DataType("ARRAY", element=DataType("STRING"))
    if name in TEXT_TYPES and binary_charset:
        return DataType("BYTES")
    if name in ("char", "varchar", "binary", "varbinary"):
        return DataType(name.upper(), length=length)
    if name in _SIMPLE:
        return parse_type(_SIMPLE[name])
    raise ValueError(f"unknown MySQL type {name!r}")


def source_type(name: str, *, values: tuple[str, ...] = (), bits: int | None = None
                ) -> str | None:
    """What a column of MySQL type ``name`` keeps in ``Column.source_type``: ``enum('a','b')``
    and ``set('a','b')`` with their ``values`` (members in declaration order), ``bit(n)``
    (``bits`` > 1; BIT(1) is BOOLEAN), ``year``, a geometry type's name; None for types
    whose logical type says it all.  One text per type, whichever way the column was
    described (catalog or binlog table map), so schemas of both paths stay equal."""
    if name in ("enum", "set"):
        return f"{name}(" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + ")"
    if name == "bit":
        return f"bit({bits})" if (bits or 1) > 1 else None
    if name == "year" or name in GEOMETRY_TYPES:
        return "geometrycollection" if name == "geomcollection" else name
    return None


_MEMBERS = re.compile(r"'((?:[^']|'')*)'")


def source_type_of(text: str) -> str | None:
    """:func:`source_type` of a MySQL column type text (``enum('a','b')``, ``bit(3)``,
    ``int(11)``: None)."""
    low = text.strip().lower()
    for kind in ("enum", "set"):
        if low.startswith(kind + "("):
            return source_type(kind, values=members(text))
    m = _TYPE.match(text)
    if not m:
        return None
    args = m.group(2)
    bits = int(args) if args and args.strip().isdigit() else None
    return source_type(m.group(1).lower(), bits=bits)


def members(source_type: str) -> tuple[str, ...]:
    """The members of an ``enum(...)`` / ``set(...)`` source type, in declaration order."""
    inner = source_type[source_type.index("(") + 1:source_type.rindex(")")]
    return tuple(v.replace("''", "'") for v in _MEMBERS.findall(inner))


def from_mysql(text: str) -> DataType:
    """The logical type of a MySQL column type text (``int(11) unsigned``,
    ``decimal(10,2)``, ``datetime(3)``, ``enum('a','b')``).  Raises ValueError naming the
    text."""
    m = _TYPE.match(text)
    if not m:
        raise ValueError(f"unknown MySQL type {text!r}")
    name, args, unsigned = m.group(1).lower(), m.group(2), bool(m.group(3))
    nums = [int(a) for a in (args or "").split(",") if a.strip().isdigit()]
    first = nums[0] if nums else None
    try:
        return logical_type(name, unsigned=unsigned, length=first, precision=first,
                            scale=nums[1] if len(nums) > 1 else None, fsp=first or 0)
    except ValueError:
        raise ValueError(f"unknown MySQL type {text!r}") from None


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
