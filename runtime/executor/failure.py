"""Where an unexpected exception happened, for the one line that reports it.

Connectors translate their clients' errors into :class:`~runtime.errors.HubError` (transient or
terminal); anything else that ends a job is a bug to report, and the report needs to say where
it happened: which subtask and operator (``sink-1 (sinks.jdbc writer)``), or the committer of
which checkpoint.  The executor records that on the exception itself (``hub_where``) so it
survives being handed from a subtask's thread to the control thread.
"""
from __future__ import annotations

from typing import Any


def operator_of(plugin: Any) -> str:
    """The connector package of a source, sink or one of their parts (``sinks.jdbc``)."""
    module = type(plugin).__module__
    return module.rsplit(".", 1)[0] if "." in module else module


def locate(exc: BaseException, where: str) -> BaseException:
    """Record ``where`` on ``exc`` unless a closer place was recorded already; returns it."""
    if getattr(exc, "hub_where", None) is None:
        try:
            exc.hub_where = where  # type: ignore[attr-defined]
        except AttributeError:  # an exception type with __slots__: report it without a place
            pass
    return exc


def where(exc: BaseException) -> str | None:
    """The place recorded by :func:`locate`, None when there is none."""
    return getattr(exc, "hub_where", None)


def describe(exc: BaseException) -> str:
    """``[in <where>: ]<qualified type>: <message>``: an unexpected exception in one line."""
    cls = type(exc)
    name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    place = where(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{'in ' + place + ': ' if place else ''}{name}{': ' + text if text else ''}"
