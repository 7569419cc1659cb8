"""Resolving ``format = "..."`` plus its ``format-options`` into a ready format object."""
from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from formats.base import FileFormat
from runtime import plugins
from runtime.errors import ConfigError


def resolve_format(name: str, options: dict[str, Any] | None = None) -> FileFormat:
    """The format registered as ``name`` configured with ``options``.

    Raises :class:`ConfigError` with a key path relative to the connector's table
    (``format`` or ``format-options.<key>``); the config loader prefixes the section.
    """
    cls = plugins.load("format", name, key="format")
    if not (isinstance(cls, type) and issubclass(cls, FileFormat)):
        raise ConfigError(f"{name!r} is not a file format", key="format")
    try:
        config = cls.config_class.model_validate(options or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        key = "format-options" + (f".{loc}" if loc else "")
        raise ConfigError(err["msg"].removeprefix("Value error, "), key=key) from None
    return cls(config)
