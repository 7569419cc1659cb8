"""DDL statements seen in the binlog: which tables they touch, and the schema-change events
that turn an old table description into the new one."""
from __future__ import annotations

import re

from runtime.schema import SchemaChange, table_id
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


def column_renames(sql: str) -> dict[str, str]:
    out = {a: b for a, b in _RENAME_COLUMN.findall(sql)}
    out.update({a: b for a, b in _CHANGE_COLUMN.findall(sql) if a != b})
    return out


def changes(kind: str, table: str, old: MySqlTable | None, new: MySqlTable | None, sql: str,
            ts_ms: int, position: dict) -> list[SchemaChange]:
    """Schema-change events taking ``old`` to ``new`` (both may be None)."""
    def ev(k: str, details: dict | None = None) -> SchemaChange:
        return SchemaChange(k, table, new.schema if new else None, details or {}, ts_ms, position)

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
