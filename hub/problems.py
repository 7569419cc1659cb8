"""Turning pydantic's ``ValidationError`` into problems a pipeline author can act on.

Pydantic reports a ``loc`` tuple, a message meant for developers ("Value error, ...", "Extra
inputs are not permitted") and, for unions, one error per member with the member's tag inside
``loc``.  Here each error becomes ``(key path, message)``: the path in the kebab-case keys of
the file, the message without pydantic's prefixes, and unknown keys with a did-you-mean.
Input values are never echoed: they may be secrets.

This is the one place pydantic errors become messages: connectors and formats leave their
validation errors to pydantic (a format's options arrive nested under ``format-options``,
:mod:`formats.registry`), so every problem of a file is reported, each once.
"""
from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from hub.errors import KeyPath

_PREFIXES = ("Value error, ", "Assertion failed, ")


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``, else ``" (known: a, b)"``."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f" (known: {', '.join(sorted(choices))})" if choices else ""


def validation_problems(exc: ValidationError, model: type[BaseModel]) -> list[tuple[KeyPath, str]]:
    """The errors of ``exc`` (raised validating ``model``) as ``(path, message)`` pairs, the
    path relative to the model's table.  Errors of several union members on one key are
    merged into one problem."""
    merged: dict[KeyPath, list[str]] = {}
    for err in exc.errors(include_url=False):
        path, known = _clean_loc(model, tuple(err["loc"]))
        if err["type"] == "extra_forbidden":
            # the keys a nested table takes when its model is not in ``model``'s annotations
            # (a format's options: formats.registry puts them in the error's context)
            known = (err.get("ctx") or {}).get("known", known)
            msg = "unknown key" + did_you_mean(str(path[-1]), known or [])
        elif err["type"] == "missing":
            msg = "required, but not set"
        else:
            msg = err["msg"]
            for prefix in _PREFIXES:
                msg = msg.removeprefix(prefix)
        messages = merged.setdefault(path, [])
        if msg not in messages:
            messages.append(msg)
    return [(path, "; or ".join(msgs)) for path, msgs in merged.items()]


def _clean_loc(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[KeyPath, list[str] | None]:
    """``loc`` without union-member tags, and the keys the table holding its last element
    accepts (None when unknown)."""
    path: list[str | int] = []
    ann: Any = model
    known: list[str] | None = None
    parts = list(loc)
    while parts:
        ann = _unwrap(ann)
        if _is_union(ann):
            # Pydantic names the union member in loc ("int", "list[str]"): not a key.
            parts.pop(0)
            ann = None
            continue
        known = _keys_of(ann)
        part = parts.pop(0)
        path.append(part)
        ann = _step(ann, part)
    return tuple(path), known


def _unwrap(ann: Any) -> Any:
    """Strip ``Annotated`` and ``Optional`` (a union with None is not a tagged union)."""
    while True:
        if typing.get_origin(ann) is typing.Annotated:
            ann = typing.get_args(ann)[0]
        elif len(_members(ann)) == 1:
            ann = _members(ann)[0]
        else:
            return ann


def _members(ann: Any) -> list[Any]:
    """The non-None members of a union, [] for anything else."""
    if typing.get_origin(ann) not in (Union, types.UnionType):
        return []
    return [a for a in typing.get_args(ann) if a is not type(None)]


def _is_union(ann: Any) -> bool:
    return len(_members(ann)) > 1


def _keys_of(ann: Any) -> list[str] | None:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [f.alias or name for name, f in ann.model_fields.items()]
    return None


def _step(ann: Any, part: Any) -> Any:
    """The annotation of ``ann[part]``, or None when it can't be told."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        for name, field in ann.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if not isinstance(origin, type) or not args:
        return None
    if isinstance(part, int) and issubclass(origin, Sequence):
        return args[0]
    if issubclass(origin, Mapping) and len(args) == 2:
        return args[1]
    return None
