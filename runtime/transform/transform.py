"""The transform operator: projection, filter, key overrides and soft deletes of one table.

A :class:`TransformRule` is one ``[[transform]]`` block.  For each table schema it meets it
builds a :class:`TablePlan` once (compiled expressions, output schema); :meth:`TablePlan.apply`
then maps a whole :class:`~runtime.batch.ChangeBatch` with a few Arrow kernel calls.

Update images stay consistent under a filter (as Flink CDC does): an update whose before image
passes and whose after image does not becomes a delete (of the before image); the reverse
becomes an insert.  An update without a before image whose after image fails becomes a delete
by its key (a no-op where the row never arrived).  A delete always passes: sources may send
only its key, and deleting a key the target never got is a no-op.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from operator import itemgetter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from runtime.batch import CREATE, DELETE, READ, UPDATE, ChangeBatch
from runtime.schema import Column, SchemaChange, TableSchema
from runtime.transform.expr import Env, Expr, ExprError, compile_expr, parse, parse_projection
from runtime.transform.gather import fixed_dtype, mask_indices, take, take_values
from runtime.transform.metadata import METADATA_COLUMNS, metadata_columns
from runtime.types import from_arrow, to_arrow

_FALSE = pa.scalar(False)

#: ``converter-after-transform`` values
SOFT_DELETE = "SOFT_DELETE"


@dataclass(frozen=True)
class TransformRule:
    """One ``[[transform]]`` block.  ``source_table`` is a regex matched against the whole
    ``db.table`` id; ``primary_keys`` None keeps the table's key."""

    source_table: str
    projection: str | None = None
    filter: str | None = None
    primary_keys: tuple[str, ...] | None = None
    converter: str | None = None
    description: str | None = None
    #: the result's partition keys (Flink CDC's ``partition-keys``); None: the table's
    partition_keys: tuple[str, ...] | None = None

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(self.source_table)

    def matches(self, table: str) -> bool:
        return self.pattern.fullmatch(table) is not None

    @cached_property
    def items(self) -> list[exp.Expression] | None:
        return parse_projection(self.projection) if self.projection else None

    @cached_property
    def filter_node(self) -> exp.Expression | None:
        return parse(self.filter) if self.filter else None

    def check(self, schema: TableSchema | None = None) -> None:
        """Parse and compile; with ``schema``, also resolve columns and types (build the plan).
        Raises :class:`ExprError` (the caller names the key)."""
        if schema is not None:
            TablePlan(self, schema)
            return
        try:
            for node in self.items or []:
                if not isinstance(node, exp.Star):
                    compile_expr(node)
        except ExprError as exc:
            raise exc.at("projection") from None
        if self.filter_node is not None:
            try:
                compile_expr(self.filter_node)
            except ExprError as exc:
                raise exc.at("filter") from None

    def to_dict(self) -> dict:
        return {"source_table": self.source_table, "projection": self.projection,
                "filter": self.filter, "primary_keys": self.primary_keys,
                "partition_keys": self.partition_keys, "converter": self.converter}


@dataclass
class _Item:
    name: str
    source: int | None  # column index passed through, or None: computed
    expr: Expr | None
    column: Column | None = None

    @cached_property
    def arrow_type(self) -> pa.DataType:
        assert self.column is not None
        return to_arrow(self.column.type)


