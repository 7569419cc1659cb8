"""Loading connectors and formats by name from entry points.

Groups: ``hub.sources``, ``hub.sinks``, ``hub.formats``; the entry-point name is the ``type``
(or ``format``) users write.  A plugin whose import fails because an optional dependency is
missing raises :class:`~runtime.errors.MissingExtraError` naming the extra to install: found
when the plugin is loaded (so ``hub validate`` reports it), also for clients the plugin only
imports when it connects (:data:`runtime.extras.NEEDS`).
"""
from __future__ import annotations

import difflib
import importlib
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from runtime.errors import ConfigError, MissingExtraError
from runtime.extras import EXTRA_OF_MODULE, NEEDS

GROUPS = {"source": "hub.sources", "sink": "hub.sinks", "format": "hub.formats"}



@lru_cache(maxsize=None)
def available(kind: str) -> dict[str, EntryPoint]:
    """Entry points of one kind (``source``, ``sink``, ``format``) by name."""
    return {ep.name: ep for ep in entry_points(group=GROUPS[kind])}


def load(kind: str, name: str, key: str | None = None) -> Any:
    """The plugin class registered as ``name``.  ``key`` is the config key path for errors."""
    eps = available(kind)
    if name not in eps:
        close = difflib.get_close_matches(name, list(eps), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        known = ", ".join(sorted(eps)) or "none installed"
        raise ConfigError(f"unknown {kind} type {name!r}{hint} (known: {known})", key=key)
    needs = NEEDS.get((kind, name))
    try:
        cls = eps[name].load()
        for module in needs.modules if needs else ():
            # Clients imported only when connecting: import them now, so a missing one is
            # reported before the pipeline starts.
            importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        extra = needs.extra if needs and top in needs.modules else EXTRA_OF_MODULE.get(top)
        if extra:
            raise MissingExtraError(top, extra) from None
        raise
    return cls
