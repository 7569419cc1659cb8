"""Buckets (the rows of one table and one partition on their way into a part file) and the
names of part files.

Part file names carry the pipeline, the attempt (unique per run), the subtask and a counter::

    .part-{pipeline}-{attempt}-{subtask}-{n}.{ext}.inprogress   hidden: being written, or
                                                                closed and pending commit
    part-{pipeline}-{attempt}-{subtask}-{n}.{ext}               visible: committed

The attempt is reduced to ``[A-Za-z0-9_]`` so that exactly three dash-separated fields follow
the pipeline name: that is what lets recovery tell this pipeline's files from those of a
pipeline whose name merely starts with the same text.
"""
from __future__ import annotations

import logging
import os
import re

import pyarrow as pa

from formats.base import BadRecordHandler
from formats.file.base import FileFormat, FormatWriter
from formats.file.messages import MessageFileWriter
from formats.message.base import MessageFormat
from runtime.batch import ChangeBatch
from runtime.fs import FileSystem, OutputFile
from runtime.schema import TableSchema
from runtime.sink import Committable

log = logging.getLogger(__name__)

INPROGRESS_SUFFIX = ".inprogress"


def _safe_pipeline(pipeline: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", pipeline)


def _safe_attempt(attempt: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", attempt) or "_"


def visible_part_pattern(pipeline: str) -> re.Pattern[str]:
    """Matches the names of committed part files of ``pipeline`` only."""
    return re.compile(r"^part-" + re.escape(_safe_pipeline(pipeline))
                      + r"-[A-Za-z0-9_]+-\d+-\d+\.[^/]*$")


def hidden_part_pattern(pipeline: str) -> re.Pattern[str]:
    """Matches the names of hidden (in-progress or pending) part files of ``pipeline`` only."""
    return re.compile(r"^\.part-" + re.escape(_safe_pipeline(pipeline))
                      + r"-[A-Za-z0-9_]+-\d+-\d+\.[^/]*" + re.escape(INPROGRESS_SUFFIX) + "$")


class PartNamer:
    """Hands out part file paths for one writer; the counter is writer-wide, so names are
    unique within a run whatever the directory."""

    def __init__(self, pipeline: str, attempt: str, subtask: int, extension: str):
        self._prefix = f"part-{_safe_pipeline(pipeline)}-{_safe_attempt(attempt)}-{subtask}-"
        self._extension = extension
        self._n = 0

    def next(self, directory: str) -> tuple[str, str]:
        """(hidden in-progress path, visible final path) of a new part file in ``directory``."""
        name = f"{self._prefix}{self._n}.{self._extension}"
        self._n += 1
        return os.path.join(directory, f".{name}{INPROGRESS_SUFFIX}"), os.path.join(directory, name)


class Bucket:
    """Buffers the rows of one directory and writes them into one part file at a time, on
    filesystem ``fs`` (local or HDFS).

    Rows are buffered until :meth:`flush`, so each write to the format is large (a Parquet row
    group per flush).  :meth:`close` finishes the part file (it becomes *pending*: complete,
    durable, still hidden) and returns its committable.  Thread-confined.

    With a file format, rows are Arrow tables of the Arrow ``schema``; with a message format,
    change batches of the :class:`TableSchema` ``schema``, encoded at :meth:`flush` (bad
    records go to ``on_bad_record``).
    """

    def __init__(self, table_id: str, directory: str, schema: pa.Schema | TableSchema,
                 fmt: FileFormat | MessageFormat, namer: PartNamer, fs: FileSystem,
                 on_bad_record: BadRecordHandler | None = None):
        self._fs = fs
        self._on_bad = on_bad_record
        self.table_id = table_id
        self.directory = directory
        self.schema = schema
        self._format = fmt
        self._namer = namer
        self._buffer: list[pa.Table | ChangeBatch] = []
        self.buffered_rows = 0
        self.buffered_bytes = 0
        #: Clock time the current part began (its first row arrived); None: no current part.
        self.started: float | None = None
        self._file: OutputFile | None = None
        self._writer: FormatWriter | MessageFileWriter | None = None
        self._paths: tuple[str, str] | None = None
        self._raw_written = 0  # in-memory bytes handed to the format for the current part
        #: File bytes per in-memory byte of the part finished last (None before one was).
        self.last_ratio: float | None = None
        self._rows_written = 0

    def append(self, rows: pa.Table | ChangeBatch, now: float) -> int:
        """Buffer ``rows`` (whose schema equals :attr:`schema`); returns their size in
        memory (bytes)."""
        if self.started is None:
            self.started = now
        nbytes = rows.nbytes if isinstance(rows, pa.Table) else rows.arrow().nbytes
        self._buffer.append(rows)
        self.buffered_rows += len(rows)
        self.buffered_bytes += nbytes
        return nbytes

    def size_estimate(self, ratio: float | None) -> int:
        """Bytes the current part will take once everything given to it is written.

        Formats may hold rows back (Parquet keeps a row group in memory and encodes in the
        background), so what is on disk says too little; ``ratio`` (file bytes per in-memory
        byte, learnt from finished parts) scales all rows given so far instead, and the bytes
        on disk are a lower bound.  Without a learnt ratio (the first part of a table), the
        current part's own bytes on disk per in-memory byte given to the format serve once
        there are any (exact for formats that write as they go; for Parquet an underestimate
        by the rows not encoded yet, so the part may outgrow the size by about two row
        groups), else 1.0."""
        on_disk = self._file.tell() if self._file is not None else 0
        if ratio is None:
            ratio = on_disk / self._raw_written if on_disk and self._raw_written else 1.0
        return max(on_disk, int((self._raw_written + self.buffered_bytes) * ratio))

    @property
    def is_open(self) -> bool:
        """True while a part file is open (rows were written and it was not closed yet)."""
        return self._file is not None

    def flush(self) -> None:
        """Write the buffered rows into the current part file (opening it if needed)."""
        if not self._buffer:
            return
        if self._writer is None:
            self._open()
        assert self._writer is not None
        if isinstance(self._writer, MessageFileWriter):
            for batch in self._buffer:
                self._writer.write(batch)  # type: ignore[arg-type]
        else:
            data = self._buffer[0] if len(self._buffer) == 1 else pa.concat_tables(self._buffer)
            self._writer.write(data)  # type: ignore[arg-type]
        self._raw_written += self.buffered_bytes
        self._rows_written += self.buffered_rows
        self._buffer.clear()
        self.buffered_rows = self.buffered_bytes = 0

    def close(self) -> Committable | None:
        """Flush, finish and make durable the current part file; return its committable (None
        when the part is empty).  The next rows start a new part."""
        self.flush()
        self.started = None
        if self._writer is None:
            return None
        assert self._file is not None and self._paths is not None
        self._writer.close()
        size = self._file.tell()
        # durable before it is named in a checkpoint: commit after a crash must find it whole
        self._file.close()
        pending, final = self._paths
        committable: Committable = {"kind": "file", "pending": pending, "final": final,
                                    "rows": self._rows_written}
        self.last_ratio = size / self._raw_written if self._raw_written else None
        self._reset_part()
        return committable

    def discard(self) -> None:
        """Drop the buffer and delete the unfinished part file (nothing of it was prepared)."""
        self._buffer.clear()
        self.buffered_rows = self.buffered_bytes = 0
        self.started = None
        if self._file is not None and self._paths is not None:
            try:
                if self._writer is not None:
                    self._writer.close()  # so the format's writer never touches a closed file
                self._file.abort()
            except Exception as exc:  # noqa: BLE001 - recovery deletes it later; closing goes on
                log.warning("files sink: could not discard in-progress file %s: %s",
                            self._paths[0], exc)
        self._reset_part()

    def _open(self) -> None:
        self._paths = self._namer.next(self.directory)
        self._file = self._fs.create(self._paths[0])  # creates missing folders
        if isinstance(self._format, MessageFormat):
            assert isinstance(self.schema, TableSchema)
            self._writer = self._format.open_file_writer(self._file, self.schema, self._on_bad)
        else:
            assert isinstance(self.schema, pa.Schema)
            self._writer = self._format.open_writer(self._file, self.schema)

    def _reset_part(self) -> None:
        self._file = None
        self._writer = None
        self._paths = None
        self._raw_written = self._rows_written = 0
