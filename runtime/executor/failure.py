"""Errors at the executor boundary: where they happened, and how they cross it as plain data.

Connectors translate their clients' errors into :class:`~runtime.errors.HubError` (transient or
terminal); anything else that ends a job is a bug to report, and the report needs to say where
it happened: which subtask and operator (``sink-1 (sinks.jdbc writer)``), or the committer of
which checkpoint.  The executor records that on the exception itself (``hub_where``).

A subtask's error never crosses to the control side as a live exception (a distributed
executor can't move one between processes faithfully): it crosses as an :class:`ErrorRecord`
(type name, message, transient flag, where, traceback text), and :meth:`ErrorRecord.rebuild`
turns it back into an exception of the same class on the control side, so the restart
strategy still tells transient from terminal and the command line still names the type.
"""
from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass, field
from typing import Any

from runtime import errors as hub_errors
from runtime.errors import HubError, TerminalError, TransientError


def operator_of(plugin: Any) -> str:
    """The connector package of a source, sink or one of their parts (``sinks.jdbc``)."""
    name = getattr(plugin, "operator_name", None)  # a wrapper names what it wraps
    if isinstance(name, str):
        return name
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


def type_name(cls: type) -> str:
    """``ValueError`` for builtins, ``package.module.Class`` otherwise."""
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def describe(exc: BaseException) -> str:
    """``[in <where>: ]<qualified type>: <message>``: an unexpected exception in one line."""
    name = getattr(exc, "hub_type", None) or type_name(type(exc))
    place = where(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{'in ' + place + ': ' if place else ''}{name}{': ' + text if text else ''}"


class ForeignError(Exception):
    """An error from the other side of the executor boundary whose class is not loaded here
    (not a :class:`HubError`: a bug).  :func:`describe` names the original type."""


class RemoteTraceback(Exception):
    """The traceback of an error where it was raised (a subtask), as text: set as the
    rebuilt error's ``__cause__`` so that ``HUB_DEBUG=1`` shows where the bug is (the shape of
    ``concurrent.futures.process``)."""

    def __str__(self) -> str:
        return f"\n\"\"\"\n{self.args[0] if self.args else ''}\"\"\""


_PLAIN = (str, int, float, bool, type(None))


def _plain(value: Any) -> bool:
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return False


def _hub_base(cls: type) -> str:
    """The nearest class of :mod:`runtime.errors` among ``cls``'s bases ('' if none)."""
    for base in cls.__mro__:
        if base.__module__ == hub_errors.__name__ and issubclass(base, HubError):
            return base.__name__
    return ""


def _resolve(name: str) -> type | None:
    """The exception class called ``name`` if its module is loaded here (nothing is imported
    because a message said so), else None."""
    if "<locals>" in name:
        return None
    # the module is the longest loaded prefix: nested classes have dots in their qualname
    parts = name.split(".") if "." in name else ["builtins", name]
    for cut in range(len(parts) - 1, 0, -1):
        mod = sys.modules.get(".".join(parts[:cut]))
        if mod is None:
            continue
        obj: Any = mod
        for attr in parts[cut:]:
            obj = getattr(obj, attr, None)
            if obj is None:
                return None
        return obj if isinstance(obj, type) and issubclass(obj, BaseException) else None
    return None


@dataclass(frozen=True)
class ErrorRecord:
    """An exception as plain, picklable data: what crosses the executor boundary.

    ``type`` is the qualified class name (``ValueError``, ``sinks.jdbc.errors.X``),
    ``message`` its text (``str(exc)``), ``transient`` whether the runtime may retry it,
    ``hub_base`` the nearest class of :mod:`runtime.errors` (``TransientError``, ``BadRecordError`` ...;
    empty for a non-:class:`HubError`, i.e. a bug), ``args`` the exception's arguments when
    they are plain, ``attrs`` its plain instance attributes (``ConfigError.key``), and
    ``traceback`` the formatted traceback where it was raised."""

    type: str
    message: str
    transient: bool = False
    where: str | None = None
    hub_base: str = ""
    args: tuple = ()
    attrs: dict[str, Any] = field(default_factory=dict)
    traceback: str = ""

    @classmethod
    def of(cls, exc: BaseException, where: str | None = None) -> ErrorRecord:
        """The record of ``exc``; ``where`` unless a closer place was recorded on it."""
        attrs = {k: v for k, v in vars(exc).items()
                 if not k.startswith("__") and k not in ("hub_where", "hub_type") and _plain(v)} \
            if hasattr(exc, "__dict__") else {}
        return cls(
            type=getattr(exc, "hub_type", None) or type_name(type(exc)),
            message=str(exc),
            transient=bool(getattr(exc, "transient", False)) and isinstance(exc, HubError),
            where=getattr(exc, "hub_where", None) or where,
            hub_base=_hub_base(type(exc)),
            args=tuple(exc.args) if _plain(exc.args) else (str(exc),),
            attrs=attrs,
            traceback="".join(traceback.format_exception(exc)))

    def rebuild(self) -> BaseException:
        """An exception of the recorded class (same message, transient flag and place); when
        that class is not loaded here, the nearest :mod:`runtime.errors` class (a
        :class:`HubError`) or :class:`ForeignError` (a bug), named as the original in
        :func:`describe`."""
        cls = _resolve(self.type)
        exc = self._instance(cls) if cls is not None else None
        if exc is None:
            base = getattr(hub_errors, self.hub_base, None) if self.hub_base else None
            if base is None and self.hub_base:
                base = TransientError if self.transient else TerminalError
            exc = self._instance(base or ForeignError) or ForeignError(self.message)
            exc.hub_type = self.type  # type: ignore[attr-defined]
        if isinstance(exc, HubError) and exc.transient != self.transient:
            exc.transient = self.transient
        if self.where:
            locate(exc, self.where)
        if self.traceback:
            exc.__cause__ = RemoteTraceback(self.traceback)
        return exc

    def _instance(self, cls: type) -> BaseException | None:
        # Built without calling __init__ (its signature is the class's own business), as
        # pickle rebuilds an object: the arguments and plain attributes set as they were.
        args = self.args or ((self.message,) if self.message else ())
        try:
            exc = cls.__new__(cls, *args)
            exc.args = args
            for k, v in self.attrs.items():
                setattr(exc, k, v)
        except Exception:  # noqa: BLE001 - a class that can't be built so: the caller falls back
            return None
        return exc
