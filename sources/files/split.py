"""Files splits: one per file."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.source import Split


@dataclass
class FileSplit(Split):
    """One file and how far it has been read.

    ``progress`` is the format reader's resume point: the byte offset of the next record for
    csv, jsonl and files of messages (one per line), of the next block for avro container
    files, the number of rows read for parquet (0: not started).  ``rows_read`` counts
    the rows emitted (for metrics and error messages).  ``mtime_ms`` and ``size`` are those the
    file had when discovered (``mtime_ms`` is the events' time when nothing else gives one).
    ``schema`` is the table schema (``TableSchema.to_dict()``), set by the enumerator when it
    assigns the split so every reader reads every file with the same schema (None for message
    formats: their messages carry or declare their schemas).
    """

    path: str = ""
    progress: int = 0
    rows_read: int = 0
    size: int = 0
    mtime_ms: int = 0
    schema: dict[str, Any] | None = None
