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

import datetime as _dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlglot
from sqlglot import exp, tokens
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError

from runtime.transform.jsonpath import json_value
from runtime.types import parse_type, to_arrow

Value = pa.Array | pa.Scalar


class TransformSql(Dialect):
    """The SQL dialect of expressions: Flink SQL's quoting (``'text'``, `` `name` `` and
    ``"name"`` for identifiers) and ``||`` as string concatenation."""

    class Tokenizer(tokens.Tokenizer):
        IDENTIFIERS = ['"', "`"]


class ExprError(ValueError):
    """An expression that cannot be compiled or evaluated; the message names what is wrong
    (callers add the key path).  ``part``: the option it comes from (``projection``,
    ``filter``, ``primary-keys``) when known."""

    part: str | None = None

    def at(self, part: str) -> ExprError:
        if self.part is None:
            self.part = part
        return self


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
            raise ExprError(f"{self.sql}: {_arrow_message(exc)}") from None
        return broadcast(out, env.n)

    def output_type(self, schema: pa.Schema, extra: Mapping[str, Callable[[], pa.Array]]
                    ) -> pa.DataType:
        """The result type for a table of ``schema``; raises :class:`ExprError` for a type
        error (evaluates on an empty batch: no data needed)."""
        env = Env(0, {f.name: pa.array([], type=f.type) for f in schema}, extra)
        return self.evaluate(env).type


def _arrow_message(exc: Exception) -> str:
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    m = re.match(r"Function '(\w+)' has no kernel matching input types \((.*)\)", msg)
    if m:
        return f"type error: {m.group(1)} is not defined for ({m.group(2)})"
    return msg


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


def _unify(a: Value, b: Value) -> tuple[Value, Value]:
    """Make NULL literals take the other side's type (``x = NULL``, ``COALESCE(x, NULL)``)."""
    if pa.types.is_null(a.type) and not pa.types.is_null(b.type):
        a = a.cast(b.type) if isinstance(a, pa.Scalar) else pc.cast(a, b.type)
    elif pa.types.is_null(b.type) and not pa.types.is_null(a.type):
        b = b.cast(a.type) if isinstance(b, pa.Scalar) else pc.cast(b, a.type)
    return a, b


def _common(values: list[Value]) -> list[Value]:
    """Values cast to one type (NULLs to the first typed one; numbers widened)."""
    typed = [v.type for v in values if not pa.types.is_null(v.type)]
    if not typed:
        return values
    target = typed[0]
    for t in typed[1:]:
        if t != target:
            target = _wider(target, t)
    return [v if v.type == target else v.cast(target) for v in values]


def _wider(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    num = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal)
    if any(f(a) for f in num) and any(f(b) for f in num):
        if pa.types.is_floating(a) or pa.types.is_floating(b):
            return pa.float64()
        if pa.types.is_decimal(a) or pa.types.is_decimal(b):
            return _wider_decimal(a, b)
        return a if a.bit_width >= b.bit_width else b
    if (pa.types.is_timestamp(a) and pa.types.is_timestamp(b)) and a.tz == b.tz:
        return a if ["s", "ms", "us", "ns"].index(a.unit) >= ["s", "ms", "us", "ns"].index(
            b.unit) else b
    raise ExprError(f"type error: no common type of {a} and {b}")


