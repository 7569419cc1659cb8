"""Resolving ``format = "..."`` plus its ``format-options`` into a ready format object: a file
format (:mod:`formats.file`) or a message format (:mod:`formats.message`).

Problems with a format's options are never turned into messages here: they stay pydantic
errors, located under the options key (``format-options.delimiter``), so that a connector
config validating them reports them together with its own problems, every one of them, and
the hub renders them once (:mod:`hub.problems`).  A connector config checks its formats in
two steps:

* field validators (:func:`check_format`, :func:`check_format_options`) while its fields are
  validated, so that bad format options are reported even when other options are bad too;
* a model validator resolving the format (:func:`resolve_files_format`,
  :func:`resolve_message_format`) with what the connector adds to the options (a declared
  table, a schema-registry URL), once every field is valid.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import ValidationError, ValidationInfo, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from formats.file.base import FileFormat
from formats.message.base import MessageFormat
from runtime import plugins
from runtime.config import ConnectorConfig
from runtime.errors import ConfigError, HubError

#: Which formats a connector takes: ``file`` formats only, ``message`` formats only, or
#: ``files``: either (the files connectors, where a message format means files of messages).
Family = Literal["file", "files", "message"]


def resolve_format(name: str, options: dict[str, Any] | None = None) -> FileFormat:
    """The file format registered as ``name`` configured with ``options``.

    Raises :class:`ConfigError` naming ``format`` for an unknown format and pydantic's
    ``ValidationError`` for bad options (every problem, located under ``format-options``).
    """
    cls = format_class(name, "file")
    return cls(validate_options(cls.config_class, options, ("format-options",)))


def resolve_files_format(name: str, options: dict[str, Any] | None = None,
                         message_defaults: dict[str, Any] | None = None
                         ) -> FileFormat | MessageFormat:
    """What the files connectors write and read: a file format (parquet, jsonl, csv), or a
    message format (debezium-json, avro, ...) configured for files with its
    ``file_config_class`` (e.g. avro there needs no schema registry).  ``message_defaults``:
    options a message format takes where ``options`` sets none (None values are left out).
    Errors as :func:`resolve_format`."""
    cls = format_class(name, "files")
    if issubclass(cls, FileFormat):
        return cls(validate_options(cls.config_class, options, ("format-options",)))
    merged = dict(options or {})
    for key, value in (message_defaults or {}).items():
        if value is not None and key not in merged and key.replace("-", "_") not in merged:
            merged[key] = value
    return cls(validate_options(options_class(cls, "files"), merged, ("format-options",)))


def resolve_message_format(name: str, options: dict[str, Any] | None = None,
                           key: str = "format") -> MessageFormat:
    """The message format registered as ``name`` configured with ``options``.  Raises
    :class:`ConfigError` naming ``key`` for an unknown format and pydantic's
    ``ValidationError`` for bad options (located under ``<key>-options``)."""
    cls = format_class(name, "message", key)
    return cls(validate_options(cls.config_class, options, (f"{key}-options",)))


def format_class(name: str, family: Family, key: str = "format"
                 ) -> type[FileFormat] | type[MessageFormat]:
    """The class of the format registered as ``name``, checked to be of ``family``.  Raises
    :class:`ConfigError` naming ``key``, or :class:`~runtime.errors.MissingExtraError`."""
    cls = plugins.load("format", name, key=key)
    file = isinstance(cls, type) and issubclass(cls, FileFormat)
    message = isinstance(cls, type) and issubclass(cls, MessageFormat)
    if (file and family != "message") or (message and family != "file"):
        return cls
    if family == "file":
        raise ConfigError(f"{name!r} is not a file format", key=key)
    what = "a file format, not" if file else "neither a file format nor"
    raise ConfigError(f"{name!r} is {what} a message format (message formats: "
                      f"{', '.join(message_format_names())})", key=key)


def options_class(cls: type[FileFormat] | type[MessageFormat], family: Family
                  ) -> type[ConnectorConfig]:
    """The options model of format ``cls`` in a connector of ``family``: a message format in
    the files connectors has its own (``file_config_class``: avro there has no registry)."""
    if family == "files" and issubclass(cls, MessageFormat) and cls.file_config_class:
        return cls.file_config_class
    return cls.config_class


def validate_options(config_class: type[ConnectorConfig], options: dict[str, Any] | None,
                     key: tuple[str, ...] = ()) -> Any:
    """``options`` validated by ``config_class``.  Raises pydantic's ``ValidationError`` with
    every problem located under ``key`` (relative to the connector's table); an unknown
    option's error carries the options there are (``ctx["known"]``) for a did-you-mean."""
    try:
        return config_class.model_validate(options or {})
    except ValidationError as exc:
        raise _relocated(exc, config_class, key) from None


# -- field validators of connector configs ----------------------------------------------------
def check_format(name: str, family: Family) -> str:
    """For a connector config's field validator of ``format`` (and ``key-format``): ``name``
    when it names an installed format of ``family``, else ValueError (one line)."""
    try:
        format_class(name, family)
    except ConfigError as exc:
        raise ValueError(exc.message) from None
    except HubError as exc:  # a missing extra: its one line says which
        raise ValueError(str(exc)) from None
    return name


def check_format_options(name: str | None, options: dict[str, Any], family: Family
                         ) -> dict[str, Any]:
    """For a connector config's field validator of ``format-options``: ``options`` when the
    format ``name`` (None: ``format`` itself is bad, nothing to check against) takes them,
    else pydantic's ``ValidationError`` with every problem, which pydantic reports under the
    field's key.  Options missing here are left to :func:`resolve_files_format` /
    :func:`resolve_message_format`: the connector may add them (its schema-registry URL,
    its declared table)."""
    if name is None:
        return options
    try:
        cls = format_class(name, family)
    except HubError:  # reported by check_format on the name's own field
        return options
    config_class = options_class(cls, family)
    try:
        config_class.model_validate(options)
    except ValidationError as exc:
        problems = [e for e in exc.errors() if e["type"] != "missing"]
        if problems:
            raise _relocated(exc, config_class, (), problems) from None
    return options


def with_format_checks(family: Family) -> type[ConnectorConfig]:
    """A base for connector configs with ``format`` and ``format-options`` fields of
    ``family``: both are checked as ordinary fields (:func:`check_format`,
    :func:`check_format_options`), so a bad format option is reported together with the
    connector's other bad options, not only once every other field is valid."""

    class FormatChecks(ConnectorConfig):
        @field_validator("format", check_fields=False)
        @classmethod
        def _check_format(cls, v: str) -> str:
            return check_format(v, family)

        @field_validator("format_options", check_fields=False)
        @classmethod
        def _check_format_options(cls, v: dict[str, Any], info: ValidationInfo
                                  ) -> dict[str, Any]:
            return check_format_options(info.data.get("format"), v, family)

    return FormatChecks


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


def _relocated(exc: ValidationError, config_class: type[ConnectorConfig], key: tuple[str, ...],
               errors: list[Any] | None = None) -> ValidationError:
    """``exc``'s errors (or ``errors``, some of them) located under ``key``; unknown keys
    carry the options ``config_class`` has."""
    known = sorted(f.alias or n for n, f in config_class.model_fields.items())
    details: list[InitErrorDetails] = []
    for err in exc.errors() if errors is None else errors:
        kind: Any = err["type"]
        ctx = err.get("ctx", {})
        if kind == "extra_forbidden":
            kind = PydanticCustomError("extra_forbidden", "unknown option", {"known": known})
            ctx = {}
        details.append(InitErrorDetails(type=kind, loc=(*key, *err["loc"]),
                                        input=err["input"], ctx=ctx))
    return ValidationError.from_exception_data(exc.title, details)
