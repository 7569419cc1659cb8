"""File formats: how Arrow tables become file bytes and back.

A format is a plugin (entry point group ``hub.formats``; the name is what users write in
``format = "..."``).  The files sink writes through :meth:`FileFormat.open_writer`; the files
source reads through :meth:`FileFormat.open_reader`.  Message formats (json, debezium-json,
avro, ...: :mod:`formats.message`) encode and decode change events for Kafka, and the files
connectors take them too (files of messages: :mod:`formats.file.messages`,
:mod:`formats.file.avro`).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import BinaryIO, ClassVar

import pyarrow as pa

from formats.base import BadRecordHandler
from runtime.config import ConnectorConfig
from runtime.errors import ConfigError
from runtime.schema import TableSchema
from runtime.types import DataType, from_arrow, parse_type

#: Arrow field metadata key holding the logical type text (``TIME(3)``, ``JSON``): Arrow types
#: alone can't tell TIMESTAMP(3) from TIMESTAMP(6) or JSON from STRING.  Parquet keeps it.
LOGICAL_TYPE_KEY = b"logical_type"


def annotated_arrow_schema(schema: TableSchema) -> pa.Schema:
    """``schema.arrow_schema`` with each field's logical type in its metadata, so formats that
    keep field metadata (Parquet) and the text readers know the exact logical types."""
    return pa.schema([f.with_metadata({LOGICAL_TYPE_KEY: str(c.type).encode()})
                      for f, c in zip(schema.arrow_schema, schema.columns)])


def logical_type(field: pa.Field) -> DataType:
    """The logical type of an Arrow field: from its metadata when annotated, else the nearest
    one of its Arrow type (``from_arrow``); Arrow types without one (structs, maps) are JSON."""
    meta = field.metadata or {}
    if LOGICAL_TYPE_KEY in meta:
        return parse_type(meta[LOGICAL_TYPE_KEY].decode())
    try:
        return from_arrow(field.type)
    except ValueError:
        return DataType("JSON")


def is_json_field(field: pa.Field) -> bool:
    return (field.metadata or {}).get(LOGICAL_TYPE_KEY) == b"JSON"


class FormatWriter(ABC):
    """Writes Arrow tables of one schema into one open binary file."""

    @abstractmethod
    def write(self, table: pa.Table) -> None:
        """Append rows.  ``table`` has the schema given to ``open_writer``."""

    @abstractmethod
    def close(self) -> None:
        """Write any footer and flush; does not close the underlying file object."""


@dataclass(frozen=True, slots=True)
class ReadChunk:
    """Rows read from a file and where reading stands after them.

    ``progress`` is the value to pass to :meth:`FileFormat.open_reader` to read on right
    after these rows (byte offset of the next record for text formats, rows for Parquet).
    ``batch`` may be empty (only bad records or blank lines were read): progress still moved.
    """

    batch: pa.RecordBatch
    progress: int


class FormatReader(ABC):
    """Reads one file from a progress value, in batches of about ``batch_rows`` rows.

    Batches have exactly the schema given to ``open_reader`` (columns matched by name, missing
    columns null, extra columns dropped, values converted to the field types).  A record that
    can't be parsed or converted goes to the bad-record handler with an error naming the file
    and line (or row); without a handler it raises :class:`BadRecordError`.
    Not thread-safe; close it when done.
    """

    @abstractmethod
    def read(self) -> ReadChunk | None:
        """The next rows, or None at the end of the file.  Blocks on file I/O."""

    @abstractmethod
    def close(self) -> None:
        """Release the file.  Idempotent."""

    def __enter__(self) -> FormatReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FileFormat(ABC):
    """One file format.  Instances are made from the format's ``config_class`` options."""

    name: ClassVar[str]
    #: File name extension, without the dot (``parquet``).
    extension: ClassVar[str]
    config_class: ClassVar[type[ConnectorConfig]] = ConnectorConfig

    def __init__(self, config: ConnectorConfig | None = None):
        self.config = config if config is not None else self.config_class()

    @abstractmethod
    def open_writer(self, file: BinaryIO, schema: pa.Schema) -> FormatWriter:
        """A writer of rows of ``schema`` into ``file`` (positioned at its start)."""

    # -- reading (optional: formats that can't be read keep these defaults) -------------------
    @property
    def readable(self) -> bool:
        """True when this format implements :meth:`open_reader` and :meth:`infer_schema`."""
        return type(self).open_reader is not FileFormat.open_reader

    @property
    def named_columns(self) -> bool:
        """True when files carry column names, so a reader matches columns by name and a
        column missing from a file reads as nulls (False: matched by position)."""
        return True

    def open_reader(self, path: str, schema: pa.Schema, progress: int = 0, *,
                    batch_rows: int = 8192,
                    on_bad_record: BadRecordHandler | None = None) -> FormatReader:
        """A reader of the file at ``path`` yielding batches of ``schema``, resuming at
        ``progress`` (0, or a :attr:`ReadChunk.progress` of an earlier reader of the same
        file).  Fields annotated with :data:`LOGICAL_TYPE_KEY` ``JSON`` are read as JSON text.
        Opening blocks on file I/O; raises OSError when the file can't be opened."""
        raise ConfigError(f"the {self.name!r} format can't be read", key="format")

    def infer_schema(self, path: str) -> pa.Schema:
        """The columns of the file at ``path`` with the types its first rows suggest (all of
        them for formats with a schema, like Parquet)."""
        raise ConfigError(f"the {self.name!r} format can't be read", key="format")
