"""DDL statements seen in the binlog: which tables they touch, and the schema-change events
that turn an old table description into the new one."""
from __future__ import annotations

import re
from dataclasses import replace

from runtime.schema import SchemaChange, TableSchema, table_id
from sources.mysql.catalog import MySqlTable

_NAME = r"((?:`(?:[^`]|``)+`|[\w$]+)(?:\s*\.\s*(?:`(?:[^`]|``)+`|[\w$]+))?)"
_COMMENTS = re.compile(r"/\*.*?\*/|--[^\n]*\n|#[^\n]*\n", re.S)
_CREATE = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?" + _NAME, re.I)
_ALTER = re.compile(r"^\s*ALTER\s+(?:ONLINE\s+|IGNORE\s+)*TABLE\s+(?:IF\s+EXISTS\s+)?" + _NAME, re.I)
_DROP = re.compile(r"^\s*DROP\s+(?:TEMPORARY\s+)?TABLE\s+(?:IF\s+EXISTS\s+)?(.*)$", re.I | re.S)
_TRUNCATE = re.compile(r"^\s*TRUNCATE\s+(?:TABLE\s+)?" + _NAME, re.I)
_RENAME = re.compile(r"^\s*RENAME\s+TABLES?\s+(.*)$", re.I | re.S)
_INDEX = re.compile(r"^\s*(?:CREATE|DROP)\s+(?:UNIQUE\s+|FULLTEXT\s+|SPATIAL\s+)?INDEX\s+.*?\s+ON\s+" + _NAME, re.I | re.S)
_ALTER_RENAME_TABLE = re.compile(r"\bRENAME\s+(?:TO|AS)\s+" + _NAME, re.I)
_RENAME_COLUMN = re.compile(r"\bRENAME\s+COLUMN\s+`?([\w$]+)`?\s+TO\s+`?([\w$]+)`?", re.I)
_CHANGE_COLUMN = re.compile(r"\bCHANGE\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?`?([\w$]+)`?\s+`?([\w$]+)`?", re.I)


def _unquote(part: str) -> str:
    part = part.strip()
    return part[1:-1].replace("``", "`") if part.startswith("`") else part


def qualify(name: str, default_db: str) -> str:
    parts = re.findall(r"`(?:[^`]|``)+`|[\w$]+", name)
    parts = [_unquote(p) for p in parts]
    return table_id(*parts) if len(parts) == 2 else table_id(default_db, parts[0])


def parse(sql: str, default_db: str) -> tuple[str, list[str], dict[str, str]] | None:
    """(kind, tables, renames) of a DDL statement, or None when it is not one that changes a
    table.  kind: create, alter, drop, truncate, rename, index; renames maps old -> new ids."""
    s = _COMMENTS.sub(" ", sql)
    if m := _CREATE.match(s):
        return "create", [qualify(m.group(1), default_db)], {}
    if m := _ALTER.match(s):
        t = qualify(m.group(1), default_db)
        if r := _ALTER_RENAME_TABLE.search(s[m.end():]):
            new = qualify(r.group(1), default_db)
            return "rename", [t, new], {t: new}
        return "alter", [t], {}
    if m := _DROP.match(s):
        names = re.sub(r"\s+(RESTRICT|CASCADE)\s*$", "", m.group(1), flags=re.I)
        return "drop", [qualify(n, default_db) for n in names.split(",") if n.strip()], {}
    if m := _TRUNCATE.match(s):
        return "truncate", [qualify(m.group(1), default_db)], {}
    if m := _RENAME.match(s):
        renames = {}
        for pair in m.group(1).split(","):
            parts = re.split(r"\s+TO\s+", pair.strip(), maxsplit=1, flags=re.I)
            if len(parts) == 2:
                renames[qualify(parts[0], default_db)] = qualify(parts[1], default_db)
        return "rename", list(renames) + list(renames.values()), renames
    if m := _INDEX.match(s):
        return "index", [qualify(m.group(1), default_db)], {}
    return None


#: A token of MySQL: quoted string, backquoted name, number, word, or one other character.
_TOKEN = re.compile(r"""'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*"|`(?:[^`]|``)*`|"""
                    r"""[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[\w$]+|\S""", re.S)
_ESCAPES = {"0": "\x00", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "Z": "\x1a",
            "%": "\\%", "_": "\\_"}
#: The value MySQL gives existing rows for a NOT NULL column added without a DEFAULT.
_IMPLICIT_ZERO = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal",
                  "dec", "numeric", "fixed", "float", "double", "real"}
_IMPLICIT_EMPTY = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext"}


def _string_value(token: str) -> str:
    """The value of a quoted MySQL string literal (backslash escapes, doubled quotes)."""
    quote, body = token[0], token[1:-1]
    body = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], m[1]), body.replace(quote * 2, quote),
                  flags=re.S)
    return body


