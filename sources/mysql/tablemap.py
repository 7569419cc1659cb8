"""TABLE_MAP events: the column types and metas every rows event is decoded with, and with
``binlog_row_metadata = FULL`` the whole column layout at that point of the binlog (names,
signedness, charsets, ENUM/SET members, geometry types, primary key), from which
:func:`table_from_map` builds the table as it was then, whatever the server's catalog says now.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.errors import ConfigError, TerminalError
from runtime.schema import Column, TableSchema
from runtime.schema import table_id as make_table_id
from sources.mysql.catalog import MySqlTable
from sources.mysql.types import NativeColumn

# binlog column types
T_DECIMAL, T_TINY, T_SHORT, T_LONG, T_FLOAT, T_DOUBLE, T_NULL, T_TIMESTAMP = 0, 1, 2, 3, 4, 5, 6, 7
T_LONGLONG, T_INT24, T_DATE, T_TIME, T_DATETIME, T_YEAR, T_NEWDATE, T_VARCHAR = 8, 9, 10, 11, 12, 13, 14, 15
T_BIT, T_TIMESTAMP2, T_DATETIME2, T_TIME2 = 16, 17, 18, 19
T_JSON, T_NEWDECIMAL, T_ENUM, T_SET = 245, 246, 247, 248
T_TINY_BLOB, T_MEDIUM_BLOB, T_LONG_BLOB, T_BLOB, T_VAR_STRING, T_STRING, T_GEOMETRY = 249, 250, 251, 252, 253, 254, 255


# optional metadata fields of a TABLE_MAP (binlog_row_metadata = MINIMAL / FULL)
(M_SIGNEDNESS, M_DEFAULT_CHARSET, M_COLUMN_CHARSET, M_COLUMN_NAME, M_SET_STR_VALUE,
 M_ENUM_STR_VALUE, M_GEOMETRY_TYPE, M_SIMPLE_PRIMARY_KEY, M_PRIMARY_KEY_WITH_PREFIX,
 M_ENUM_AND_SET_DEFAULT_CHARSET, M_ENUM_AND_SET_COLUMN_CHARSET) = range(1, 12)
# YEAR counts (it is an unsigned numeric field inside the server), as the bits show
_NUMERIC = {T_TINY, T_SHORT, T_INT24, T_LONG, T_LONGLONG, T_NEWDECIMAL, T_FLOAT, T_DOUBLE, T_YEAR}
_CHARACTER = {T_STRING, T_VAR_STRING, T_VARCHAR, T_BLOB, T_TINY_BLOB, T_MEDIUM_BLOB, T_LONG_BLOB}


@dataclass
class TableMap:
    """A TABLE_MAP event.  ``types`` are the real types (a STRING column that is an ENUM or a
    SET says so); the optional-metadata fields are per column, None when the server did not
    send them (``names`` only come with ``binlog_row_metadata = FULL``)."""

    table_id: int
    db: str
    table: str
    types: bytes
    metas: list[int]
    raw: bytes = b""
    nullable: list[bool] | None = None
    unsigned: list[bool] | None = None
    collations: list[int | None] | None = None   # character columns only
    names: list[str] | None = None
    values: list[tuple[str, ...] | None] | None = None   # ENUM / SET members
    geometry: list[int | None] | None = None
    primary_key: list[int] | None = None

    @property
    def full(self) -> bool:
        """The map describes the columns completely (``binlog_row_metadata = FULL``)."""
        return self.names is not None and len(self.names) == len(self.types)


def lenenc(data: bytes, pos: int) -> tuple[int, int]:
    b = data[pos]
    if b < 251:
        return b, pos + 1
    if b == 252:
        return data[pos + 1] | data[pos + 2] << 8, pos + 3
    if b == 253:
        return int.from_bytes(data[pos + 1:pos + 4], "little"), pos + 4
    return int.from_bytes(data[pos + 1:pos + 9], "little"), pos + 9


def real_type(t: int, meta: int) -> int:
    """STRING columns carry their real type (ENUM, SET, STRING) in the first meta byte."""
    if t != T_STRING:
        return t
    b0 = meta >> 8
    return b0 | 0x30 if b0 & 0x30 != 0x30 else b0


def parse_table_map(body: bytes, geometry_has_charset: bool = False) -> TableMap:
    """Parse a TABLE_MAP body.  ``geometry_has_charset``: MariaDB counts GEOMETRY columns
    among the character columns of the charset metadata, MySQL does not."""
    table_id = int.from_bytes(body[0:6], "little")
    pos = 8
    n = body[pos]
    db = body[pos + 1:pos + 1 + n].decode()
    pos += n + 2
    n = body[pos]
    table = body[pos + 1:pos + 1 + n].decode()
    pos += n + 2
    count, pos = lenenc(body, pos)
    types = body[pos:pos + count]
    pos += count
    _, pos = lenenc(body, pos)
    metas = []
    for t in types:
        if t in (T_FLOAT, T_DOUBLE, T_BLOB, T_GEOMETRY, T_JSON, T_TIMESTAMP2, T_DATETIME2, T_TIME2,
                 T_TINY_BLOB, T_MEDIUM_BLOB, T_LONG_BLOB):
            metas.append(body[pos])
            pos += 1
        elif t in (T_VARCHAR, T_VAR_STRING, T_BIT):
            metas.append(body[pos] | body[pos + 1] << 8)
            pos += 2
        elif t in (T_NEWDECIMAL, T_STRING, T_ENUM, T_SET):
            metas.append(body[pos] << 8 | body[pos + 1])  # big-endian pair: (byte0, byte1)
            pos += 2
        else:
            metas.append(0)
    reals = bytes(real_type(t, m) for t, m in zip(types, metas))
    tmap = TableMap(table_id, db, table, reals, metas, bytes(body))
    nb = (count + 7) // 8
    if pos + nb <= len(body):
        bits = body[pos:pos + nb]
        tmap.nullable = [bool(bits[i >> 3] >> (i & 7) & 1) for i in range(count)]
        pos += nb
        _optional_metadata(tmap, body, pos, geometry_has_charset)
    return tmap


def _optional_metadata(tmap: TableMap, body: bytes, pos: int, geometry_has_charset: bool) -> None:
    """The type-length-value fields after the null bitmap (MySQL 8.0.1+, MariaDB 10.5+)."""
    types = tmap.types
    count = len(types)
    character = [i for i, t in enumerate(types)
                 if t in _CHARACTER or (geometry_has_charset and t == T_GEOMETRY)]
    enum_or_set = [i for i, t in enumerate(types) if t in (T_ENUM, T_SET)]
    while pos < len(body):
        kind = body[pos]
        length, pos = lenenc(body, pos + 1)
        field, pos = body[pos:pos + length], pos + length
        if kind == M_SIGNEDNESS:
            numeric = [i for i, t in enumerate(types) if t in _NUMERIC]
            tmap.unsigned = [False] * count
            for j, i in enumerate(numeric):
                tmap.unsigned[i] = bool(field[j >> 3] & (0x80 >> (j & 7)))
        elif kind in (M_DEFAULT_CHARSET, M_COLUMN_CHARSET):
            ids = _ints(field)
            if kind == M_DEFAULT_CHARSET:
                per = [ids[0]] * len(character)
                for k in range(1, len(ids) - 1, 2):
                    if ids[k] < len(per):
                        per[ids[k]] = ids[k + 1]
            else:
                per = ids
            tmap.collations = [None] * count
            for j, i in enumerate(character[:len(per)]):
                tmap.collations[i] = per[j]
        elif kind == M_COLUMN_NAME:
            tmap.names = _strings(field)
        elif kind in (M_SET_STR_VALUE, M_ENUM_STR_VALUE):
            want = T_SET if kind == M_SET_STR_VALUE else T_ENUM
            if tmap.values is None:
                tmap.values = [None] * count
            cols = [i for i in enum_or_set if types[i] == want]
            p, k = 0, 0
            while p < len(field) and k < len(cols):
                n, p = lenenc(field, p)
                members = []
                for _ in range(n):
                    ln, p = lenenc(field, p)
                    members.append(_text(field[p:p + ln]))
                    p += ln
                tmap.values[cols[k]] = tuple(members)
                k += 1
        elif kind == M_GEOMETRY_TYPE:
            geo = [i for i, t in enumerate(types) if t == T_GEOMETRY]
            tmap.geometry = [None] * count
            for i, g in zip(geo, _ints(field)):
                tmap.geometry[i] = g
        elif kind == M_SIMPLE_PRIMARY_KEY:
            tmap.primary_key = _ints(field)
        elif kind == M_PRIMARY_KEY_WITH_PREFIX:
            tmap.primary_key = _ints(field)[0::2]
        # others (ENUM/SET charsets, visibility, vector dimensions ...) are not needed


def _ints(field: bytes) -> list[int]:
    out, p = [], 0
    while p < len(field):
        v, p = lenenc(field, p)
        out.append(v)
    return out


def _strings(field: bytes) -> list[str]:
    out, p = [], 0
    while p < len(field):
        n, p = lenenc(field, p)
        out.append(_text(field[p:p + n]))
        p += n
    return out


def _text(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def string_length(meta: int) -> int:
    """The byte length of a STRING/ENUM/SET column from its meta (lengths above 255 borrow
    bits of the type byte)."""
    b0, b1 = meta >> 8, meta & 0xFF
    return b1 | (((b0 & 0x30) ^ 0x30) << 4) if b0 & 0x30 != 0x30 else b1


# -- the schema a TABLE_MAP with full metadata describes ------------------------------------------
#: collation id -> (character set, bytes per character) for the usual ids, when the server's
#: own list (:meth:`Charsets.load`) is not at hand
_COLLATIONS = {63: ("binary", 1), 8: ("latin1", 1), 47: ("latin1", 1), 48: ("latin1", 1),
               5: ("latin1", 1), 11: ("ascii", 1), 65: ("ascii", 1), 33: ("utf8mb3", 3),
               83: ("utf8mb3", 3), 192: ("utf8mb3", 3), 45: ("utf8mb4", 4),
               46: ("utf8mb4", 4), 224: ("utf8mb4", 4), 255: ("utf8mb4", 4)}
_INT_TYPES = {T_TINY: "tinyint", T_SHORT: "smallint", T_INT24: "mediumint", T_LONG: "int",
              T_LONGLONG: "bigint"}
_TEMPORAL = {T_DATE: "date", T_DATETIME: "datetime", T_DATETIME2: "datetime",
             T_TIMESTAMP: "timestamp", T_TIMESTAMP2: "timestamp", T_TIME: "time", T_TIME2: "time",
             T_YEAR: "year"}
_BLOBS = {1: ("tinyblob", "tinytext"), 2: ("blob", "text"), 3: ("mediumblob", "mediumtext"),
          4: ("longblob", "longtext")}
_GEOMETRIES = ("geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
               "multipolygon", "geometrycollection")


class Charsets:
    """Collation ids of the binlog's metadata to character sets, as the server defines them."""

    def __init__(self, known: dict[int, tuple[str, int]] | None = None):
        self.known = dict(_COLLATIONS if known is None else known)

    def load(self, conn: Any) -> Charsets:
        with conn.cursor() as cur:
            cur.execute("SELECT CHARACTER_SET_NAME, MAXLEN FROM information_schema.CHARACTER_SETS")
            maxlen = {str(n): int(m) for n, m in cur.fetchall()}
            cur.execute("SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS "
                        "WHERE ID IS NOT NULL")
            for cid, name in cur.fetchall():
                self.known[int(cid)] = (str(name), maxlen.get(str(name), 4))
        return self

    def __call__(self, collation: int | None) -> tuple[str, int]:
        if collation is None:
            return "utf8mb4", 4
        got = self.known.get(collation)
        if got is None:
            raise TerminalError(f"unknown collation id {collation} in the binlog's table map")
        return got


