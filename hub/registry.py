"""What is installed: the source, sink and format plugins and the options each one takes.

Read from the entry points (``runtime.plugins``) and the plugins' pydantic option models.  A
plugin that can't be imported is listed with its error instead of breaking the listing: one
broken connector must not hide the others.
"""
from __future__ import annotations

import difflib
import json
import logging
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from pydantic import BaseModel, SecretBytes, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from runtime import plugins
from runtime.config import Duration, Size
from runtime.errors import ConfigError, HubError, MissingExtraError

log = logging.getLogger(__name__)

KINDS = ("source", "sink", "format")

# Duration and Size are Annotated[...] types: their validators mark them in field metadata.
_MARKS = [(Duration.__metadata__, "duration"), (Size.__metadata__, "size")]  # type: ignore[attr-defined]
_SCALARS = {str: "str", int: "int", float: "float", bool: "bool", SecretStr: "secret",
            SecretBytes: "secret", bytes: "bytes", type(None): "none"}


@dataclass(frozen=True)
class OptionInfo:
    """One option of a plugin, as a user writes it in TOML."""

    name: str
    #: Readable type: ``int``, ``duration``, ``list[str]``, ``parquet|jsonl|csv``.
    type: str
    #: The default as TOML would spell it, or ``"required"``.
    default: str
    required: bool
    description: str


@dataclass(frozen=True)
class PluginInfo:
    """One installed plugin.  ``error`` is set (and ``options`` empty) when it can't load."""

    kind: str
    name: str
    summary: str = ""
    options: list[OptionInfo] = field(default_factory=list)
    error: str | None = None
    #: Set with ``error`` when the plugin's optional dependency (its extra) is not installed.
    missing_extra: bool = False


def list_plugins(kind: str | None = None) -> list[PluginInfo]:
    """Installed plugins of ``kind`` (``source``, ``sink``, ``format``; None: all), by kind
    then name.  Never raises for a broken plugin: its ``error`` says what went wrong."""
    kinds = KINDS if kind is None else (kind,)
    return [describe_plugin(k, name) for k in kinds for name in sorted(plugins.available(k))]


#: What each pipeline-level section is for (``hub plugins`` lists them after the plugins).
SECTION_SUMMARIES = {
    "pipeline": "the pipeline's name and parallelism",
    "checkpoint": "when and where checkpoints are taken and how many are kept",
    "errors": "what a bad record does: stop the pipeline or go to the dead letters",
    "watermark": "how event time advances: allowed lateness, idle splits",
    "restart": "restarts from the latest checkpoint after transient errors",
}


def list_sections() -> list[PluginInfo]:
    """The pipeline-level sections (``[pipeline]``, ``[checkpoint]``, ...) with their options
    and defaults, as :class:`PluginInfo` of kind ``section`` named by their table."""
    from hub.config import _SECTIONS  # the models validating them; lazily: config is heavier

    return [PluginInfo("section", name, summary=SECTION_SUMMARIES.get(name, ""),
                       options=describe_options(model)) for name, model in _SECTIONS.items()]


