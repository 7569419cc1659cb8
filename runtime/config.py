"""Typed connector options: the base every connector's ``config.py`` model derives from.

Options are kebab-case in TOML (``rows-per-second``) and snake_case in Python
(``rows_per_second``).  Unknown keys are errors.  ``Duration`` and ``Size`` accept the human
units of pipeline files (``"500ms"``, ``"128MB"``) and hold seconds and bytes.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict


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