def table_from_map(tmap: Any, charsets: Charsets, chunk_key_columns: dict[str, str],
                   hints: tuple[MySqlTable | None, ...] = ()) -> MySqlTable:
    """The table a TABLE_MAP with full metadata (``binlog_row_metadata = FULL``) describes: the
    column layout at that point of the binlog, whatever the server's catalog says now.

    ``hints`` are descriptions of the same table (the schema history, the server's catalog): a
    column that is the same there (:func:`native_signature`) keeps their logical type, which
    knows what the binlog can't say (MariaDB's JSON is a LONGTEXT with a check constraint)."""
    table_id = make_table_id(tmap.db, tmap.table)
    natives = []
    for i, t in enumerate(tmap.types):
        natives.append(_native_from_map(tmap, i, t, charsets, table_id))
    known: dict[tuple, tuple[NativeColumn, Column]] = {}
    for hint in hints:
        if hint is None:
            continue
        for nat, col in zip(hint.natives, hint.schema.columns):
            known.setdefault(native_signature(nat), (nat, col))
    columns = []
    for i, nat in enumerate(natives):
        nullable = tmap.nullable[i] if tmap.nullable else True
        same = known.get(native_signature(nat))
        if same is not None:
            natives[i] = same[0] if same[0].nullable == nullable else _with_nullable(same[0], nullable)
            columns.append(Column(nat.name, same[1].type, nullable,
                                  source_type=same[1].source_type))
        else:
            columns.append(Column(nat.name, nat.logical(), nullable,
                                  source_type=nat.source_type()))
    names = [n.name for n in natives]
    pk = tuple(names[i] for i in tmap.primary_key or () if i < len(names))
    configured = chunk_key_columns.get(table_id)
    if configured and configured not in names:
        raise ConfigError(f"{table_id} has no column {configured!r}", key="source.chunk-key-column")
    return MySqlTable(TableSchema(table_id, tuple(columns), pk), tuple(natives),
                      (configured,) if configured else pk)


