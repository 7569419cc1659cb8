"""Resolving ``format = "..."`` plus its ``format-options`` into a ready format object: a file
format (:mod:`formats.file`) or a message format (:mod:`formats.message`)."""
from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from formats.file.base import FileFormat
from formats.message.base import MessageFormat
from runtime import plugins
from runtime.config import ConnectorConfig
from runtime.errors import ConfigError


def resolve_format(name: str, options: dict[str, Any] | None = None) -> FileFormat:
    """The file format registered as ``name`` configured with ``options``.

    Raises :class:`ConfigError` with a key path relative to the connector's table
    (``format`` or ``format-options.<key>``); the config loader prefixes the section.
    """
    cls = plugins.load("format", name, key="format")
    if not (isinstance(cls, type) and issubclass(cls, FileFormat)):
        raise ConfigError(f"{name!r} is not a file format", key="format")
    return cls(_validated(cls.config_class, options))


def resolve_files_format(name: str, options: dict[str, Any] | None = None,
                         message_defaults: dict[str, Any] | None = None
                         ) -> FileFormat | MessageFormat:
    """What the files connectors write and read: a file format (parquet, jsonl, csv), or a
    message format (debezium-json, avro, ...) configured for files with its
    ``file_config_class`` (e.g. avro there needs no schema registry).  ``message_defaults``:
    options a message format takes where ``options`` sets none (None values are left out).
    Errors as :func:`resolve_format`."""
    cls = plugins.load("format", name, key="format")
    if isinstance(cls, type) and issubclass(cls, FileFormat):
        return cls(_validated(cls.config_class, options))
    if isinstance(cls, type) and issubclass(cls, MessageFormat):
        merged = dict(options or {})
        for key, value in (message_defaults or {}).items():
            if value is not None and key not in merged and key.replace("-", "_") not in merged:
                merged[key] = value
        return cls(_validated(cls.file_config_class or cls.config_class, merged))
    raise ConfigError(f"{name!r} is neither a file format nor a message format (message "
                      f"formats: {', '.join(message_format_names())})", key="format")


def resolve_message_format(name: str, options: dict[str, Any] | None = None,
                           key: str = "format") -> MessageFormat:
    """The message format registered as ``name`` configured with ``options``.  Raises
    :class:`ConfigError` naming ``key`` (or ``<key>-options.<option>``)."""
    cls = plugins.load("format", name, key=key)
    if not (isinstance(cls, type) and issubclass(cls, MessageFormat)):
        raise ConfigError(f"{name!r} is a file format, not a message format (message formats: "
                          f"{', '.join(message_format_names())})", key=key)
    try:
        config = cls.config_class.model_validate(options or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ConfigError(err["msg"].removeprefix("Value error, "),
                          key=f"{key}-options" + (f".{loc}" if loc else "")) from None
    return cls(config)


def message_format_names() -> list[str]:
    """Names of the installed message formats (those that load)."""
    out = []
    for name in sorted(plugins.available("format")):
        try:
            cls = plugins.load("format", name)
        except Exception:  # noqa: BLE001 - a broken plugin is simply not listed here
            continue
        if isinstance(cls, type) and issubclass(cls, MessageFormat):
            out.append(name)
    return out


def _validated(config_class: type[ConnectorConfig], options: dict[str, Any] | None
               ) -> ConnectorConfig:
    try:
        return config_class.model_validate(options or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        key = "format-options" + (f".{loc}" if loc else "")
        raise ConfigError(err["msg"].removeprefix("Value error, "), key=key) from None
