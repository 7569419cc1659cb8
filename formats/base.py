"""File formats: how Arrow tables become file bytes and back.

A format is a plugin (entry point group ``hub.formats``; the name is what users write in
``format = "..."``).  The files sink writes through :meth:`FileFormat.open_writer`; the files
source reads through :meth:`FileFormat.open_reader`.  Message formats for Kafka (json,
debezium-json, avro, ...) will extend this package with encoders/decoders of change events.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import BinaryIO, ClassVar

import pyarrow as pa

from runtime.config import ConnectorConfig


class FormatWriter(ABC):
    """Writes Arrow tables of one schema into one open binary file."""

    @abstractmethod
    def write(self, table: pa.Table) -> None:
        """Append rows.  ``table`` has the schema given to ``open_writer``."""

    @abstractmethod
    def close(self) -> None:
        """Write any footer and flush; does not close the underlying file object."""


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
