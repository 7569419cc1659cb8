"""Loading and validating a pipeline file (TOML) into a :class:`PipelineSpec`.

The whole file is checked before anything starts and without connecting anywhere: TOML
syntax, ``${ENV}`` references, unknown keys, the connector types and every connector option.
All problems are collected and raised together as one :class:`~hub.errors.ConfigErrors`; each
names its key path and, where the file defines it, its line.
"""
from __future__ import annotations

import logging
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from hub.errors import ConfigErrors, KeyPath, format_key, parse_key
from hub.interpolate import interpolate
from hub.problems import did_you_mean, validation_problems
from hub.sinkoptions import SinkSchemaChangeOptions, split_options
from hub.tomlpos import KeyLines
from runtime import plugins
from runtime.checkpoint.coordinator import DEFAULT_TOLERABLE_FAILURES
from runtime.channel import DEFAULT_CHANNEL_BYTES
from runtime.config import ConnectorConfig, Duration, Size
from runtime.deadletter import RECORD_ID_RE
from runtime.errors import ConfigError, HubError
from runtime.fs import is_url
from runtime.sink import Sink
from runtime.schema import TableSchema
from runtime.source import Source
from runtime.transform.changes import SchemaChangeFilter
from runtime.watermark import WatermarkStrategy

if TYPE_CHECKING:  # the SQL parser loads only for pipelines with [[transform]] / [[route]]
    from runtime.transform.route import RouteRule
    from runtime.transform.transform import TransformRule

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")


class PipelineOptions(ConnectorConfig):
    """``[pipeline]``"""

    name: str = Field(description="Name of the pipeline: letters, digits, '_' and '-'.")
    parallelism: int = Field(1, ge=1, description="Subtasks per operator.")
    executor: Literal["local", "ray"] = Field("local", description=(
        "What runs the subtasks: 'local' (threads of this process) or 'ray' (actors on a Ray "
        "cluster; the ray extra, and a checkpoint.dir every node sees)."))
    ray_address: str | None = Field(None, description=(
        "The Ray cluster to run on (executor = 'ray'); default: RAY_ADDRESS, else a local "
        "one started for the run."))
    operator_chaining: bool = Field(True, description=(
        "executor = 'ray': run source and sink subtask i in one actor, batches never leaving "
        "its process (Flink's pipeline.operator-chaining); false: an actor each, batches "
        "crossing between them."))
    channel_capacity: int = Field(8, ge=1, description=(
        "Batches buffered between a source subtask and its sink subtask before the source "
        "waits (backpressure)."))
    channel_bytes: Size = Field(DEFAULT_CHANNEL_BYTES, ge=1, description=(
        "Bytes of batch data buffered between a source subtask and its sink subtask before "
        "the source waits, whatever the count (one batch always passes)."))
    schema_change_behavior: Literal["lenient", "evolve", "try-evolve", "ignore", "exception"] = \
        Field("lenient", description=(
            "What schema changes of the source reach the sink (Flink CDC's modes).  lenient "
            "(the default): nothing is lost (an added column is nullable, a dropped column "
            "stays and is NULL from then on, a rename adds the new column, a type change "
            "widens the column where one type holds the old and new values exactly (a "
            "narrowing keeps the column), else the column stays and a new nullable column "
            "<column>_<new type, lower case> (numbered _2, _3 .. when taken) takes the values "
            "from then on, truncates and drops are not passed on unless the sink's "
            "exclude-schema-changes is set); evolve: all, as they are; try-evolve: as evolve, "
            "and a change the sink refuses is logged and skipped; ignore: each table keeps "
            "the schema it was created with (new columns are left out, missing ones are "
            "NULL); exception: a schema change stops the pipeline.  The sink's "
            "include-schema-changes / exclude-schema-changes and its own schema options apply "
            "to what reaches it."))

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        # The name becomes part of paths and file names: keep it to safe characters.
        if not _NAME.match(v):
            raise ValueError("use only letters, digits, '_' and '-'")
        return v


