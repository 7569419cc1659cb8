"""The route operator: source tables to sink tables, merging sharded tables.

A :class:`RouteRule` is one ``[[route]]`` block: ``source-table`` is a regex over ``db.table``,
``sink-table`` the target id, where ``$1``.. are the regex's groups and the ``replace-symbol``
(e.g. ``<>``) stands for the source table's name.  The first matching block applies; a table no
block matches keeps its id.

Many tables routed to one (``shop.order_0`` .. ``shop.order_63`` -> ``shop.orders``) share one
**merged schema**: the union of their columns (in order of first appearance) with types widened
(:func:`~runtime.transform.merged.widen`); a column some tables lack is NULL in their rows.
Under ``lenient`` a column of a type no type holds together with the merged one's (a table's
own type change, or a shard's other type) leaves the merged column as it is and goes to a side
column (:func:`~runtime.transform.merged.side_column_name`).  Each widening reaches the sink as
a schema change (``create_table``, then ``add_column`` / ``alter_column_type``) before the
first batch that needs it.  The merged schemas are the operator's state: they are checkpointed
(:meth:`Router.snapshot_state`) and restored as they were, so a restore rebuilds them
identically whatever order the tables come back in.

Keys that collide across shards: rows of two source tables with the same primary key are the
same target row (the later change wins).  To keep them apart, add the source table to the key
with a transform: ``projection = "*, __table_name__ AS src_table"``, ``primary-keys = "id,
src_table"``.  All tables routed to one target must have the same primary key (else the
pipeline stops naming both).  A truncate or drop of one table of several routed to one target
is not passed on (it would empty the merged table); it is logged.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from runtime.batch import ChangeBatch
from runtime.errors import TerminalError
from runtime.schema import (SCHEMA_CHANGE_KINDS, Column, SchemaChange, TableSchema,
                            split_table_id)
from runtime.transform.changes import LENIENT_EXCLUDED, TAGS
from runtime.transform.merged import Target as _Target
from runtime.transform.merged import side_column_name, widen
from runtime.types import to_arrow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RouteRule:
    source_table: str
    sink_table: str
    replace_symbol: str | None = None
    description: str | None = None

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.source_table)

    def target(self, table: str) -> str | None:
        """The sink table of ``table``, None when this rule does not match it."""
        m = self.pattern.fullmatch(table)
        if m is None:
            return None
        out = re.sub(r"\$(\d+)", lambda g: m.group(int(g.group(1))) or "", self.sink_table)
        if self.replace_symbol:
            out = out.replace(self.replace_symbol, split_table_id(table)[1])
        return out

    def check(self) -> None:
        """Raises ValueError naming a group the regex does not have."""
        groups = self.pattern.groups
        for g in re.findall(r"\$(\d+)", self.sink_table):
            if int(g) > groups or int(g) == 0:
                raise ValueError(f"sink-table uses ${g} but source-table has {groups} "
                                 f"group(s)")


#: ``[pipeline] schema-change-behavior`` values, Flink CDC's
SCHEMA_CHANGE_BEHAVIORS = ("lenient", "evolve", "try-evolve", "ignore", "exception")
#: behaviors under which the operator keeps each table's schema (and state of it)
_KEEPS_SCHEMA = ("lenient", "ignore")
#: the kinds a sink may skip with include/exclude-schema-changes and still need this operator
_SKIPPABLE = frozenset(SCHEMA_CHANGE_KINDS)

class Router:
    """The ``[[route]]`` blocks of a pipeline, the schema-change behavior, and the schema each
    target keeps (merged from its sources, or the one table's own under lenient / ignore, or
    when the sink skips some change types).

    ``applied``: the schema change kinds the sink applies (its ``include-schema-changes`` /
    ``exclude-schema-changes``; None: all).  A skipped change does not reach the sink and does
    not change the schema kept for it: later rows are conformed to that schema (a column the
    sink never got is left out, a column it keeps is NULL, a type it keeps is cast to, and a
    value that does not fit stops the pipeline naming the column)."""

    def __init__(self, rules: list[RouteRule], state: dict[str, Any] | None = None,
                 behavior: str = "lenient", applied: frozenset[str] | None = None):
        if behavior not in SCHEMA_CHANGE_BEHAVIORS:
            raise ValueError(f"unknown schema change behavior {behavior!r}")
        self.rules = rules
        self.behavior = behavior
        #: the kinds the sink applies; ``skips``: whether it skips any
        self.applied = frozenset(SCHEMA_CHANGE_KINDS) if applied is None else applied
        self.skips = not self.applied >= _SKIPPABLE
        self._targets: dict[str, _Target] = {}
        self._ids: dict[str, str | None] = {}
        #: tables no route matched that keep their own schema here (their own target)
        self._own: set[str] = set()
        #: the schema each source table was last merged with (batches share schema objects)
        self._seen: dict[str, TableSchema] = {}
        for table, t in (state or {}).items():
            self._targets[table] = _Target(TableSchema.from_dict(t["schema"]), set(t["sources"]),
                                           _redirects(t), set(t.get("former-side-columns", ())))

    def snapshot_state(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for table, t in sorted(self._targets.items()):
            out[table] = {"schema": t.schema.to_dict(), "sources": sorted(t.sources)}
            if t.redirects:  # (absent in states taken before side columns existed)
                out[table]["columns"] = {src: dict(sorted(m.items()))
                                         for src, m in sorted(t.redirects.items()) if m}
            if t.former:
                out[table]["former-side-columns"] = sorted(t.former)
        return out

    @staticmethod
    def merge_states(states: list[dict[str, Any] | None]) -> dict[str, Any]:
        """One state holding every target's merged schema of ``states`` (for a restore at
        another parallelism: each writer starts from all of them)."""
        router = Router([])
        for st in states:
            for table, t in (st or {}).items():
                router._merge(table, TableSchema.from_dict(t["schema"]), t["sources"])
                for src, m in _redirects(t).items():
                    router._targets[table].redirects.setdefault(src, {}).update(m)
                router._targets[table].former.update(t.get("former-side-columns", ()))
        return router.snapshot_state()

    @property
    def active(self) -> bool:
        """Whether batches and schema changes need this operator at all."""
        return bool(self.rules) or self.behavior != "evolve" or self.skips

    def target_of(self, table: str) -> str | None:
        """The table ``table`` is written to; None when it passes as it is (no route, and a
        behavior that keeps no schema of its own)."""
        if table not in self._ids:
            found = next((t for r in self.rules if (t := r.target(table))), None)
            if found is None and (self.behavior in _KEEPS_SCHEMA or self.skips):
                found = table  # its own target: lenient / ignore / skipped changes keep it
                self._own.add(table)
            self._ids[table] = found
        return self._ids[table]

    def _merge(self, target: str, schema: TableSchema, sources: Any) -> list[SchemaChange]:
        """Merge ``schema`` into ``target``'s; the changes the sink must see first (only
        kinds it applies: a column it skips adding stays out, a type it skips widening
        stays).  Under lenient a column whose new type no type holds with the target
        column's gets a side column (:func:`side_column_name`), added like any column."""
        cur = self._targets.get(target)
        if cur is None:
            # a table that is its own target keeps its schema object: batches pass untouched
            merged = schema if schema.table == target else TableSchema(
                target, schema.columns, schema.primary_key, schema.partition_keys)
            self._targets[target] = _Target(merged, set(sources))
            return [SchemaChange("create_table", target, merged)] \
                if "create_table" in self.applied else []
        cur.sources.update(sources)
        if self.behavior == "ignore":
            return []  # the table keeps the schema it was created with
        if schema.primary_key != cur.schema.primary_key:
            if cur.sources == {target} and target in self._own:
                raise TerminalError(
                    f"{target}: primary key changed from {list(cur.schema.primary_key)} to "
                    f"{list(schema.primary_key)}; schema-change-behavior = "
                    f"\"{self.behavior}\" keeps a table's key (\"evolve\" passes the change)")
            raise TerminalError(
                f"route to {target}: {', '.join(sorted(sources))} has primary key "
                f"{list(schema.primary_key)}, the tables merged before have "
                f"{list(cur.schema.primary_key)}; all tables routed to one must agree")
        cols = list(cur.schema.columns)
        names = [c.name for c in cols]
        out: list[SchemaChange] = []
        src = next(iter(sources)) if len(sources) == 1 else None
        redirect = cur.redirects.get(src, {}) if src is not None else {}
        side = cur.side_columns
        for c in schema.columns:
            kind = None
            name = redirect.get(c.name, c.name)
            if c.name not in redirect and name in side and src is not None:
                # the source now has a column named like a side column: its values must not
                # mix with the side column's: a numbered name of its own
                taken = set(names) | set(schema.names) | side
                n = 2
                while f"{c.name}_{n}" in taken:
                    n += 1
                name = f"{c.name}_{n}"
                cur.redirect(src, c.name, name)
            if name not in names:
                if "add_column" not in self.applied:
                    continue
                # nullable: rows of tables (or times) without it are NULL; the default stays
                cols.append(replace(c, name=name, nullable=True))
                names.append(name)
                kind = "add_column"
            else:
                i = names.index(name)
                old = cols[i]
                t = widen(old.type, c.type)
                if t is None and self.behavior == "lenient" and src is not None:
                    change = self._side_column(cur, target, src, c, old, cols, schema)
                    if change is not None:
                        out.append(change)
                    continue
                if t is None and cur.sources == {target} and target in self._own:
                    raise TerminalError(
                        f"{target}: column {c.name} changed from {old.type} to {c.type}: no "
                        f"type holds both, which schema-change-behavior = "
                        f"\"{self.behavior}\" needs (it keeps the rows written before); "
                        f"\"evolve\" changes the column's type as the source did")
                if t is None:
                    raise TerminalError(
                        f"route to {target}: column {c.name} is {old.type} in the tables "
                        f"merged before and {c.type} in {', '.join(sorted(sources))}: no type "
                        f"holds both")
                if t != old.type and "alter_column_type" not in self.applied:
                    t = old.type
                nullable = old.nullable or c.nullable
                if t != old.type or nullable != old.nullable:
                    cols[i] = replace(old, type=t, nullable=nullable)
                    kind = "alter_column_type" if t != old.type else None
            if kind is not None:  # one change per column, each with the schema after it
                out.append(SchemaChange(kind, target, cur.schema.with_columns(tuple(cols)),
                                        {"column": name}))
        if out or cols != list(cur.schema.columns):
            cur.schema = cur.schema.with_columns(tuple(cols))
        return out

    def _side_column(self, cur: _Target, target: str, src: str, c: Column, old: Column,
                     cols: list[Column], schema: TableSchema) -> SchemaChange | None:
        """Lenient's answer to ``src``'s column ``c`` turning into a type no type holds with
        the target's ``old`` column: ``old`` stays (nullable, no longer written by ``src``)
        and ``c``'s values go to a side column from now on: one another source column of the
        same name already got (and that can take them), else a new one, added to ``cols``
        (the ``add_column`` change returned).  Raises when the sink skips adding columns."""
        names = [x.name for x in cols]
        mine = {m.get(c.name) for m in cur.redirects.values()} - {None}
        for name in sorted(mine & set(names)):  # a shard's side column for the same column
            i = names.index(name)
            t = widen(cols[i].type, c.type)
            if t is not None and (t == cols[i].type or "alter_column_type" in self.applied):
                cur.redirect(src, c.name, name)
                if t == cols[i].type:
                    return None
                cols[i] = replace(cols[i], type=t)
                return SchemaChange("alter_column_type", target,
                                    cur.schema.with_columns(tuple(cols)), {"column": name})
        if old.name in cur.schema.primary_key:
            raise TerminalError(
                f"{target}: key column {c.name} changed from {old.type} to {c.type}: no type "
                f"holds both, and schema-change-behavior = \"lenient\" keeps a table's key "
                f"(a side column would leave the key NULL); \"evolve\" changes the column's "
                f"type as the source did")
        if "add_column" not in self.applied:
            raise TerminalError(
                f"{target}: column {c.name} changed from {old.type} to {c.type}: no type holds "
                f"both, and schema-change-behavior = \"lenient\" would add a column for the new "
                f"values, which the sink's include-schema-changes / exclude-schema-changes skip "
                f"(add.column)")
        taken = set(names) | set(schema.names) | cur.side_columns
        name = side_column_name(c.name, c.type, taken)
        i = names.index(old.name)
        cols[i] = replace(old, nullable=True)  # no longer written: NULL in rows to come
        cols.append(replace(c, name=name, nullable=True))
        cur.redirect(src, c.name, name)
        log.warning("%s: column %s of %s is %s now, which no type holds together with %s (the "
                    "type of %s): %s keeps the values written so far, %s's values of %s go to "
                    "a new column %s from now on (schema-change-behavior = lenient)", target,
                    c.name, src, c.type, old.type, old.name, old.name, src, c.name, name)
        return SchemaChange("add_column", target, cur.schema.with_columns(tuple(cols)),
                            {"column": name})

    def apply(self, batch: ChangeBatch) -> tuple[list[SchemaChange], ChangeBatch]:
        """The schema changes to send first, and the batch under its target's schema."""
        target = self.target_of(batch.table)
        if target is None:
            return [], batch
        changes: list[SchemaChange] = []
        if self._seen.get(batch.table) is not batch.schema or target not in self._targets:
            changes = self._merge(target, batch.schema, [batch.table])
            self._seen[batch.table] = batch.schema
        t = self._targets[target]
        merged = t.schema
        if merged is batch.schema or (target == batch.table and merged == batch.schema):
            return changes, batch
        return changes, conform(batch, merged, t.redirects.get(batch.table))

    def apply_schema_change(self, change: SchemaChange) -> list[SchemaChange]:
        if self.behavior == "exception" and change.kind != "create_table":
            raise TerminalError(f"{change.kind} of {change.table}: the pipeline's "
                                f"schema-change-behavior is \"exception\"")
        target = self.target_of(change.table)
        if target is None:
            return [change]
        t = self._targets.get(target)
        if change.kind != "create_table" and (
                self.behavior == "ignore" or change.kind not in self.applied
                and change.kind in ("truncate_table", "drop_table")):
            log.info("%s of %s not passed on (schema-change-behavior = %s%s)", change.kind,
                     change.table, self.behavior, _skipped_note(self, change.kind))
            return []
        if change.kind in ("truncate_table", "drop_table"):
            if t is not None and t.sources - {change.table}:
                log.warning("route to %s: %s of %s not passed on (%d other tables are merged "
                            "into it)", target, change.kind, change.table, len(t.sources) - 1)
                return []
            if change.kind == "drop_table":
                self._targets.pop(target, None)
                self._seen.pop(change.table, None)
            # the schema the sink's table has (kept here), not the source's
            kept = None if change.schema is None else t.schema if t is not None else \
                change.schema.with_columns(change.schema.columns, target)
            return [SchemaChange(change.kind, target, kept, change.details, change.ts_ms,
                                 change.position)]
        if change.schema is None:
            return []
        if self.behavior in ("evolve", "try-evolve") and change.table in self._own:
            return self._evolve(change, t)
        # a merged (or lenient) schema only grows: a dropped column stays (NULL from now),
        # a renamed one stays and the new name is added, a type change widens
        if change.kind not in self.applied and change.kind not in ("create_table",
                                                                   "add_column"):
            log.info("%s of %s not passed on (%s)", change.kind, change.table,
                     _skipped_note(self, change.kind).lstrip("; "))
        elif change.kind in ("drop_column", "rename_column"):
            log.info("%s of %s %s: the old column stays in %s, NULL in later rows "
                     "(schema-change-behavior = %s)", change.kind, change.table,
                     change.details, target, self.behavior)
        self._seen[change.table] = change.schema
        return self._merge(target, change.schema, [change.table])

    def _evolve(self, change: SchemaChange, t: _Target | None) -> list[SchemaChange]:
        """``evolve`` of a table that keeps its own schema here because its sink skips some
        change types: an applied change reaches the sink as it is (on the schema the sink
        has), a skipped one leaves that schema as it was."""
        table = change.table
        new = change.schema
        assert new is not None
        seen, self._seen[table] = self._seen.get(table), new
        if t is None or change.kind == "create_table":
            self._targets[table] = _Target(new, {table})
            return [change] if change.kind in self.applied else []
        if change.kind not in self.applied:
            log.info("%s of %s not passed on (%s)", change.kind, table,
                     _skipped_note(self, change.kind).lstrip("; "))
            return []
        if seen is not None and seen.columns == t.schema.columns:
            kept = new  # nothing skipped so far: the sink's schema is the source's
        else:
            kept = _evolved(t.schema, change)
        t.schema = kept
        return [SchemaChange(change.kind, table, kept, change.details, change.ts_ms,
                             change.position)]


