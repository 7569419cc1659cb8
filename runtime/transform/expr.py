"""SQL expressions of ``[[transform]]`` blocks, parsed by sqlglot and evaluated on Arrow arrays.

:func:`compile_expr` turns one parsed expression into an :class:`Expr`: a tree of closures, each
calling one ``pyarrow.compute`` kernel on whole columns.  Evaluating costs a few Python calls per
node and batch, never one per row.

SQL semantics kept on purpose:

* NULL: comparisons and arithmetic with NULL give NULL; ``AND``/``OR`` are three-valued
  (Kleene); ``IN`` gives NULL when nothing matches and the list holds NULL; a filter keeps a row
  only when its condition is TRUE; ``IF``/``CASE`` take a NULL condition as not TRUE.
* Division by zero (``/`` and ``MOD``) gives NULL (as MySQL does), not an error; integer
  division truncates toward zero.
* ``CAST`` fails the batch on a value it cannot convert (one line naming the expression);
  ``TRY_CAST`` gives NULL instead.
* Type errors (``'a' > 1``, ``UPPER(42)``) are found before any data flows: :meth:`Expr.output_type`
  evaluates on an empty batch of the table's schema, which is what ``hub validate`` does when
  the schema is known.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import sqlglot
from sqlglot import exp, tokens
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError

from runtime.transform import decimal64
from runtime.transform.errors import ExprError
from runtime.transform.functions import (FUNCTIONS, NODE_NAMES, SQL_TYPES, Value, arithmetic,
                                         arrow_message, comparison,
                                         common, concat, div, false_if_null, in_list,
                                         is_number, mod, try_cast, unify)
from runtime.types import parse_type, to_arrow

__all__ = ["Env", "Expr", "ExprError", "TransformSql", "compile_expr", "parse",
           "parse_projection"]


class TransformSql(Dialect):
    """The SQL dialect of expressions: Flink SQL's quoting (``'text'``, `` `name` `` and
    ``"name"`` for identifiers) and ``||`` as string concatenation."""

    class Tokenizer(tokens.Tokenizer):
        IDENTIFIERS = ['"', "`"]


class Env:
    """What an expression reads: the columns of one batch by name, plus metadata columns
    computed on first use (then cached)."""

    def __init__(self, n: int, columns: Mapping[str, pa.Array],
                 lazy: Mapping[str, Callable[[], pa.Array]] | None = None):
        self.n = n
        self.columns = dict(columns)
        self.lazy = lazy or {}

    def get(self, name: str) -> pa.Array:
        col = self.columns.get(name)
        if col is None:
            col = self.columns[name] = self.lazy[name]()
        return col

    def names(self) -> set[str]:
        return set(self.columns) | set(self.lazy)


Fn = Callable[[Env], Value]


@dataclass(frozen=True)
class Expr:
    """A compiled expression: ``sql`` as the user wrote it, ``columns`` it reads."""

    sql: str
    fn: Fn
    columns: frozenset[str]

    def evaluate(self, env: Env) -> pa.Array:
        """The expression's value for every row of ``env`` (an array of length ``env.n``)."""
        try:
            out = self.fn(env)
        except ExprError:
            raise
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise ExprError(f"{self.sql}: {arrow_message(exc)}") from None
        return broadcast(out, env.n)

    def output_type(self, schema: pa.Schema, extra: Mapping[str, Callable[[], pa.Array]]
                    ) -> pa.DataType:
        """The result type for a table of ``schema``; raises :class:`ExprError` for a type
        error (evaluates on an empty batch: no data needed)."""
        env = Env(0, {f.name: pa.array([], type=f.type) for f in schema}, extra)
        return self.evaluate(env).type


def broadcast(v: Value, n: int) -> pa.Array:
    if isinstance(v, pa.ChunkedArray):
        return v.combine_chunks()
    if isinstance(v, pa.Scalar):
        return pa.repeat(v, n) if v.is_valid else pa.nulls(n, v.type)
    return v


def parse(sql: str) -> exp.Expression:
    """One SQL expression; ExprError with the parser's message when it is not one."""
    try:
        return sqlglot.parse_one(sql, read=TransformSql)
    except ParseError as exc:
        first = exc.errors[0]["description"] if exc.errors else str(exc)
        raise ExprError(f"cannot parse {sql!r}: {first}") from None