def _literal(tokens: list[str]) -> str | None:
    """The text of the constant a DEFAULT clause starts with; None for NULL and expressions."""
    if not tokens:
        return None
    t = tokens[0]
    if t[0] in "'\"":
        # a string not followed by more of an expression (DEFAULT 'a' || 'b' is not handled)
        return _string_value(t)
    if re.fullmatch(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", t):
        return t.lstrip("+")
    if t.upper() in ("TRUE", "FALSE"):
        return "1" if t.upper() == "TRUE" else "0"
    return None  # NULL, CURRENT_TIMESTAMP, (expression), b'1', x'ff'


def _split(tokens: list[str]) -> list[list[str]]:
    """Tokens split at the commas outside parentheses."""
    out: list[list[str]] = [[]]
    depth = 0
    for t in tokens:
        if t == "(":
            depth += 1
        elif t == ")":
            depth -= 1
        if t == "," and depth == 0:
            out.append([])
        else:
            out[-1].append(t)
    return [c for c in out if c]


def _column_default(definition: list[str]) -> str | None:
    """The value existing rows get for a column added with ``definition`` (its type and
    attributes): the DEFAULT constant, or for NOT NULL without a DEFAULT the value MySQL
    fills in (0, '', the first ENUM value); None when it is NULL or not a constant."""
    words = [t.upper() for t in definition]
    for i, w in enumerate(words):
        if w == "DEFAULT":
            return _literal(definition[i + 1:])
    not_null = any(a == "NOT" and b == "NULL" for a, b in zip(words, words[1:]))
    if not not_null or not definition:
        return None
    kind = definition[0].lower()
    if kind in _IMPLICIT_ZERO:
        return "0"
    if kind in _IMPLICIT_EMPTY:
        return ""
    if kind == "enum" and len(definition) > 2 and definition[1] == "(":
        return _literal(definition[2:3])
    return None


def added_column_defaults(sql: str) -> dict[str, str]:
    """Column name -> what existing rows read (see :func:`_column_default`) for each column an
    ``ALTER TABLE ... ADD [COLUMN] ...`` statement adds with a constant default."""
    s = _COMMENTS.sub(" ", sql)
    m = _ALTER.match(s)
    if not m:
        return {}
    out: dict[str, str] = {}
    for clause in _split(_TOKEN.findall(s[m.end():])):
        if clause[0].upper() != "ADD":
            continue
        rest = clause[1:]
        if rest and rest[0].upper() == "COLUMN":
            rest = rest[1:]
        if len(rest) >= 3 and [t.upper() for t in rest[:3]] == ["IF", "NOT", "EXISTS"]:
            rest = rest[3:]
        if rest and rest[0] == "(" and rest[-1] == ")":  # ADD (a INT, b INT)
            definitions = _split(rest[1:-1])
        else:
            definitions = [rest]
        for d in definitions:
            if len(d) < 2 or d[0].upper() in ("INDEX", "KEY", "PRIMARY", "UNIQUE", "CONSTRAINT",
                                              "FOREIGN", "FULLTEXT", "SPATIAL", "CHECK",
                                              "PERIOD", "SYSTEM"):
                continue
            value = _column_default(d[1:])
            if value is not None:
                out[_unquote(d[0])] = value
    return out


def with_defaults(schema: TableSchema, defaults: dict[str, str]) -> TableSchema:
    """``schema`` whose columns named in ``defaults`` carry them."""
    if not defaults:
        return schema
    return schema.with_columns(tuple(replace(c, default=defaults[c.name]) if c.name in defaults
                                     else c for c in schema.columns))


def column_renames(sql: str) -> dict[str, str]:
    out = {a: b for a, b in _RENAME_COLUMN.findall(sql)}
    out.update({a: b for a, b in _CHANGE_COLUMN.findall(sql) if a != b})
    return out


def changes(kind: str, table: str, old: MySqlTable | None, new: MySqlTable | None, sql: str,
            ts_ms: int, position: dict) -> list[SchemaChange]:
    """Schema-change events taking ``old`` to ``new`` (both may be None).  Columns an ALTER
    adds carry the value existing rows read (their default), so that a sink can fill them."""
    schema = new.schema if new else None
    if schema is not None and old is not None and kind == "alter":
        added = {c.name for c in schema.columns} - set(old.schema.names)
        schema = with_defaults(schema, {k: v for k, v in added_column_defaults(sql).items()
                                        if k in added})

    def ev(k: str, details: dict | None = None) -> SchemaChange:
        return SchemaChange(k, table, schema, details or {}, ts_ms, position)

    if new is None:
        return [ev("drop_table")] if old is not None else []
    if old is None:
        return [ev("create_table")]
    if kind == "truncate":
        return [ev("truncate_table")]
    out: list[SchemaChange] = []
    renames = {a: b for a, b in column_renames(sql).items()
               if a in old.schema.names and b in new.schema.names}
    for a, b in renames.items():
        out.append(ev("rename_column", {"old": a, "new": b}))
    old_cols = {renames.get(c.name, c.name): c for c in old.schema.columns}
    new_names = set(new.schema.names)
    for name in old_cols:
        if name not in new_names:
            out.append(ev("drop_column", {"column": name}))
    for c in new.schema.columns:
        before = old_cols.get(c.name)
        if before is None:
            out.append(ev("add_column", {"column": c.name}))
        elif before.type != c.type:
            out.append(ev("alter_column_type", {"column": c.name}))
    return out