def _redirects(state: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {src: dict(m) for src, m in state.get("columns", {}).items()}


def _skipped_note(router: Router, kind: str) -> str:
    if kind in router.applied:
        return ""
    why = "lenient skips it unless the sink sets exclude-schema-changes" if (
        router.behavior == "lenient" and TAGS[kind] in LENIENT_EXCLUDED) else \
        "the sink's include-schema-changes / exclude-schema-changes skip it"
    return f"; {TAGS[kind]}: {why}"


def _evolved(kept: TableSchema, change: SchemaChange) -> TableSchema:
    """``kept`` (a schema that missed some changes) with ``change`` applied to it."""
    src, d = change.schema, change.details
    assert src is not None
    cols = list(kept.columns)
    names = [c.name for c in cols]
    if change.kind == "add_column" and d.get("column") not in names:
        cols.append(src.column(d["column"]))
    elif change.kind == "drop_column" and d.get("column") in names:
        del cols[names.index(d["column"])]
    elif change.kind == "rename_column" and d.get("old") in names:
        cols[names.index(d["old"])] = src.column(d["new"])
    elif change.kind == "alter_column_type" and d.get("column") in names:
        cols[names.index(d["column"])] = src.column(d["column"])
    have = {c.name for c in cols}
    pk = src.primary_key if all(k in have for k in src.primary_key) else kept.primary_key
    parts = tuple(k for k in src.partition_keys if k in have)
    return TableSchema(kept.table, tuple(cols), pk, parts)


def conform(batch: ChangeBatch, merged: TableSchema,
            redirect: dict[str, str] | None = None) -> ChangeBatch:
    """``batch`` under the merged schema: its columns cast to the merged types (a column
    ``redirect`` names written to its side column instead), the columns it lacks NULL
    (vectorised; the same batch object when nothing changes but the name)."""
    if batch.schema.columns == merged.columns:
        return _renamed(batch, merged, batch.arrow() if batch.has_arrow else None)
    redirect = redirect or {}
    rb = batch.arrow()
    src_names = [redirect.get(name, name) for name in batch.schema.names]
    have = {name: rb.column(i) for i, name in enumerate(src_names)}
    arrays = []
    for c in merged.columns:
        want = to_arrow(c.type)
        a = have.get(c.name)
        if a is None:
            arrays.append(pa.nulls(len(batch), want))
        elif a.type == want:
            arrays.append(a)
        else:
            try:
                arrays.append(pc.cast(a, want))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise TerminalError(
                    f"{batch.table}: column {c.name}: a value of type "
                    f"{batch.schema.columns[src_names.index(c.name)].type} "
                    f"does not fit the type {c.type} the sink's table {merged.table} keeps "
                    f"({str(exc).splitlines()[0]})") from None
    out = pa.RecordBatch.from_arrays(arrays, schema=merged.arrow_schema)
    before = None
    if batch.before is not None:
        pos = [src_names.index(c.name) if c.name in src_names else None
               for c in merged.columns]
        before = [None if b is None else tuple(None if p is None else b[p] for p in pos)
                  for b in batch.before]
    return ChangeBatch(merged, batch.ops, arrow=out, before=before, ts_ms=batch._ts,  # noqa: SLF001
                       positions=batch.positions, versions=batch.versions)


def _renamed(batch: ChangeBatch, merged: TableSchema, rb: pa.RecordBatch | None) -> ChangeBatch:
    return ChangeBatch(merged, batch.ops, rows=None if rb is not None else batch.rows(),
                       arrow=rb, before=batch.before, ts_ms=batch._ts,  # noqa: SLF001
                       positions=batch.positions, versions=batch.versions)
