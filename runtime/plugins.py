"""Loading connectors and formats by name from entry points.

Groups: ``hub.sources``, ``hub.sinks``, ``hub.formats``; the entry-point name is the ``type``
(or ``format``) users write.  A plugin whose import fails because an optional dependency is
missing raises :class:`~runtime.errors.MissingExtraError` naming the extra to install.
"""
from __future__ import annotations

import difflib
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from runtime.errors import ConfigError, MissingExtraError

GROUPS = {"source": "hub.sources", "sink": "hub.sinks", "format": "hub.formats"}

#: Which extra installs the third-party module a plugin needs (module -> extra).
EXTRA_OF_MODULE = {
    "pymysqlreplication": "mysql", "pymysql": "mysql", "psycopg": "jdbc",
    "confluent_kafka": "kafka", "fastavro": "kafka", "elasticsearch": "elasticsearch",
    "happybase": "hbase", "thriftpy2": "hbase", "hdfs": "hdfs",
}


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
    try:
        return eps[name].load()
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top in EXTRA_OF_MODULE:
            raise MissingExtraError(top, EXTRA_OF_MODULE[top]) from None
        raise