def _with_nullable(nat: NativeColumn, nullable: bool) -> NativeColumn:
    d = nat.to_dict()
    d["nullable"] = nullable
    return NativeColumn.from_dict(d)


def _native_from_map(tmap: Any, i: int, t: int, charsets: Charsets, table_id: str) -> NativeColumn:
    meta = tmap.metas[i]
    name = tmap.names[i]
    nullable = tmap.nullable[i] if tmap.nullable else True
    unsigned = bool(tmap.unsigned and tmap.unsigned[i])
    sign = " unsigned" if unsigned else ""
    collation = tmap.collations[i] if tmap.collations else None

    def col(data_type: str, column_type: str, **kw: Any) -> NativeColumn:
        return NativeColumn(name=name, data_type=data_type, column_type=column_type,
                            nullable=nullable, **kw)

    if t in _INT_TYPES:
        return col(_INT_TYPES[t], _INT_TYPES[t] + sign)
    if t == T_FLOAT:
        return col("float", "float" + sign)
    if t == T_DOUBLE:
        return col("double", "double" + sign)
    if t == T_NEWDECIMAL:
        p, sc = meta >> 8, meta & 0xFF
        return col("decimal", f"decimal({p},{sc}){sign}", precision=p, scale=sc)
    if t in _TEMPORAL:
        fsp = meta if t in (T_TIMESTAMP2, T_DATETIME2, T_TIME2) else 0
        dt = _TEMPORAL[t]
        return col(dt, f"{dt}({fsp})" if fsp else dt, fsp=fsp)
    if t == T_BIT:
        bits = (meta >> 8) * 8 + (meta & 0xFF)
        return col("bit", f"bit({bits})", precision=bits)
    if t == T_JSON:
        return col("json", "json")
    if t in (T_ENUM, T_SET):
        members = tmap.values[i] if tmap.values and tmap.values[i] is not None else ()
        kind = "enum" if t == T_ENUM else "set"
        quoted = ",".join("'" + m.replace("'", "''") + "'" for m in members)
        charset, _ = charsets(collation) if collation is not None else ("utf8mb4", 4)
        return col(kind, f"{kind}({quoted})", charset=charset)
    if t == T_GEOMETRY:
        g = tmap.geometry[i] if tmap.geometry and tmap.geometry[i] is not None else 0
        kind = _GEOMETRIES[g] if g < len(_GEOMETRIES) else "geometry"
        return col(kind, kind)
    charset, maxlen = charsets(collation)
    binary = charset == "binary"
    if t in (T_VARCHAR, T_VAR_STRING):
        if binary:
            return col("varbinary", f"varbinary({meta})", charset=None, length=meta)
        n = meta // maxlen
        return col("varchar", f"varchar({n})", charset=charset, length=n)
    if t == T_STRING:
        size = string_length(meta)
        if binary:
            return col("binary", f"binary({size})", charset=None, length=size)
        n = size // maxlen
        return col("char", f"char({n})", charset=charset, length=n)
    if t in (T_BLOB, T_TINY_BLOB, T_MEDIUM_BLOB, T_LONG_BLOB):
        blob, text = _BLOBS.get(meta, ("longblob", "longtext"))
        return col(blob, blob, charset=None) if binary else col(text, text, charset=charset)
    raise TerminalError(f"{table_id}.{name}: binlog column type {t} is not supported")


def native_signature(n: NativeColumn) -> tuple:
    """What decoding and the logical type depend on, the same whether the column was described
    by ``information_schema`` or by a table map (display widths, comments, defaults left out)."""
    t = n.data_type
    if t in ("integer",):
        t = "int"
    if t in ("real",):
        t = "double"
    exact = t in ("decimal", "numeric")
    sized = t in ("char", "varchar", "binary", "varbinary")
    return (n.name, t, n.unsigned if t not in ("json",) and "text" not in t else False,
            (n.precision, n.scale) if exact else (n.bit_length if t == "bit" else None),
            n.fsp if t in ("datetime", "timestamp", "time") else 0,
            n.length if sized else None,
            n.values if t in ("enum", "set") else None,
            n.is_binary, _codec_family(n.charset) if not n.is_binary and t not in ("enum", "set") else None)


def _codec_family(charset: str | None) -> str:
    c = (charset or "utf8mb4").lower()
    return "utf8" if c.startswith("utf8") else c