def parse_projection(sql: str) -> list[exp.Expression]:
    """The items of a projection (``id, a + 1 AS b, *``)."""
    try:
        select = sqlglot.parse_one(f"SELECT {sql}", read=TransformSql)
    except ParseError as exc:
        first = exc.errors[0]["description"] if exc.errors else str(exc)
        raise ExprError(f"cannot parse projection {sql!r}: {first}") from None
    if not isinstance(select, exp.Select) or select.args.get("from_") or select.args.get("from"):
        raise ExprError(f"projection {sql!r}: only a list of expressions")
    return list(select.expressions)


def compile_expr(node: exp.Expression, known: set[str] | None = None) -> Expr:
    """Compile ``node``; ``known``: the column names that exist (None: not known, checked when
    data arrives).  Raises :class:`ExprError` naming an unknown column or function."""
    cols: set[str] = set()
    fn = _Compiler(known, cols).compile(node)
    return Expr(node.sql(dialect=TransformSql), fn, frozenset(cols))


# -- helpers on values ---------------------------------------------------------------------------
def _lit(v: object, t: pa.DataType | None = None) -> Fn:
    s = pa.scalar(v, type=t)
    return lambda env: s


_BINARY: dict[type, Callable[[Value, Value], Value]] = {
    exp.Add: arithmetic(pc.add_checked, pc.add),
    exp.Sub: arithmetic(pc.subtract_checked, pc.subtract),
    exp.Mul: arithmetic(pc.multiply_checked, pc.multiply, decimal64.multiply),
    exp.Div: div, exp.Mod: mod,
    exp.EQ: comparison("equal"), exp.NEQ: comparison("not_equal"),
    exp.GT: comparison("greater"), exp.GTE: comparison("greater_equal"),
    exp.LT: comparison("less"), exp.LTE: comparison("less_equal"),
    exp.And: pc.and_kleene, exp.Or: pc.or_kleene,
    exp.DPipe: concat,
}