class TablePlan:
    """A rule bound to one input schema: output schema and the compiled expressions."""

    def __init__(self, rule: TransformRule, schema: TableSchema):
        self.rule = rule
        self.input = schema
        self.soft_delete = rule.converter == SOFT_DELETE
        known = set(schema.names) | set(METADATA_COLUMNS)
        empty = metadata_columns(schema.table, 0)
        try:
            self.items = self._items(rule, schema, known, empty)
        except ExprError as exc:
            raise exc.at("projection") from None
        computed = {it.name: it for it in self.items if it.expr is not None}
        try:
            self.filter = self._filter(rule, schema, known, empty, computed)
        except ExprError as exc:
            raise exc.at("filter") from None
        names = [it.name for it in self.items]
        key = rule.primary_keys if rule.primary_keys is not None else schema.primary_key
        missing = [k for k in key if k not in names]
        if missing:
            if rule.primary_keys is not None:
                raise ExprError(f"column(s) {missing} are not in the projection").at(
                    "primary-keys")
            raise ExprError(f"the table's primary key column(s) {missing} are not in the "
                            f"projection; keep them or set primary-keys").at("projection")
        parts = rule.partition_keys if rule.partition_keys is not None else tuple(
            k for k in schema.partition_keys if k in names)
        missing = [k for k in parts if k not in names]
        if missing:
            raise ExprError(f"column(s) {missing} are not in the projection").at(
                "partition-keys")
        cols = tuple(it.column for it in self.items)  # type: ignore[misc]
        if key:  # key columns are NOT NULL, as in the source
            cols = tuple(Column(c.name, c.type, False, c.comment, c.default) if c.name in key
                         else c for c in cols)
        self.output = TableSchema(schema.table, cols, tuple(key), tuple(parts))
        # a filter on source columns alone runs first, and the projection only on what passes
        self._filter_first = self.filter is not None and not (self.filter.columns & set(computed))
        used = set().union(*(it.expr.columns for it in self.items if it.expr is not None))
        self._expr_inputs = [i for i, name in enumerate(schema.names) if name in used]
        # compiled once per schema: the input columns the filter reads, and those the
        # projection needs (passed through or read by expressions)
        self._filter_inputs = [i for i, name in enumerate(schema.names)
                               if self.filter is not None and name in self.filter.columns]
        self._needed = sorted({it.source for it in self.items if it.source is not None}
                              | set(self._expr_inputs))
        # per batch, only what is used: the (name, index) of the inputs each side reads, the
        # names of the one filter call's columns, whether metadata columns are read at all
        names = schema.names
        self._filter_reads = [(names[i], i) for i in self._filter_inputs]
        self._expr_reads = [(names[i], i) for i in self._expr_inputs]
        # how each of them is gathered where a filter drops rows (numpy or Arrow: .gather)
        arrow_schema = schema.arrow_schema
        self._gathers = [(i, fixed_dtype(arrow_schema.field(i).type)) for i in self._needed]
        meta = set(METADATA_COLUMNS)
        self._filter_meta = self.filter is not None and bool(self.filter.columns & meta)
        self._expr_meta = bool(used & meta)
        self._computed = [it for it in self.items if it.expr is not None]

    def _items(self, rule: TransformRule, schema: TableSchema, known: set[str],
               empty: dict) -> list[_Item]:
        if rule.items is None:
            return [_Item(c.name, i, None, c) for i, c in enumerate(schema.columns)]
        items: list[_Item] = []
        for node in rule.items:
            items.extend(self._item(node, schema, known))
        names = [it.name for it in items]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ExprError(f"the projection names column(s) {dup} twice")
        # output types: each computed expression evaluated once on an empty batch
        for it in items:
            if it.expr is not None:
                t = it.expr.output_type(schema.arrow_schema, empty)
                if pa.types.is_null(t):
                    t = pa.string()  # a bare NULL: a nullable string column
                try:
                    it.column = Column(it.name, from_arrow(t))
                except ValueError:
                    raise ExprError(f"{it.expr.sql}: its type {t} has no column type") from None
        return items

    @staticmethod
    def _filter(rule: TransformRule, schema: TableSchema, known: set[str], empty: dict,
                computed: dict[str, _Item]) -> Expr | None:
        if rule.filter_node is None:
            return None
        f = compile_expr(rule.filter_node, known | set(computed))
        extra = {**empty, **{name: (lambda t=it.column.type: pa.array([], to_arrow(t)))  # type: ignore[union-attr]
                             for name, it in computed.items()}}
        ft = f.output_type(schema.arrow_schema, extra)
        if not (pa.types.is_boolean(ft) or pa.types.is_null(ft)):
            raise ExprError(f"{f.sql}: is {ft}, not a condition (BOOLEAN)")
        return f

    def _item(self, node: exp.Expression, schema: TableSchema, known: set[str]) -> list[_Item]:
        if isinstance(node, exp.Star):
            return [_Item(c.name, i, None, c) for i, c in enumerate(schema.columns)]
        if isinstance(node, exp.Column) and not node.table and node.name in schema.names:
            i = schema.index(node.name)
            return [_Item(node.name, i, None, schema.columns[i])]
        if isinstance(node, exp.Alias):
            name = node.alias
            inner = node.this
            if isinstance(inner, exp.Column) and not inner.table and inner.name in schema.names:
                i = schema.index(inner.name)
                c = schema.columns[i]
                return [_Item(name, i, None, Column(name, c.type, c.nullable, c.comment))]
            return [_Item(name, None, compile_expr(inner, known))]
        if isinstance(node, exp.Column) and node.name in METADATA_COLUMNS:
            return [_Item(node.name, None, compile_expr(node, known))]
        if isinstance(node, exp.Column):
            compile_expr(node, known)  # raises: unknown column
        raise ExprError(f"{node.sql()}: give the expression a name (... AS name)")

    # -- data ----------------------------------------------------------------------------
    def _project(self, rb: pa.RecordBatch, env: Env) -> tuple[list[pa.Array], dict[str, pa.Array]]:
        computed = {it.name: it.expr.evaluate(env) for it in self.items if it.expr is not None}
        arrays = []
        for it in self.items:
            a = rb.column(it.source) if it.source is not None else computed[it.name]
            want = it.arrow_type
            arrays.append(a if a.type == want else pc.cast(a, want))
        return arrays, computed

    def _env(self, rb: pa.RecordBatch, batch: ChangeBatch, ops: str | None = None) -> Env:
        return Env(rb.num_rows, dict(zip(rb.schema.names, rb.columns)),
                   metadata_columns(self.input.table, rb.num_rows, batch, ops))

    def _mask(self, env: Env, computed: dict[str, pa.Array]) -> np.ndarray:
        assert self.filter is not None
        env.columns.update(computed)  # the filter sees computed columns (they shadow)
        m = self.filter.evaluate(env)
        if pa.types.is_null(m.type):
            return np.zeros(env.n, dtype=bool)
        return pc.coalesce(m, _FALSE).to_numpy(zero_copy_only=False)

    def apply(self, batch: ChangeBatch) -> ChangeBatch | None:
        """The batch transformed; None when no event is left."""
        if self._filter_first and (batch.before is None or UPDATE not in batch.ops):
            # before images matter for updates only (apply keeps none for other events)
            return self._apply_filter_first(batch)
        n = len(batch)
        rb = batch.arrow()
        env = self._env(rb, batch)
        arrays, computed = self._project(rb, env)
        ops = np.frombuffer(batch.ops.encode("ascii"), dtype=np.uint8).copy()
        before = batch.before
        # before images of updates (projected, and filtered when there is a filter)
        upd = np.nonzero(ops == ord(UPDATE))[0]
        with_before = ([int(i) for i in upd if before[i] is not None]
                       if before is not None and len(upd) else [])
        b_arrays: list[pa.Array] = []
        b_pass = np.ones(len(with_before), dtype=bool)
        if with_before:
            b_rb = pa.RecordBatch.from_arrays(
                [pa.array(col, type=f.type) for col, f in
                 zip(zip(*[before[i] for i in with_before]), self.input.arrow_schema)],
                schema=self.input.arrow_schema)
            b_env = self._env(b_rb, _Subset(batch, with_before),  # type: ignore[arg-type]
                              "d" * len(with_before))  # kept alone only as a delete
            b_arrays, b_computed = self._project(b_rb, b_env)
            if self.filter is not None:
                b_pass = self._mask(b_env, b_computed)
        keep = self._mask(env, computed) if self.filter is not None else np.ones(n, dtype=bool)
        if self.filter is not None:
            # a delete always passes: sources may send only its key (the filter can't judge
            # it), and deleting a key the target never got is a no-op
            keep |= ops == ord(DELETE)
        take = np.arange(n, dtype=np.int64) if with_before else np.empty(0, dtype=np.int64)
        out_before: list[tuple | None] | None = None
        b_rows = list(zip(*[a.to_pylist() for a in b_arrays])) if b_arrays else []
        if before is not None:
            out_before = [None] * n
        for j, i in enumerate(with_before):  # per update with a before image: cheap bookkeeping
            if keep[i] and b_pass[j]:
                out_before[i] = b_rows[j]  # type: ignore[index]
            elif keep[i]:
                ops[i] = ord("c")  # entered the filter: an insert
            elif b_pass[j]:
                ops[i] = ord(DELETE)  # left the filter: delete the before image
                take[i] = n + j
                keep[i] = True
        if self.filter is not None and len(upd):
            no_before = np.ones(n, dtype=bool)
            no_before[with_before] = False
            gone = (ops == ord(UPDATE)) & ~keep & no_before
            ops[gone] = ord(DELETE)  # after image fails, before unknown: delete by key
            keep |= gone
        if self.soft_delete:
            ops[ops == ord(DELETE)] = ord(UPDATE)  # the row stays, marked by the projection
        idx = np.nonzero(keep)[0]
        if not len(idx):
            return None
        whole = len(idx) == n
        if b_arrays and (take >= n).any():  # deletes of before images: gather from both
            sel = pa.array(take[idx])
            arrays = [pa.concat_arrays([a, b]).take(sel) for a, b in zip(arrays, b_arrays)]
            out_rb = pa.RecordBatch.from_arrays(arrays, schema=self.output.arrow_schema)
        else:
            out_rb = pa.RecordBatch.from_arrays(arrays, schema=self.output.arrow_schema)
            if not whole:
                out_rb = out_rb.filter(pa.array(keep))  # one pass over all columns
        ts = batch._ts  # noqa: SLF001 - a constant stays a constant
        if not whole and not isinstance(ts, int):
            ts = batch.ts_ms_array().filter(pa.array(keep))
        return ChangeBatch(
            self.output, ops[idx].tobytes().decode("ascii"), arrow=out_rb,
            before=(out_before if whole else [out_before[i] for i in idx])
            if out_before is not None else None,
            ts_ms=ts,
            positions=(batch.positions if whole else [batch.positions[i] for i in idx])
            if batch.positions is not None else None,
            versions=(batch.versions if whole else np.asarray(batch.versions)[idx])
            if batch.versions is not None else None)


    def _apply_filter_first(self, batch: ChangeBatch) -> ChangeBatch | None:
        """:meth:`apply` for a batch without before images and a filter that reads no
        computed column: the filter first, then only the columns the result needs, of only
        the rows that pass, one gather per column (the same result, less work).  A batch of
        inserts only (a snapshot chunk, an append stream) keeps the mask in Arrow."""
        n = len(batch)
        rb = batch.arrow()
        in_ops = batch.ops
        env = Env(n, {name: rb.column(i) for name, i in self._filter_reads},
                  metadata_columns(self.input.table, n, batch) if self._filter_meta else None)
        m = self.filter.evaluate(env)  # type: ignore[union-attr]
        first = in_ops[:1]
        if first in (READ, CREATE) and in_ops == first * n:  # (a memcmp: faster than count)
            if pa.types.is_null(m.type):
                return None
            mask = pc.fill_null(m, False) if m.null_count else m
            kept = mask.true_count
            if not kept:
                return None
            if kept == n:
                return self._project_kept(batch, rb, None, n, in_ops, in_ops)
            ops = first * kept
            return self._project_kept(batch, rb, mask, kept, ops, ops)
        # changes of several kinds: the per-kind rules on a numpy mask
        ops_np = np.frombuffer(in_ops.encode("ascii"), dtype=np.uint8)
        keep = (np.zeros(n, dtype=bool) if pa.types.is_null(m.type)
                else pc.fill_null(m, False).to_numpy(zero_copy_only=False).copy())
        keep |= ops_np == ord(DELETE)  # as in apply: a delete always passes
        out_ops = ops_np.copy()
        gone = (ops_np == ord(UPDATE)) & ~keep
        if gone.any():  # after image fails, before unknown: delete by key
            out_ops[gone] = ord(DELETE)
            keep |= gone
        if self.soft_delete:
            out_ops[out_ops == ord(DELETE)] = ord(UPDATE)
        idx = np.flatnonzero(keep)
        if not len(idx):
            return None
        if len(idx) == n:
            return self._project_kept(batch, rb, None, n, out_ops.tobytes().decode("ascii"),
                                      in_ops)
        return self._project_kept(batch, rb, pa.array(keep), len(idx),
                                  out_ops[idx].tobytes().decode("ascii"),
                                  ops_np[idx].tobytes().decode("ascii"), idx)

    def _project_kept(self, batch: ChangeBatch, rb: pa.RecordBatch, mask: pa.Array | None,
                      m: int, out_ops: str, in_ops: str, idx: np.ndarray | None = None
                      ) -> ChangeBatch:
        """The projection of the ``m`` rows ``mask`` keeps (None: all; ``idx``: their
        positions, if the caller has them): the columns it needs gathered once each
        (:mod:`.gather`), passed-through columns as they are (no copy, no cast unless the type
        differs), computed ones evaluated on the kept rows only."""
        ts = batch._ts  # noqa: SLF001 - a constant stays a constant
        positions, versions = batch.positions, batch.versions
        if mask is None:
            cols = {i: rb.column(i) for i in self._needed}
        else:
            # one gather by row indices per column the result needs (see .gather), the
            # event times and versions included
            if idx is None:
                idx = mask_indices(mask)
            cols = {i: take(rb.column(i), dtype, idx, mask) for i, dtype in self._gathers}
            if not isinstance(ts, int):
                ts = take_values(ts, idx)
            if versions is not None:
                versions = take_values(versions, idx)
                if isinstance(versions, pa.Array):
                    versions = versions.to_numpy(zero_copy_only=False)
        view = batch if mask is None else _Subset(batch, idx, mask)
        computed = {}
        if self._computed:
            env = Env(m, {name: cols[i] for name, i in self._expr_reads},
                      metadata_columns(self.input.table, m, view, in_ops)  # type: ignore[arg-type]
                      if self._expr_meta else None)
            computed = {id(it): it.expr.evaluate(env)  # type: ignore[union-attr]
                        for it in self._computed}
        arrays = []
        for it in self.items:
            a = cols[it.source] if it.source is not None else computed[id(it)]
            want = it.arrow_type
            arrays.append(a if a.type == want else pc.cast(a, want))
        if mask is not None and positions is not None:
            positions = view.positions  # type: ignore[union-attr]
        return ChangeBatch(
            self.output, out_ops,
            arrow=pa.RecordBatch.from_arrays(arrays, schema=self.output.arrow_schema),
            ts_ms=ts, positions=positions, versions=versions)