class CheckpointOptions(ConnectorConfig):
    """``[checkpoint]``"""

    interval: Duration = Field(10.0, gt=0, description="Time between two checkpoints.")
    dir: str | None = Field(None, description="Checkpoint folder; default ./state/<name>. "
                                              "Relative to the current working directory.")
    retain: int = Field(3, ge=1, description="Completed checkpoints kept.")
    timeout: Duration = Field(600.0, gt=0, description=(
        "A checkpoint not complete by then is aborted; a stop not complete by then (its final "
        "checkpoint blocked) ends without it, keeping the last completed checkpoint."))
    tolerable_failures: int = Field(DEFAULT_TOLERABLE_FAILURES, ge=0, description=(
        "Checkpoints in a row that may fail (time out, can't be stored) before the pipeline is "
        "restarted from the latest checkpoint as [restart] says (Flink's tolerable-failed-"
        "checkpoints): a stuck sink or source is never silent.  A completed checkpoint resets "
        "the count."))


class ErrorsOptions(ConnectorConfig):
    """``[errors]``"""

    tolerance: Literal["none", "all"] = Field(
        "none", description='"none": a bad record stops the pipeline; "all": it goes to the '
                            "dead-letter path and the pipeline goes on.")
    dead_letter_path: str | None = Field(None, description="Default <checkpoint dir>/dead-letter.")
    skip_records: list[str] = Field([], description=(
        "ids of records (16 hex digits, as a bad record's error line prints them) sent to the "
        "dead-letter path even with tolerance \"none\"; same as  hub run --skip-record ID"))

    @field_validator("skip_records")
    @classmethod
    def _check_ids(cls, v: list[str]) -> list[str]:
        for i, rid in enumerate(v):
            check_record_id_text(rid, f"item {i + 1}")
        return [rid.lower() for rid in v]


def check_record_id_text(rid: str, what: str = "") -> str:
    """``rid`` when it looks like a record id (16 hex digits), else ValueError."""
    if not RECORD_ID_RE.match(rid.lower()):
        where = f"{what}: " if what else ""
        raise ValueError(f"{where}{rid!r} is not a record id (16 hex digits, as the error "
                         f"line of a bad record prints it)")
    return rid.lower()


class WatermarkOptions(ConnectorConfig):
    """``[watermark]``"""

    out_of_orderness: Duration = Field(0.0, ge=0, description=(
        "How late an event may arrive: the watermark trails the largest event time by this."))
    idle_timeout: Duration = Field(60.0, ge=0, description=(
        "A split without events for this long stops holding the watermark back (0 = never)."))


class RestartOptions(ConnectorConfig):
    """``[restart]``"""

    attempts: int = Field(10, ge=0, description=(
        "Restarts from the latest checkpoint after transient errors (lost connections, "
        "overloaded servers) before giving up; the count resets once a checkpoint completes."))
    delay: Duration = Field(1.0, ge=0, description="Wait before the first restart; doubles each time.")
    max_delay: Duration = Field(60.0, ge=0, description="Longest wait between restarts.")


#: The tables of ``[pipeline]``-like sections, validated by these models.
_SECTIONS: dict[str, type[ConnectorConfig]] = {
    "pipeline": PipelineOptions, "checkpoint": CheckpointOptions, "errors": ErrorsOptions,
    "watermark": WatermarkOptions,
    "restart": RestartOptions,
}
_CONNECTORS: dict[str, type] = {"source": Source, "sink": Sink}
#: blocks checked by hub.transforms
_BLOCKS = ("transform", "route")


@dataclass(frozen=True)
class CheckpointSpec:
    interval_s: float
    #: Absolute path of the checkpoint folder.
    dir: str
    #: Completed checkpoints kept.
    retain: int
    timeout_s: float
    #: failed checkpoints in a row before the job fails (transient)
    tolerable_failures: int = DEFAULT_TOLERABLE_FAILURES


