"""Merged schemas of target tables: the exact widening of two types, and the side columns
``lenient`` adds where no type holds both (see :class:`~runtime.transform.route.Router`)."""
from __future__ import annotations

from dataclasses import dataclass, field

from runtime.schema import TableSchema
from runtime.types import DataType

_INTS = ("TINYINT", "SMALLINT", "INT", "BIGINT")
_INT_DIGITS = {"TINYINT": 3, "SMALLINT": 5, "INT": 10, "BIGINT": 19}
_STRINGS = ("CHAR", "VARCHAR", "STRING")


def widen(a: DataType, b: DataType) -> DataType | None:
    """The narrowest type holding every value of ``a`` and of ``b`` exactly; None when there is
    none (DATE and INT, VARCHAR and INT, BIGINT and DOUBLE: no value is turned into text or
    rounded)."""
    if a == b:
        return a
    ka, kb = a.kind, b.kind
    if ka in _INTS and kb in _INTS:
        return a if _INTS.index(ka) >= _INTS.index(kb) else b
    if {ka, kb} <= set(_INTS) | {"DECIMAL"}:
        def ps(t: DataType) -> tuple[int, int]:
            return (t.precision or 10, t.scale or 0) if t.kind == "DECIMAL" else (
                _INT_DIGITS[t.kind], 0)
        (p1, s1), (p2, s2) = ps(a), ps(b)
        scale = max(s1, s2)
        prec = max(p1 - s1, p2 - s2) + scale
        return DataType("DECIMAL", precision=min(prec, 65), scale=scale) if prec <= 65 else None
    if {ka, kb} <= {"FLOAT", "DOUBLE"} | set(_INTS):
        if "BIGINT" in (ka, kb):
            return None  # a DOUBLE holds 53 bits: not every BIGINT
        return DataType("DOUBLE")
    if ka in _STRINGS and kb in _STRINGS:
        if ka == kb == "VARCHAR" and a.length is not None and b.length is not None:
            return DataType("VARCHAR", length=max(a.length, b.length))
        return DataType("STRING")
    if {ka, kb} <= {"BINARY", "VARBINARY", "BYTES"}:
        return DataType("BYTES")
    if ka == kb and ka in ("TIME", "TIMESTAMP", "TIMESTAMP_LTZ"):
        return DataType(ka, precision=max(a.precision or 0, b.precision or 0))
    return None


@dataclass
class Target:
    """What the route operator keeps of one target table: its schema, the source tables merged
    into it, and lenient's side columns."""

    schema: TableSchema
    sources: set[str] = field(default_factory=set)
    #: lenient's side columns: source table -> {its column -> the target column its values
    #: go to since a type change no type holds with the old one}
    redirects: dict[str, dict[str, str]] = field(default_factory=dict)
    #: side columns no source column goes to any more (they hold the values of before)
    former: set[str] = field(default_factory=set)

    @property
    def side_columns(self) -> set[str]:
        """Every side column of this target, former ones included."""
        return {n for m in self.redirects.values() for n in m.values()} | self.former

    def redirect(self, src: str, column: str, to: str) -> None:
        """``src``'s ``column`` goes to ``to`` from now on."""
        before = self.redirects.setdefault(src, {}).get(column)
        if before is not None and before != to:
            self.former.add(before)
        self.redirects[src][column] = to


def side_column_name(column: str, new_type: DataType, taken: set[str]) -> str:
    """The column lenient adds for ``column``'s values after a type change to ``new_type`` no
    type holds together with the old one: ``<column>_<type kind in lower case>``
    (``status_int``, ``price_decimal``), with ``_2``, ``_3`` .. when that name is ``taken``."""
    base = f"{column}_{new_type.kind.lower()}"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    return name