def _wider_decimal(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    def ps(t: pa.DataType) -> tuple[int, int]:
        if pa.types.is_decimal(t):
            return t.precision, t.scale
        return {8: 3, 16: 5, 32: 10, 64: 19}[t.bit_width], 0
    (pa_, sa), (pb, sb) = ps(a), ps(b)
    scale = max(sa, sb)
    prec = max(pa_ - sa, pb - sb) + scale
    return pa.decimal128(prec, scale) if prec <= 38 else pa.decimal256(min(prec, 76), scale)


def _false_if_null(v: Value) -> Value:
    return pc.fill_null(v, False)


def _nonzero(v: Value) -> Value:
    """``v`` with zeros made NULL (SQL division by zero gives NULL here)."""
    if isinstance(v, pa.Scalar):
        return v if not v.is_valid or v.as_py() != 0 else pa.scalar(None, v.type)
    return pc.if_else(pc.equal(v, pa.scalar(0).cast(v.type) if not pa.types.is_decimal(v.type)
                               else pa.scalar(0).cast(v.type)), pa.scalar(None, v.type), v)


def _div(a: Value, b: Value) -> Value:
    a, b = _unify(a, b)
    return pc.divide(a, _nonzero(b))


def _mod(a: Value, b: Value) -> Value:
    a, b = _unify(a, b)
    b = _nonzero(b)
    if pa.types.is_integer(a.type) and pa.types.is_integer(b.type):
        return pc.subtract(a, pc.multiply(pc.divide(a, b), b))  # truncating: sign of a
    q = pc.trunc(pc.divide(pc.cast(a, pa.float64()), pc.cast(b, pa.float64())))
    return pc.subtract(a, pc.multiply(q, b))


def _to_string(v: Value) -> Value:
    if pa.types.is_string(v.type) or pa.types.is_large_string(v.type):
        return v
    return v.cast(pa.string()) if isinstance(v, pa.Scalar) else pc.cast(v, pa.string())


def _concat(*vs: Value) -> Value:
    return pc.binary_join_element_wise(*[_to_string(v) for v in vs], pa.scalar(""))


def _in(x: Value, values: list[Value]) -> Value:
    vals = [v for v in values if v.is_valid]
    has_null = len(vals) < len(values)
    if not vals:
        return pa.scalar(None, pa.bool_())
    vset = pa.array([v.as_py() for v in vals])
    if not pa.types.is_null(x.type) and vset.type != x.type:
        vset = vset.cast(x.type)
    found = pc.is_in(x, value_set=vset, skip_nulls=True)
    found = pc.if_else(pc.is_null(x), pa.scalar(None, pa.bool_()), found)
    if has_null:
        found = pc.if_else(found, True, pa.scalar(None, pa.bool_()))
    return found


# Java (Flink's DATE_FORMAT) pattern letters -> strftime
_JAVA_FMT = [("yyyy", "%Y"), ("yy", "%y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"),
             ("mm", "%M"), ("ss", "%S"), ("SSS", "%f")]


def _strftime_pattern(fmt: str) -> str:
    out = fmt
    for java, c in _JAVA_FMT:
        out = out.replace(java, c)
    return out


def _date_format(v: Value, fmt: Value) -> Value:
    if not isinstance(fmt, pa.Scalar):
        raise ExprError("DATE_FORMAT: the format must be a literal")
    if pa.types.is_string(v.type):
        v = pc.cast(v, pa.timestamp("us"))
    return pc.strftime(v, format=_strftime_pattern(fmt.as_py()))


def _to_timestamp(v: Value, fmt: Value | None = None) -> Value:
    if fmt is None:
        return pc.cast(v, pa.timestamp("us"))
    return pc.strptime(v, format=_strftime_pattern(fmt.as_py()), unit="us")


def _to_date(v: Value, fmt: Value | None = None) -> Value:
    return pc.cast(_to_timestamp(v, fmt), pa.date32())


def _substr(s: Value, start: Value, length: Value | None = None) -> Value:
    b = start.as_py()
    b0 = b - 1 if b > 0 else b  # SQL positions start at 1
    if length is None:
        return pc.utf8_slice_codeunits(s, b0)
    return pc.utf8_slice_codeunits(s, b0, b0 + length.as_py())


def _round(x: Value, d: Value | None = None) -> Value:
    return pc.round(x, ndigits=0 if d is None else d.as_py(), round_mode="half_up")


def _from_unixtime(v: Value) -> Value:
    return pc.cast(pc.multiply(pc.cast(v, pa.int64()), 1000),
                   pa.timestamp("ms", tz="UTC"))


def _is_ascii(v: pa.Array) -> bool:
    """Whether every byte of a string column is ASCII (one scan of its data buffer)."""
    if not pa.types.is_string(v.type) or v.buffers()[2] is None:
        return False
    offsets = np.frombuffer(v.buffers()[1], dtype=np.int32)[v.offset:v.offset + len(v) + 1]
    data = np.frombuffer(v.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    return not len(data) or int(data.max()) < 0x80


def _case(v: Value, ascii_fn: Callable[[Value], Value], utf8_fn: Callable[[Value], Value]
          ) -> Value:
    # Arrow's UTF-8 case mapping costs ~40x its ASCII one; most columns are ASCII
    if isinstance(v, pa.Array) and _is_ascii(v):
        return ascii_fn(v)
    return utf8_fn(v)


def _literal_arg(name: str, v: Value) -> Value:
    if not isinstance(v, pa.Scalar):
        raise ExprError(f"{name}: this argument must be a literal")
    return v


#: Functions by upper-case name: (min args, max args, implementation).
FUNCTIONS: dict[str, tuple[int, int, Callable[..., Value]]] = {
    # numbers
    "ABS": (1, 1, pc.abs), "CEIL": (1, 1, pc.ceil), "CEILING": (1, 1, pc.ceil),
    "FLOOR": (1, 1, pc.floor), "ROUND": (1, 2, _round), "MOD": (2, 2, _mod),
    "POWER": (2, 2, pc.power), "POW": (2, 2, pc.power), "SQRT": (1, 1, pc.sqrt),
    "LN": (1, 1, pc.ln), "LOG10": (1, 1, pc.log10), "SIGN": (1, 1, pc.sign),
    # strings
    "UPPER": (1, 1, lambda s: _case(s, pc.ascii_upper, pc.utf8_upper)),
    "LOWER": (1, 1, lambda s: _case(s, pc.ascii_lower, pc.utf8_lower)),
    "TRIM": (1, 1, pc.utf8_trim_whitespace), "LTRIM": (1, 1, pc.utf8_ltrim_whitespace),
    "RTRIM": (1, 1, pc.utf8_rtrim_whitespace), "CHAR_LENGTH": (1, 1, pc.utf8_length),
    "CHARACTER_LENGTH": (1, 1, pc.utf8_length), "LENGTH": (1, 1, pc.utf8_length),
    "CONCAT": (1, 99, _concat), "SUBSTR": (2, 3, _substr), "SUBSTRING": (2, 3, _substr),
    "REPLACE": (3, 3, lambda s, a, b: pc.replace_substring(
        s, _literal_arg("REPLACE", a).as_py(), _literal_arg("REPLACE", b).as_py())),
    "REGEXP_REPLACE": (3, 3, lambda s, a, b: pc.replace_substring_regex(
        s, _literal_arg("REGEXP_REPLACE", a).as_py(), _literal_arg("REGEXP_REPLACE", b).as_py())),
    # dates and times
    "YEAR": (1, 1, pc.year), "MONTH": (1, 1, pc.month), "DAY": (1, 1, pc.day),
    "DAYOFMONTH": (1, 1, pc.day), "HOUR": (1, 1, pc.hour), "MINUTE": (1, 1, pc.minute),
    "SECOND": (1, 1, pc.second), "DATE_FORMAT": (2, 2, _date_format),
    "TO_TIMESTAMP": (1, 2, _to_timestamp), "TO_DATE": (1, 2, _to_date),
    "FROM_UNIXTIME": (1, 1, _from_unixtime),
    # the time of evaluation (not of the change: that is __op_ts__); a replay after a restart
    # evaluates again, so these differ between a run and its replay
    "CURRENT_TIMESTAMP": (0, 0, lambda: pa.scalar(_dt.datetime.now(_dt.timezone.utc),
                                                  pa.timestamp("us", tz="UTC"))),
    "NOW": (0, 0, lambda: pa.scalar(_dt.datetime.now(_dt.timezone.utc),
                                    pa.timestamp("us", tz="UTC"))),
    "LOCALTIMESTAMP": (0, 0, lambda: pa.scalar(_dt.datetime.now(), pa.timestamp("us"))),
    "CURRENT_DATE": (0, 0, lambda: pa.scalar(_dt.date.today(), pa.date32())),
    # conditionals and JSON
    "NULLIF": (2, 2, lambda a, b: pc.if_else(_false_if_null(pc.equal(*_unify(a, b))),
                                             pa.scalar(None, a.type), a)),
    "JSON_VALUE": (2, 2, lambda j, p: json_value(j, _literal_arg("JSON_VALUE", p).as_py())),
}

#: sqlglot's own node names for functions it knows (the others arrive as Anonymous)
_NODE_NAMES = {"Upper": "UPPER", "Lower": "LOWER", "Trim": "TRIM", "Length": "LENGTH",
               "Concat": "CONCAT", "Substring": "SUBSTR", "Round": "ROUND", "Abs": "ABS",
               "Ceil": "CEIL", "Floor": "FLOOR", "Pow": "POWER", "Sqrt": "SQRT", "Ln": "LN",
               "Year": "YEAR", "Month": "MONTH", "Day": "DAY", "Hour": "HOUR",
               "Minute": "MINUTE", "Second": "SECOND", "DayOfMonth": "DAYOFMONTH",
               "Nullif": "NULLIF", "JSONExtractScalar": "JSON_VALUE", "Sign": "SIGN",
               "RegexpReplace": "REGEXP_REPLACE", "DateFormat": "DATE_FORMAT",
               "ToTimestamp": "TO_TIMESTAMP", "StrToTime": "TO_TIMESTAMP", "TsOrDsToDate": "TO_DATE",
               "ToDate": "TO_DATE", "StrToDate": "TO_DATE", "UnixToTime": "FROM_UNIXTIME",
               "Log10": "LOG10", "Mod": "MOD", "Replace": "REPLACE",
               "CurrentTimestamp": "CURRENT_TIMESTAMP", "Localtimestamp": "LOCALTIMESTAMP",
               "CurrentDate": "CURRENT_DATE"}

_BINARY: dict[type, Callable[[Value, Value], Value]] = {
    exp.Add: pc.add_checked, exp.Sub: pc.subtract_checked, exp.Mul: pc.multiply_checked,
    exp.Div: _div, exp.Mod: _mod,
    exp.EQ: pc.equal, exp.NEQ: pc.not_equal, exp.GT: pc.greater, exp.GTE: pc.greater_equal,
    exp.LT: pc.less, exp.LTE: pc.less_equal, exp.And: pc.and_kleene, exp.Or: pc.or_kleene,
    exp.DPipe: _concat,
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
                raise ExprError(f"{sql}: {_arrow_message(exc)}") from None
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
            return lambda env: op(*_unify(a(env), b(env)))
        if isinstance(node, exp.Is):
            f = self.compile(node.this)
            target = node.expression
            if isinstance(target, exp.Null):
                return lambda env: pc.is_null(f(env))
            if isinstance(target, exp.Boolean):
                want = bool(target.this)
                return lambda env: _false_if_null(pc.equal(f(env), want))
            raise ExprError(f"IS {target.sql()}: only IS [NOT] NULL / TRUE / FALSE")
        if isinstance(node, exp.In):
            f = self.compile(node.this)
            items = [self.compile(e) for e in node.expressions]
            return lambda env: _in(f(env), [g(env) for g in items])
        if isinstance(node, exp.Between):
            x, lo, hi = (self.compile(node.this), self.compile(node.args["low"]),
                         self.compile(node.args["high"]))
            return lambda env: pc.and_kleene(pc.greater_equal(*_unify(x(env), lo(env))),
                                             pc.less_equal(*_unify(x(env), hi(env))))
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
                tv, ev = _common([t(env), e(env)])
                return pc.if_else(_false_if_null(c(env)), tv, ev)
            return if_
        if isinstance(node, exp.Coalesce):
            parts = [self.compile(node.this)] + [self.compile(e) for e in node.expressions]
            return lambda env: pc.coalesce(*_common([p(env) for p in parts]))
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
                cs = [pc.equal(*_unify(s, c(env))) for c in conds]
            else:
                cs = [c(env) for c in conds]
            cs = [broadcast(_false_if_null(c), env.n) for c in cs]
            vals = _common([t(env) for t in thens] + [default(env)])
            if pa.types.is_null(vals[0].type):
                return pa.nulls(env.n)
            cond = pc.make_struct(*cs, field_names=[f"c{i}" for i in range(len(cs))])
            return pc.case_when(cond, *vals)
        return case

    def cast(self, node: exp.Cast) -> Fn:
        to = node.args["to"]
        text = to.sql(dialect=TransformSql).replace(" ", "")
        try:
            target = to_arrow(parse_type(_SQL_TYPES.get(text.upper(), text)))
        except ValueError:
            raise ExprError(f"{node.sql(dialect=TransformSql)}: unknown type {text}") from None
        f = self.compile(node.this)
        if isinstance(node, exp.TryCast):
            return lambda env: _try_cast(f(env), target)

        def cast(env: Env) -> Value:
            v = f(env)
            if pa.types.is_string(v.type) and _is_number(target):
                v = pc.utf8_trim_whitespace(v)  # ' 2' is 2, as in Flink SQL
            try:
                return v.cast(target) if isinstance(v, pa.Scalar) else pc.cast(v, target)
            except pa.ArrowInvalid as exc:
                raise ExprError(f"{node.sql(dialect=TransformSql)}: a value cannot be cast "
                                f"({_arrow_message(exc)}); TRY_CAST gives NULL instead") from None
        return cast

    def function(self, node: exp.Func) -> Fn:
        if isinstance(node, exp.Anonymous):
            name = str(node.this).upper()
        else:
            name = _NODE_NAMES.get(type(node).__name__, type(node).__name__.upper())
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


_SQL_TYPES = {"INTEGER": "INT", "TEXT": "STRING", "VARCHAR": "STRING", "CHAR": "STRING",
              "DATETIME": "TIMESTAMP(6)", "TIMESTAMP": "TIMESTAMP(6)", "DECIMAL": "DECIMAL(10,0)",
              "DOUBLEPRECISION": "DOUBLE", "BOOL": "BOOLEAN"}

_INT_RE = r"^\s*[+-]?\d{1,18}\s*$"
_NUM_RE = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _try_cast(v: Value, target: pa.DataType) -> Value:
    """``CAST`` that gives NULL for values it cannot convert (vectorised: values that would
    fail are found by pattern or range first, then the rest is cast in one call)."""
    if isinstance(v, pa.Scalar):
        try:
            return v.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return pa.scalar(None, target)
    try:
        return pc.cast(v, target)
    except pa.ArrowInvalid:
        pass
    if pa.types.is_string(v.type):
        if pa.types.is_integer(target) or pa.types.is_decimal(target) or pa.types.is_floating(target):
            ok = pc.match_substring_regex(v, _INT_RE if pa.types.is_integer(target) else _NUM_RE)
            v = pc.if_else(ok, pc.utf8_trim_whitespace(v), pa.scalar(None, pa.string()))
            if pa.types.is_integer(target):
                return _in_range_cast(pc.cast(v, pa.int64()), target)
            return pc.cast(pc.cast(v, pa.float64()), target) if pa.types.is_floating(target) \
                else _safe_each(v, target)
        if pa.types.is_date(target) or pa.types.is_timestamp(target):
            ts = pc.strptime(v, format="%Y-%m-%d %H:%M:%S", unit="us", error_is_null=True)
            d = pc.strptime(v, format="%Y-%m-%d", unit="us", error_is_null=True)
            return pc.cast(pc.coalesce(ts, d), target)
    if pa.types.is_integer(target) and (pa.types.is_integer(v.type) or pa.types.is_floating(v.type)):
        return _in_range_cast(v, target)
    return _safe_each(v, target)


def _in_range_cast(v: pa.Array, target: pa.DataType) -> pa.Array:
    info = {8: 2**7, 16: 2**15, 32: 2**31, 64: 2**63}[target.bit_width]
    lo, hi = (-info, info - 1) if pa.types.is_signed_integer(target) else (0, 2 * info - 1)
    if pa.types.is_floating(v.type):
        v = pc.trunc(v)
    ok = pc.and_(pc.greater_equal(v, lo), pc.less_equal(v, hi))
    return pc.cast(pc.if_else(ok, v, pa.scalar(None, v.type)), target)


def _safe_each(v: pa.Array, target: pa.DataType) -> pa.Array:
    """Last resort for a type pair without a pattern: cast halves until the failing values are
    isolated (log n casts per failing value, no per-row Python for the good ones)."""
    try:
        return pc.cast(v, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if len(v) <= 1:
            return pa.nulls(len(v), target)
    mid = len(v) // 2
    return pa.concat_arrays([_safe_each(v.slice(0, mid), target),
                             _safe_each(v.slice(mid), target)])


def _hint(name: str, known: set[str]) -> str:
    import difflib  # noqa: PLC0415 - only on the error path

    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
