"""Typed connector options: the base every connector's ``config.py`` model derives from.

Options are kebab-case in TOML (``rows-per-second``) and snake_case in Python
(``rows_per_second``).  Unknown keys are errors.  ``Duration`` and ``Size`` accept the human
units of pipeline files (``"500ms"``, ``"128MB"``) and hold seconds and bytes.
"""
from __future__ import annotations

import re
import types
import typing
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationInfo, field_validator


def _kebab(name: str) -> str:
    return name.replace("_", "-")


def _duration(v: Any) -> float:
    from runtime.units import parse_duration

    return parse_duration(v)


def _size(v: Any) -> int:
    from runtime.units import parse_size

    return parse_size(v)


#: Seconds, written as ``"500ms"``, ``"10s"``, ``"5min"`` (a bare number is seconds).
Duration = Annotated[float, BeforeValidator(_duration)]
#: Bytes, written as ``"64KB"``, ``"128MB"`` (a bare integer is bytes).
Size = Annotated[int, BeforeValidator(_size)]


class ConnectorConfig(BaseModel):
    """Base of connector option models.  Give every field a ``description`` (``hub plugins``
    prints it) and a default unless the option is required.  ``type`` is stripped before
    validation: it chose the connector."""

    model_config = ConfigDict(alias_generator=_kebab, populate_by_name=True, extra="forbid",
                              frozen=True)

    #: One line for ``hub plugins``.
    summary: ClassVar[str] = ""

    @field_validator("*", mode="before")
    @classmethod
    def _no_type_slips(cls, value: Any, info: ValidationInfo) -> Any:
        """Pydantic's lax mode takes ``true`` for 1 and ``1`` for true: in a pipeline file
        that is a slip (``update-ratio = true``), so a boolean where only numbers go, or a
        number where only booleans go, is an error.  Numbers written as text stay accepted:
        ``${VAR}`` references always give text (``retain = "${KEEP:-4}"``)."""
        if info.field_name is None:
            return value
        field = cls.model_fields[info.field_name]
        if any(isinstance(m, BeforeValidator) for m in field.metadata):
            return value  # Duration, Size: their parser says what it expects
        problem = _slip(field.annotation, value)
        if problem:
            raise ValueError(problem)
        return value


def _slip(ann: Any, value: Any) -> str | None:
    """What is wrong with ``value`` for annotation ``ann`` when it is a boolean/number slip,
    looking into the items of lists and the values of tables; None when it is no slip."""
    kinds = _scalar_kinds(ann)
    if isinstance(value, bool):
        if bool not in kinds and kinds & {int, float}:
            return f"expected a number, got {str(value).lower()} (a boolean)"
    elif isinstance(value, (int, float)):
        if kinds and kinds <= {bool}:
            return f"expected true or false, got {value} (a number)"
    elif isinstance(value, (list, dict)):
        origin, args = typing.get_origin(ann), typing.get_args(ann)
        if origin is Annotated:
            return _slip(args[0], value)
        if isinstance(value, list) and origin in (list, tuple, set, frozenset) and args:
            for i, item in enumerate(value):
                problem = _slip(args[0], item)
                if problem:
                    return f"item {i + 1}: {problem}"
        if isinstance(value, dict) and origin is dict and len(args) == 2:
            for key, item in value.items():
                problem = _slip(args[1], item)
                if problem:
                    return f"{key}: {problem}"
    return None


@lru_cache(maxsize=None)
def _scalar_kinds(ann: Any) -> frozenset[Any]:
    """The scalar types a field annotation admits (``int | None`` -> {int}); a type that is
    not a plain scalar (str, a model, a list, ``Any``) adds ``object``, which disables the
    check for that field."""
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is Annotated:
        if any(isinstance(m, BeforeValidator) for m in args[1:]):
            return frozenset({object})  # Duration, Size: their parser says what it expects
        return _scalar_kinds(args[0])
    if origin in (Union, types.UnionType):
        return frozenset().union(*(_scalar_kinds(a) for a in args if a is not type(None)))
    if origin is Literal:
        return frozenset(type(a) for a in args)
    if ann in (int, float, bool):
        return frozenset({ann})
    return frozenset({object})


_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def check_template(value: str, allowed: tuple[str, ...], what: str) -> None:
    """A name template (``"{db}_{table}"``) may only hold the ``allowed`` placeholders.
    Raises ValueError naming ``what`` (the option) and the first unknown placeholder."""
    unknown = [p for p in _PLACEHOLDER.findall(value) if p not in allowed]
    if unknown:
        names = [f"{{{a}}}" for a in allowed]
        use = names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"
        raise ValueError(f"unknown placeholder {{{unknown[0]}}} in {what} {value!r}; use {use}")


def check_declared_columns(columns: dict[str, str], primary_key: list[str]) -> None:
    """Validate a user-declared schema (column name -> logical type text) and its key.
    Raises ValueError naming the offending key, for a model validator to report."""
    from runtime.types import parse_type

    if not columns:
        raise ValueError("columns: give at least one column")
    for name, text in columns.items():
        try:
            parse_type(text)
        except ValueError as exc:
            raise ValueError(f"columns.{name}: {exc}") from None
    for k in primary_key:
        if k not in columns:
            raise ValueError(f"primary-key: {k!r} is not among the columns")