def find(name: str, kind: str | None = None) -> list[PluginInfo]:
    """Every plugin (of ``kind``) and section called ``name`` (``kafka`` is a source and a
    sink; ``[checkpoint]`` or ``checkpoint`` a section).  Raises ConfigError with a
    did-you-mean when nothing is called so."""
    bare = name.strip("[]")
    kinds = KINDS if kind is None else (kind,) if kind in KINDS else ()
    found = [describe_plugin(k, name) for k in kinds if name in plugins.available(k)]
    if kind in (None, "section"):
        found += [s for s in list_sections() if s.name == bare]
    if found:
        return found
    known = sorted({n for k in kinds for n in plugins.available(k)}
                   | (set(SECTION_SUMMARIES) if kind in (None, "section") else set()))
    close = difflib.get_close_matches(bare, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    what = f"no {kind} called" if kind else "no plugin or section called"
    raise ConfigError(f"{what} {name!r}{hint} (known: {', '.join(known) or 'none'})")


def describe_plugin(kind: str, name: str) -> PluginInfo:
    """Summary and options of one plugin; a load failure becomes ``PluginInfo.error``."""
    try:
        cls = plugins.load(kind, name)
    except Exception as exc:  # noqa: BLE001 - reported in the listing, see module docstring
        log.debug("plugin %s %r failed to load", kind, name, exc_info=True)
        # A HubError (a missing extra) is already one line a user can act on.
        error = str(exc) if isinstance(exc, HubError) else f"{type(exc).__name__}: {exc}"
        return PluginInfo(kind, name, error=error,
                          missing_extra=isinstance(exc, MissingExtraError))
    config = getattr(cls, "config_class", None)
    if not (isinstance(config, type) and issubclass(config, BaseModel)):
        return PluginInfo(kind, name, summary=_first_line(cls.__doc__),
                          error="declares no config_class")
    summary = getattr(config, "summary", "") or _first_line(cls.__doc__)
    return PluginInfo(kind, name, summary=summary, options=describe_options(config))


def describe_options(model: type[BaseModel]) -> list[OptionInfo]:
    """The options of a pydantic model, in declaration order."""
    out = []
    for name, info in model.model_fields.items():
        required = info.is_required()
        type_name = describe_type(info.annotation, info.metadata)
        out.append(OptionInfo(
            name=info.alias or name,
            type=type_name,
            default="required" if required else _default(info, type_name),
            required=required,
            description=" ".join((info.description or "").split()),
        ))
    return out


def describe_type(ann: Any, metadata: list[Any] | tuple[Any, ...] = ()) -> str:
    """A short readable name for a field's type (``metadata``: its Annotated extras)."""
    for marks, label in _MARKS:
        if any(m in metadata for m in marks):
            return label
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Annotated:
        return describe_type(args[0], (*metadata, *args[1:]))
    if origin is Literal:
        return "|".join(str(a) for a in args)
    if origin in (Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        return " | ".join(describe_type(a) for a in members)
    if ann is Any:
        return "any"
    if ann in _SCALARS:
        return _SCALARS[ann]
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "table"
    if origin in (list, tuple, set, frozenset) and args:
        return f"list[{describe_type(args[0])}]"
    if origin is dict:
        value = describe_type(args[1]) if args else "any"
        return "table" if value == "any" else f"table[{value}]"
    if origin is not None:
        return getattr(origin, "__name__", str(origin))
    return getattr(ann, "__name__", str(ann))


def _default(info: FieldInfo, type_name: str) -> str:
    if _is_secret(info.annotation):
        return "(secret)"  # a default password is still a password
    value = info.default
    if value is PydanticUndefined and info.default_factory is not None:
        try:
            value = info.default_factory()  # type: ignore[call-arg]
        except Exception:  # noqa: BLE001 - a factory needing validated data: show it generically
            return "(computed)"
    # Show durations and sizes the way users write them, not as seconds and bytes.
    if type_name.startswith("duration") and isinstance(value, (int, float)) \
            and not isinstance(value, bool):
        return _toml(_human_duration(float(value)))
    if type_name.startswith("size") and isinstance(value, int) and not isinstance(value, bool):
        return _toml(_human_size(value))
    return _toml(value)


def _human_duration(seconds: float) -> str:
    for unit, factor in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= factor and seconds % factor == 0:
            return f"{int(seconds // factor)}{unit}"
    return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"


def _human_size(size: int) -> str:
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def _is_secret(ann: Any) -> bool:
    if ann in (SecretStr, SecretBytes):
        return True
    return any(_is_secret(a) for a in typing.get_args(ann))


def _toml(value: Any) -> str:
    """``value`` as it would be written in a pipeline file."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, BaseModel):
        return _toml(value.model_dump(by_alias=True))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        return json.dumps(value)
    if hasattr(value, "value") and not isinstance(value, (int, float)):  # an Enum
        return _toml(value.value)
    return str(value)


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n", 1)[0].strip()