@dataclass(frozen=True)
class ErrorsSpec:
    tolerance: Literal["none", "all"]
    #: Absolute path of the dead-letter folder.
    dead_letter_path: str
    #: Ids of records sent to the dead letters even with tolerance "none".
    skip_records: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RestartSpec:
    attempts: int
    delay_s: float
    max_delay_s: float


@dataclass(frozen=True)
class PipelineSpec:
    """A validated pipeline file.  Holds connector classes and their validated configs, not
    connector instances: making those is the runner's job."""

    #: Absolute path of the pipeline file.
    path: str
    name: str
    parallelism: int
    checkpoint: CheckpointSpec
    errors: ErrorsSpec
    watermark: WatermarkStrategy
    restart: RestartSpec
    source_type: str
    source_class: type[Source]
    source_config: BaseModel
    sink_type: str
    sink_class: type[Sink]
    sink_config: BaseModel
    #: ``[pipeline] channel-capacity`` and ``channel-bytes``: how much a channel buffers
    channel_capacity: int = 8
    channel_bytes: int | None = DEFAULT_CHANNEL_BYTES
    #: ``[[transform]]`` and ``[[route]]`` blocks, in file order
    transforms: tuple[TransformRule, ...] = ()
    routes: tuple[RouteRule, ...] = ()
    #: ``[pipeline] schema-change-behavior``
    schema_change_behavior: str = "lenient"
    #: ``[sink] include-schema-changes`` / ``exclude-schema-changes``
    sink_schema_changes: SchemaChangeFilter = SchemaChangeFilter()
    #: ``[pipeline] executor`` and ``ray-address``
    executor: str = "local"
    ray_address: str | None = None
    #: ``[pipeline] operator-chaining`` (the Ray executor)
    operator_chaining: bool = True


