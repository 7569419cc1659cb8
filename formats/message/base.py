"""Message formats: change events as the values (and keys) of messages, e.g. Kafka records.

A message format is a plugin in the ``hub.formats`` entry-point group, like the file formats,
but a subclass of :class:`MessageFormat` instead of :class:`~formats.file.base.FileFormat`.
The Kafka connectors take it (:func:`formats.registry.resolve_message_format`), and so do the
files connectors (:func:`formats.registry.resolve_files_format`): files of messages are
written and read through :meth:`MessageFormat.open_file_writer` and
:meth:`MessageFormat.open_file_reader` (:mod:`formats.file.messages`: one message per line;
:mod:`formats.file.avro`: Avro container files).

* A format's :class:`~formats.base.MessageDecoder` turns many messages at once into change
  batches (one per run of events of one table) and schema changes, with a
  :class:`~runtime.schema.TableSchema` that comes from the messages (Debezium's schema part,
  Canal's ``mysqlType``, an Avro schema) or from declared ``columns``.  Messages that can't be
  decoded come back in ``Decoded.bad`` with the reason: the caller names topic, partition and
  offset and sends them to the dead-letter queue.  Decoders keep per-table schemas between
  calls (to see schema changes): one decoder per reader.
* A format's :class:`~formats.base.MessageEncoder` turns a batch into one value per event
  (``None`` = no value, a tombstone), and the primary key of each event into a key.

Value encodings of the JSON formats are those of :mod:`formats.codec.text`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, BinaryIO, ClassVar

from pydantic import Field, model_validator

from formats.base import BadRecordHandler, MessageDecoder, MessageEncoder
from formats.file.messages import (LineFileReader, LineFileWriter, MessageFileReader,
                                   MessageFileWriter)
from runtime.config import ConnectorConfig, check_declared_columns
from runtime.schema import Column, TableSchema
from runtime.types import parse_type


class MessageFormatConfig(ConnectorConfig):
    """Options every message format takes: an optional declared table."""

    table: str | None = Field(None, description=(
        "table id (\"db.table\") of the events; default: what the messages say, else the "
        "topic name with its first dot-separated part dropped when it has three parts"))
    columns: dict[str, str] | None = Field(None, description=(
        "declared columns: name -> logical type; default: the schema the messages carry, "
        "else inferred from the values"))
    primary_key: list[str] = Field([], description="primary key columns (with `columns`, or "
                                                   "to override what the messages say)")

    @model_validator(mode="after")
    def _check(self) -> MessageFormatConfig:
        if self.columns is not None:
            check_declared_columns(self.columns, self.primary_key)
        return self

    def declared_schema(self, table: str) -> TableSchema | None:
        if self.columns is None:
            return None
        cols = tuple(Column(n, parse_type(t), n not in self.primary_key)
                     for n, t in self.columns.items())
        return TableSchema(self.table or table, cols, tuple(self.primary_key))


class MessageFormat(ABC):
    """One message format, made from its ``config_class`` options."""

    name: ClassVar[str]
    config_class: ClassVar[type[ConnectorConfig]] = MessageFormatConfig
    #: True when the format needs a schema registry (``schema-registry-url``).
    needs_registry: ClassVar[bool] = False
    #: Options of the format in files (None: those of ``config_class``).
    file_config_class: ClassVar[type[ConnectorConfig] | None] = None
    #: File name extension of files of this format's messages, without the dot.
    file_extension: ClassVar[str] = "json"
    #: True when messages are JSON texts: in line files a line break inside one is
    #: whitespace and blank lines are skipped (False: raw values, see
    #: :mod:`formats.file.messages`).
    json_lines: ClassVar[bool] = True
    #: True when the format writes message keys of its own form (Debezium's key struct, an
    #: Avro key record, Maxwell's key object): a Kafka sink whose ``key-format`` is not set
    #: takes the value format (and its options) for keys too; other formats' keys are
    #: ``json``.
    has_key_form: ClassVar[bool] = False

    def __init__(self, config: ConnectorConfig | None = None):
        self.config: Any = config if config is not None else self.config_class()

    @abstractmethod
    def decoder(self) -> MessageDecoder:
        """A new decoder (one per reader: decoders are stateful and not thread-safe)."""

    @abstractmethod
    def encoder(self) -> MessageEncoder:
        """A new encoder (one per writer)."""

    # -- files (the files sink and source) -----------------------------------------------------
    def open_file_writer(self, file: BinaryIO, schema: TableSchema,
                         on_bad_record: BadRecordHandler | None = None) -> MessageFileWriter:
        """A writer of change batches of ``schema`` into ``file`` (positioned at its start).
        Default: one message per line."""
        return LineFileWriter(file, self.encoder(), self.json_lines, on_bad_record)

    def open_file_reader(self, path: str, progress: int = 0, *, table: str, timestamp_ms: int,
                         batch_rows: int = 8192,
                         on_bad_record: BadRecordHandler | None = None) -> MessageFileReader:
        """A reader of the local file at ``path`` from ``progress`` (0, or a progress an
        earlier reader of the file returned).  ``table``: the table of messages that name none;
        ``timestamp_ms``: the event time of messages that carry none.  Raises OSError when
        the file can't be opened."""
        return LineFileReader(path, self.decoder(), progress, batch_rows, table, timestamp_ms,
                              self.json_lines, on_bad_record)


def event_time(*candidates: Any) -> int:
    """The first candidate that is present (not None) as epoch ms: the event time fields of a
    message in order of preference, then the message timestamp.  0 is a time like any
    other, not a missing one."""
    for ts in candidates:
        if ts is not None:
            return int(ts)
    raise ValueError("no event time")


def topic_table(topic: str) -> str:
    """Debezium's topic naming ``server.db.table`` -> ``db.table``; other names stay."""
    parts = topic.split(".")
    return ".".join(parts[1:]) if len(parts) == 3 else topic