class _Subset:
    """The events ``idx`` (or those ``mask`` keeps) of a batch, as far as metadata columns
    and the kept rows' positions read them (computed on first use)."""

    def __init__(self, batch: ChangeBatch, idx: list[int] | np.ndarray | None,
                 mask: pa.Array | None = None):
        self._batch, self._idx, self._mask = batch, idx, mask

    @property
    def idx(self) -> list[int] | np.ndarray:
        if self._idx is None:
            assert self._mask is not None
            self._idx = np.flatnonzero(self._mask.to_numpy(zero_copy_only=False))
        return self._idx

    @property
    def positions(self) -> list | None:
        p = self._batch.positions
        if p is None:
            return None
        idx = self.idx
        if not len(idx):
            return []
        got = itemgetter(*idx)(p)  # one C-level gather
        return [got] if len(idx) == 1 else list(got)

    def ts_ms_array(self) -> pa.Array:
        if self._mask is not None:
            return self._batch.ts_ms_array().filter(self._mask)
        return self._batch.ts_ms_array().take(pa.array(self.idx))


@dataclass
class Transformer:
    """The ``[[transform]]`` blocks of a pipeline: the first whose ``source-table`` matches a
    table applies to it; tables no block matches pass unchanged."""

    rules: list[TransformRule]
    _plans: dict[TableSchema, TablePlan | None] = field(default_factory=dict)
    #: the output schema each table had last (to drop changes invisible after the transform)
    _last: dict[str, TableSchema] = field(default_factory=dict)
    _recent: tuple[TableSchema, TablePlan | None] | None = None

    def plan(self, schema: TableSchema) -> TablePlan | None:
        last = self._recent
        if last is not None and last[0] is schema:  # batches of a table share their schema
            return last[1]
        if schema in self._plans:
            self._recent = (schema, self._plans[schema])
            return self._plans[schema]
        rule = next((r for r in self.rules if r.matches(schema.table)), None)
        plan = None
        if rule is not None:
            try:
                plan = TablePlan(rule, schema)
            except ExprError as exc:
                from runtime.errors import TerminalError  # noqa: PLC0415

                raise TerminalError(f"transform of {schema.table} (source-table = "
                                    f"{rule.source_table!r}): {exc}") from None
        if len(self._plans) > 4096:
            self._plans.clear()
        self._plans[schema] = plan
        self._recent = (schema, plan)
        return plan

    def apply(self, batch: ChangeBatch) -> ChangeBatch | None:
        plan = self.plan(batch.schema)
        if plan is None:
            return batch
        try:
            return plan.apply(batch)
        except ExprError as exc:
            from runtime.errors import TerminalError  # noqa: PLC0415

            raise TerminalError(f"transform of {batch.table}: {exc}") from None

    def apply_schema_change(self, change: SchemaChange) -> SchemaChange | None:
        """The change as the transformed table sees it; None when the transformed table does
        not change (e.g. a column the projection leaves out was added)."""
        if change.schema is None:
            return change
        plan = self.plan(change.schema)
        if plan is None:
            return change
        out = plan.output
        prev = self._last.get(change.table)
        self._last[change.table] = out
        if change.kind in ("create_table", "truncate_table"):
            return SchemaChange(change.kind, change.table, out, change.details, change.ts_ms,
                                change.position)
        if prev is not None and prev == out:
            return None  # the change touched only what the projection leaves out
        names = {change.details.get("column"), change.details.get("old"),
                 change.details.get("new")} - {None}
        if prev is None and not names & (set(out.names) | set(self._dropped(change))):
            return None
        return SchemaChange(change.kind, change.table, out, change.details, change.ts_ms,
                            change.position)

    @staticmethod
    def _dropped(change: SchemaChange) -> tuple[str, ...]:
        # a dropped column is no longer in the output: the sink hears of it when it was there
        return (change.details["column"],) if change.kind == "drop_column" \
            and "column" in change.details else ()