def load_pipeline(path: str, env: Mapping[str, str] | None = None) -> PipelineSpec:
    """Read and validate the pipeline file at ``path``.

    ``env`` resolves ``${VAR}`` references (default: ``os.environ``).  Connector plugins are
    imported (to validate their options) but not instantiated, so nothing connects anywhere.
    Raises :class:`~hub.errors.ConfigErrors` listing every problem found, including an
    unreadable file or a TOML syntax error (then the only problem).
    """
    text = _read(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigErrors(path, [_syntax_error(exc, text)]) from None
    doc, env_problems = interpolate(raw, os.environ if env is None else env)
    check = _Check(KeyLines(text))
    for key_path, message in env_problems:
        check.add(key_path, message)
    _check_top_level(doc, check)
    sections = {name: check.section(doc, name, model) for name, model in _SECTIONS.items()}
    connectors = {kind: check.connector(doc, kind) for kind in _CONNECTORS}
    transforms, routes = [], []
    if any(key in doc for key in _BLOCKS):
        from hub.transforms import check_blocks  # noqa: PLC0415 - loads sqlglot: only if used

        transforms, routes = check_blocks(doc, check.add, lambda: _source_schemas(connectors))
    if check.errors:
        raise ConfigErrors(path, check.errors)
    spec = _spec(path, sections, connectors)  # type: ignore[arg-type]  # all present when no errors
    spec = replace(spec, transforms=tuple(transforms), routes=tuple(routes),
                   sink_schema_changes=check.sink_schema_changes)
    _check_checkpointing(spec, check)
    if check.errors:
        raise ConfigErrors(path, check.errors)
    return spec


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConfigErrors(path, [ConfigError(f"cannot read the file: {exc.strerror}")]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigErrors(path, [ConfigError("not UTF-8 text", line=line)]) from None


def _syntax_error(exc: tomllib.TOMLDecodeError, text: str) -> ConfigError:
    # tomllib puts the position at the end of its message: "... (at line 3, column 7)".
    msg = str(exc)
    m = re.search(r" \(at line (\d+), column (\d+)\)$", msg)
    if m:
        return ConfigError(f"invalid TOML: {msg[:m.start()]} (column {m.group(2)})",
                           line=int(m.group(1)))
    if msg.endswith(" (at end of document)"):
        return ConfigError(f"invalid TOML: {msg.removesuffix(' (at end of document)')} "
                           "(at end of file)", line=text.count("\n") + 1)
    return ConfigError(f"invalid TOML: {msg}")


def _check_top_level(doc: dict[str, Any], check: _Check) -> None:
    allowed = [*_SECTIONS, *_CONNECTORS, *_BLOCKS]
    for key in doc:
        if key in allowed:
            continue
        home = [s for s, model in _SECTIONS.items() if key in _aliases(model)]
        hint = f"; it belongs in [{home[0]}]" if home else did_you_mean(key, allowed)
        check.add((key,), "unknown key" + hint)


def _aliases(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


class _Check:
    """Collects problems with their line numbers."""

    def __init__(self, lines: KeyLines):
        self.lines = lines
        self.errors: list[ConfigError] = []
        #: ``[sink]`` include-schema-changes / exclude-schema-changes
        self.sink_schema_changes = SchemaChangeFilter()

    def add(self, path: KeyPath, message: str, line: int | None = None) -> None:
        self.errors.append(ConfigError(message, key=format_key(path),
                                       line=line or self.lines.line_of(path)))

    def table(self, doc: dict[str, Any], name: str) -> dict[str, Any] | None:
        value = doc.get(name, {})
        if not isinstance(value, dict):
            self.add((name,), f"must be a table: write [{name}] and put its keys below it")
            return None
        return value

    def section(self, doc: dict[str, Any], name: str, model: type[BaseModel]) -> Any:
        """The validated model of ``[name]``, None when it has problems."""
        table = self.table(doc, name)
        if table is None:
            return None
        try:
            return model.model_validate(table)
        except ValidationError as exc:
            for path, message in validation_problems(exc, model):
                self.add((name, *path), message)
            return None

    def connector(self, doc: dict[str, Any], kind: str) -> tuple[str, type, BaseModel] | None:
        """``(type, plugin class, validated config)`` of ``[source]`` or ``[sink]``, None when
        it has problems."""
        if kind not in doc:
            self.add((kind,), f"missing [{kind}] section{_known(kind)}")
            return None
        table = self.table(doc, kind)
        if table is None:
            return None
        name = table.get("type")
        if name is None:
            self.add((kind,), f"missing key 'type': which {kind} to use{_known(kind)}")
            return None
        if not isinstance(name, str):
            self.add((kind, "type"), f"must be a string{_known(kind)}")
            return None
        cls = self.plugin(kind, name)
        if cls is None:
            return None
        options = {k: v for k, v in table.items() if k != "type"}
        if kind == "sink":
            options, common = split_options(options)
            try:
                self.sink_schema_changes = SinkSchemaChangeOptions.model_validate(
                    common).filter()
            except ValidationError as exc:
                for path, message in validation_problems(exc, SinkSchemaChangeOptions):
                    self.add((kind, *path), message)
        try:
            return name, cls, cls.config_class.model_validate(options)
        except ValidationError as exc:
            for path, message in validation_problems(exc, cls.config_class):
                self.add((kind, *path), message)
        except ConfigError as exc:
            # A connector's own check names keys relative to its table.
            self.add((kind, *parse_key(exc.key or "")), exc.message, exc.line)
        except HubError as exc:  # e.g. a format's missing extra, found while validating
            self.add((kind,), str(exc))
        except Exception as exc:  # noqa: BLE001 - e.g. a broken format plugin loaded by the
            # connector's validation: an installation problem to report, not a crash.
            log.debug("validating [%s] failed", kind, exc_info=True)
            self.add((kind,), f"validating the {kind} options failed: "
                              f"{type(exc).__name__}: {exc}")
        return None

    def plugin(self, kind: str, name: str) -> type | None:
        """The plugin class, checked to be a ``kind`` with a config model; None on problems."""
        key = (kind, "type")
        try:
            cls = plugins.load(kind, name)
        except ConfigError as exc:
            self.add(key, exc.message)
            return None
        except HubError as exc:  # MissingExtraError: the one line says which extra
            self.add(key, str(exc))
            return None
        except Exception as exc:  # noqa: BLE001 - a broken plugin is a problem line, not a crash
            self.add(key, f"the {kind} plugin {name!r} failed to load: "
                          f"{type(exc).__name__}: {exc}")
            return None
        base = _CONNECTORS[kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            self.add(key, f"the plugin {name!r} is not a {kind} ({base.__name__})")
            return None
        config_class = getattr(cls, "config_class", None)
        if not (isinstance(config_class, type) and issubclass(config_class, BaseModel)):
            self.add(key, f"the {kind} plugin {name!r} declares no config_class")
            return None
        return cls


def _known(kind: str) -> str:
    names = sorted(plugins.available(kind))
    return f" (known {kind} types: {', '.join(names) or 'none installed'})"


def _spec(path: str, sections: dict[str, Any],
          connectors: dict[str, tuple[str, type, BaseModel]]) -> PipelineSpec:
    pipeline: PipelineOptions = sections["pipeline"]
    ckpt: CheckpointOptions = sections["checkpoint"]
    errors: ErrorsOptions = sections["errors"]
    local_state = os.path.join(".", "state", pipeline.name)
    ckpt_dir = _absolute(ckpt.dir or local_state)
    # The dead-letter file is appended to: it stays local even when checkpoints are on HDFS.
    dlq_base = local_state if is_url(ckpt_dir) else ckpt_dir
    dead_letter = _absolute(errors.dead_letter_path or os.path.join(dlq_base, "dead-letter"))
    source_type, source_class, source_config = connectors["source"]
    sink_type, sink_class, sink_config = connectors["sink"]
    return PipelineSpec(
        path=os.path.abspath(path), name=pipeline.name, parallelism=pipeline.parallelism,
        executor=pipeline.executor, ray_address=pipeline.ray_address,
        operator_chaining=pipeline.operator_chaining,
        checkpoint=CheckpointSpec(interval_s=ckpt.interval, dir=ckpt_dir, retain=ckpt.retain,
                                  timeout_s=ckpt.timeout,
                                  tolerable_failures=ckpt.tolerable_failures),
        errors=ErrorsSpec(tolerance=errors.tolerance, dead_letter_path=dead_letter,
                          skip_records=frozenset(errors.skip_records)),
        restart=RestartSpec(sections["restart"].attempts, sections["restart"].delay,
                            sections["restart"].max_delay),
        watermark=WatermarkStrategy(int(sections["watermark"].out_of_orderness * 1000),
                                    sections["watermark"].idle_timeout),
        source_type=source_type, source_class=source_class, source_config=source_config,
        sink_type=sink_type, sink_class=sink_class, sink_config=sink_config,
        channel_capacity=pipeline.channel_capacity, channel_bytes=pipeline.channel_bytes,
        schema_change_behavior=pipeline.schema_change_behavior,
    )


def _source_schemas(connectors: dict[str, Any]) -> list[TableSchema] | None:
    """The source's tables when it declares them without connecting (datagen), else None."""
    found = connectors.get("source")
    if found is None or not callable(getattr(found[1], "schemas", None)):
        return None
    try:
        return list(found[1](found[2]).schemas())
    except Exception:  # noqa: BLE001 - only a help for checking expressions early
        log.debug("the source's table schemas are not known before it runs", exc_info=True)
        return None


def _check_checkpointing(spec: PipelineSpec, check: _Check) -> None:
    """The sink's check of its options against ``[checkpoint]`` (e.g. Kafka's transaction
    timeout against the checkpoint interval)."""
    try:
        spec.sink_class.check_checkpointing(spec.sink_config, spec.checkpoint.interval_s,
                                            spec.checkpoint.timeout_s)
    except ConfigError as exc:
        check.add(("sink", *parse_key(exc.key or "")), exc.message, exc.line)


def _absolute(path: str) -> str:
    # Relative to the current working directory, as a shell user expects; not to the file.
    # URLs (hdfs://namenode:9870/state) are already absolute.
    return path if is_url(path) else os.path.abspath(os.path.expanduser(path))