class _Compiler:
    def __init__(self, known: set[str] | None, cols: set[str]):
        self.known = known
        self.cols = cols

    def compile(self, node: exp.Expression) -> Fn:
        fn = self._compile(node)
        if isinstance(node, (exp.Column, exp.Literal, exp.Null, exp.Boolean, exp.Paren,
                             exp.Alias)):
            return fn
        sql = node.sql(dialect=TransformSql)

        def located(env: Env) -> Value:
            # a kernel's error names the smallest expression it comes from
            try:
                return fn(env)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise ExprError(f"{sql}: {arrow_message(exc)}") from None
        return located

    def _compile(self, node: exp.Expression) -> Fn:  # noqa: C901 - one branch per node kind
        if isinstance(node, (exp.Paren, exp.Alias)):
            return self.compile(node.this)
        if isinstance(node, exp.Column):
            return self.column(node)
        if isinstance(node, exp.Literal):
            if node.is_string:
                return _lit(node.this)
            text = node.this
            return _lit(int(text)) if re.fullmatch(r"\d+", text) else _lit(float(text))
        if isinstance(node, exp.Null):
            return _lit(None)
        if isinstance(node, exp.Boolean):
            return _lit(bool(node.this))
        if isinstance(node, exp.Neg):
            f = self.compile(node.this)
            return lambda env: pc.negate_checked(f(env))
        if isinstance(node, exp.Not):
            f = self.compile(node.this)
            return lambda env: pc.invert(f(env))
        op = _BINARY.get(type(node))
        if op is not None:
            a, b = self.compile(node.this), self.compile(node.expression)
            return lambda env: op(*unify(a(env), b(env)))
        if isinstance(node, exp.Is):
            f = self.compile(node.this)
            target = node.expression
            if isinstance(target, exp.Null):
                return lambda env: pc.is_null(f(env))
            if isinstance(target, exp.Boolean):
                want = bool(target.this)
                return lambda env: false_if_null(pc.equal(f(env), want))
            raise ExprError(f"IS {target.sql()}: only IS [NOT] NULL / TRUE / FALSE")
        if isinstance(node, exp.In):
            f = self.compile(node.this)
            items = [self.compile(e) for e in node.expressions]
            return lambda env: in_list(f(env), [g(env) for g in items])
        if isinstance(node, exp.Between):
            x, lo, hi = (self.compile(node.this), self.compile(node.args["low"]),
                         self.compile(node.args["high"]))
            return lambda env: pc.and_kleene(pc.greater_equal(*unify(x(env), lo(env))),
                                             pc.less_equal(*unify(x(env), hi(env))))
        if isinstance(node, (exp.Like, exp.ILike)):
            f = self.compile(node.this)
            pat = node.expression
            if not isinstance(pat, exp.Literal) or not pat.is_string:
                raise ExprError(f"{node.sql()}: the pattern of LIKE must be a string literal")
            ci = isinstance(node, exp.ILike)
            return lambda env: pc.match_like(f(env), pat.this, ignore_case=ci)
        if isinstance(node, exp.Case):
            return self.case(node)
        if isinstance(node, exp.If):
            c, t = self.compile(node.this), self.compile(node.args["true"])
            e = self.compile(node.args["false"]) if node.args.get("false") else _lit(None)

            def if_(env: Env) -> Value:
                tv, ev = common([t(env), e(env)])
                return pc.if_else(false_if_null(c(env)), tv, ev)
            return if_
        if isinstance(node, exp.Coalesce):
            parts = [self.compile(node.this)] + [self.compile(e) for e in node.expressions]
            return lambda env: pc.coalesce(*common([p(env) for p in parts]))
        if isinstance(node, (exp.TryCast, exp.Cast)):
            return self.cast(node)
        if isinstance(node, exp.Func):
            return self.function(node)
        if isinstance(node, exp.Star):
            raise ExprError("* is only allowed as a projection item")
        raise ExprError(f"{node.sql(dialect=TransformSql)}: not supported in expressions")

    def column(self, node: exp.Column) -> Fn:
        if node.table:
            raise ExprError(f"{node.sql()}: name columns without a table")
        name = node.name
        if self.known is not None and name not in self.known:
            raise ExprError(f"unknown column {name!r}" + _hint(name, self.known))
        self.cols.add(name)

        def col(env: Env) -> Value:
            try:
                return env.get(name)
            except KeyError:
                raise ExprError(f"unknown column {name!r}" + _hint(name, env.names())) from None
        return col

    def case(self, node: exp.Case) -> Fn:
        subject = self.compile(node.this) if node.this else None
        conds = [self.compile(i.this) for i in node.args["ifs"]]
        thens = [self.compile(i.args["true"]) for i in node.args["ifs"]]
        default = self.compile(node.args["default"]) if node.args.get("default") else _lit(None)

        def case(env: Env) -> Value:
            if subject is not None:
                s = subject(env)
                cs = [pc.equal(*unify(s, c(env))) for c in conds]
            else:
                cs = [c(env) for c in conds]
            cs = [broadcast(false_if_null(c), env.n) for c in cs]
            vals = common([t(env) for t in thens] + [default(env)])
            if pa.types.is_null(vals[0].type):
                return pa.nulls(env.n)
            cond = pc.make_struct(*cs, field_names=[f"c{i}" for i in range(len(cs))])
            return pc.case_when(cond, *vals)
        return case

    def cast(self, node: exp.Cast) -> Fn:
        to = node.args["to"]
        text = to.sql(dialect=TransformSql).replace(" ", "")
        try:
            target = to_arrow(parse_type(SQL_TYPES.get(text.upper(), text)))
        except ValueError:
            raise ExprError(f"{node.sql(dialect=TransformSql)}: unknown type {text}") from None
        f = self.compile(node.this)
        if isinstance(node, exp.TryCast):
            return lambda env: try_cast(f(env), target)

        def cast(env: Env) -> Value:
            v = f(env)
            if pa.types.is_string(v.type) and is_number(target):
                v = pc.utf8_trim_whitespace(v)  # ' 2' is 2, as in Flink SQL
            try:
                return v.cast(target) if isinstance(v, pa.Scalar) else pc.cast(v, target)
            except pa.ArrowInvalid as exc:
                raise ExprError(f"{node.sql(dialect=TransformSql)}: a value cannot be cast "
                                f"({arrow_message(exc)}); TRY_CAST gives NULL instead") from None
        return cast

    def function(self, node: exp.Func) -> Fn:
        if isinstance(node, exp.Anonymous):
            name = str(node.this).upper()
        else:
            name = NODE_NAMES.get(type(node).__name__, type(node).__name__.upper())
        spec = FUNCTIONS.get(name)
        if spec is None:
            raise ExprError(f"unknown function {name}" + _hint(name, set(FUNCTIONS)))
        lo, hi, impl = spec
        args: list[exp.Expression] = []
        for key in type(node).arg_types:
            v = node.args.get(key)
            if isinstance(v, list):
                args.extend(v)
            elif isinstance(v, exp.Expression):
                args.append(v)
        if not lo <= len(args) <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            raise ExprError(f"{name} takes {want} arguments, not {len(args)}")
        fns = [self.compile(a) for a in args]
        return lambda env: impl(*[f(env) for f in fns])


def _hint(name: str, known: set[str]) -> str:
    import difflib  # noqa: PLC0415 - only on the error path

    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
