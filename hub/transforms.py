"""``[[transform]]`` and ``[[route]]`` blocks of a pipeline file: their options, and their
check (regexes, SQL expressions; against the source's table schemas where the source declares
them without connecting anywhere, as datagen does).

Flink CDC's names and meanings: ``source-table``, ``projection``, ``filter``, ``primary-keys``,
``partition-keys``, ``converter-after-transform``, ``description``; ``sink-table``,
``replace-symbol``.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from hub.errors import KeyPath
from hub.problems import validation_problems
from hub.sinkoptions import SinkSchemaChangeOptions
from runtime.config import ConnectorConfig
from runtime.schema import TableSchema
from runtime.transform.errors import ExprError
from runtime.transform.route import RouteRule
from runtime.transform.transform import TransformRule


def _regex(v: str) -> str:
    try:
        re.compile(v)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None
    return v


def _names(v: str | list[str] | None) -> list[str] | None:
    if v is None:
        return None
    parts = [p.strip() for p in v.split(",")] if isinstance(v, str) else [p.strip() for p in v]
    if not all(parts):
        raise ValueError("an empty column name")
    return parts


class TransformOptions(ConnectorConfig):
    """``[[transform]]``"""

    source_table: str = Field(description=(
        "Regular expression matched against the whole table id (db.table): which tables this "
        "block transforms.  The first block that matches a table applies to it."))
    projection: str | None = Field(None, description=(
        "The columns of the result, as in SELECT: column names, * (all columns), SQL "
        "expressions with an alias (amount * 2 AS doubled), metadata columns "
        "(__database_name__, __table_name__, __data_event_type__, __op_ts__, "
        "__source_position__).  Default: the columns as they are."))
    filter: str | None = Field(None, description=(
        "SQL condition, as in WHERE: the rows for which it is TRUE pass (NULL does not).  May "
        "name the projection's computed columns."))
    primary_keys: str | list[str] | None = Field(None, description=(
        "The result's primary key: column names, comma-separated (default: the table's)."))
    partition_keys: str | list[str] | None = Field(None, description=(
        "The result's partition keys: column names, comma-separated.  Sinks that partition "
        "tables (delta, iceberg) partition a table they create by them when their own "
        "partition-by is not set; other sinks ignore them (said once at start)."))
    converter_after_transform: Literal["SOFT_DELETE"] | None = Field(None, description=(
        "SOFT_DELETE: deletes become updates of the row, to be marked by the projection "
        "(e.g. __data_event_type__ = '-D' AS is_deleted)."))
    description: str | None = Field(None, description="Free text.")

    _check_regex = field_validator("source_table")(classmethod(lambda cls, v: _regex(v)))

    @field_validator("primary_keys")
    @classmethod
    def _check_keys(cls, v: str | list[str] | None) -> list[str] | None:
        return _names(v)

    @field_validator("partition_keys")
    @classmethod
    def _check_partition_keys(cls, v: str | list[str] | None) -> list[str] | None:
        return _names(v)

    def rule(self) -> TransformRule:
        return TransformRule(self.source_table, self.projection, self.filter,
                             tuple(self.primary_keys) if self.primary_keys else None,  # type: ignore[arg-type]
                             self.converter_after_transform, self.description,
                             tuple(self.partition_keys) if self.partition_keys else None)


class RouteOptions(ConnectorConfig):
    """``[[route]]``"""

    source_table: str = Field(description=(
        "Regular expression matched against the whole table id (db.table); groups can be "
        "used in sink-table as $1, $2 ...  The first block that matches a table applies."))
    sink_table: str = Field(description=(
        "The table id written to.  Many tables routed to one are merged (union of columns, "
        "widened types)."))
    replace_symbol: str | None = Field(None, description=(
        "A text in sink-table that stands for the source table's name (e.g. <>)."))
    description: str | None = Field(None, description="Free text.")

    _check_regex = field_validator("source_table")(classmethod(lambda cls, v: _regex(v)))

    def rule(self) -> RouteRule:
        return RouteRule(self.source_table, self.sink_table, self.replace_symbol,
                         self.description)


#: the models of the blocks, by table name (also for the generated docs; ``sink``: the
#: options every [sink] has)
BLOCKS: dict[str, type[ConnectorConfig]] = {"transform": TransformOptions, "route": RouteOptions,
                                            "sink": SinkSchemaChangeOptions}

Add = Callable[[KeyPath, str], None]


def check_blocks(doc: dict[str, Any], add: Add,
                 schemas: Callable[[], list[TableSchema] | None]
                 ) -> tuple[list[TransformRule], list[RouteRule]]:
    """The rules of ``[[transform]]`` and ``[[route]]`` in ``doc``; problems go to ``add``
    with their key path.  ``schemas`` gives the source's tables when they are known without
    connecting (called only when there are transforms)."""
    transforms = [o.rule() for o in _blocks(doc, "transform", TransformOptions, add)]
    routes = [o.rule() for o in _blocks(doc, "route", RouteOptions, add)]
    for i, rule in enumerate(routes):
        try:
            rule.check()
        except ValueError as exc:
            add(("route", i, "sink-table"), str(exc))
    known = schemas() if transforms else None
    for i, rule in enumerate(transforms):
        _check_transform(i, rule, known, add)
    return transforms, routes


def _blocks(doc: dict[str, Any], name: str, model: type[ConnectorConfig], add: Add) -> list[Any]:
    raw = doc.get(name, [])
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(b, dict) for b in raw):
        add((name,), f"must be blocks: write [[{name}]] and put the keys below it")
        return []
    out = []
    for i, block in enumerate(raw):
        try:
            out.append(model.model_validate(block))
        except ValidationError as exc:
            for path, message in validation_problems(exc, model):
                add((name, i, *path), message)
    return out


def _check_transform(i: int, rule: TransformRule, known: list[TableSchema] | None,
                     add: Add) -> None:
    key: KeyPath = ("transform", i)
    for part, parse in (("projection", lambda: rule.items), ("filter", lambda: rule.filter_node)):
        try:
            parse()
        except ExprError as exc:
            add((*key, part), str(exc))
            return
    tables = [s for s in known or [] if rule.matches(s.table)]
    try:
        if not tables:
            rule.check()
        for schema in tables:
            rule.check(schema)
    except ExprError as exc:
        on = f"table {tables[0].table}: " if tables else ""
        add((*key, exc.part or "projection"), on + str(exc))
