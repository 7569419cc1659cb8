"""Files of messages: what the files sink writes and the files source reads when ``format`` is a
message format (json, debezium-json, canal-json, maxwell-json, raw; avro has its own container
files, :mod:`formats.file.avro`).

A line file holds one message per line, exactly the bytes a Kafka record value of the format
would carry, each followed by ``\\n`` (Flink's filesystem connector with a JSON format writes
the same).  Events without a value (the tombstone after a delete, a null raw value) have no
line.  A JSON message never needs a line break (its strings escape them), so a line break
inside one (a JSON column's own formatting) is written as the space it stands for; a raw value
with a line break can't be one line and is a bad record.

Encoding and decoding take a whole batch (one encoder call per batch written, one decoder call
per block of lines read).  Readers read from a byte offset and report the offset after what
they returned, an exact resume point, as the jsonl reader does.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from formats.base import BadRecordHandler
from formats.file.reading import BlockReader
from runtime.batch import ChangeBatch
from runtime.errors import BadRecordError
from runtime.schema import SchemaChange

if TYPE_CHECKING:
    from formats.base import MessageDecoder, MessageEncoder


class MessageFileWriter(ABC):
    """Writes change batches of one table schema into one open binary file."""

    @abstractmethod
    def write(self, batch: ChangeBatch) -> None:
        """Append the batch's events (bad ones go to the bad-record handler)."""

    @abstractmethod
    def close(self) -> None:
        """Write what is buffered and any footer; does not close the file object."""


@dataclass(frozen=True, slots=True)
class MessageChunk:
    """Change batches and schema changes read from a file, in file order, and where reading
    stands after them (``progress``: pass it to ``open_file_reader`` to read on right after).
    ``elements`` may be empty (only bad or blank records were read): progress still moved."""

    elements: list[ChangeBatch | SchemaChange]
    progress: int


class MessageFileReader(ABC):
    """Reads the messages of one file from a progress value, in chunks of about
    ``batch_rows`` messages.  A message that can't be decoded goes to the bad-record handler
    with an error naming the file and its place (line and byte offset); without a handler it
    raises :class:`BadRecordError`.  Not thread-safe; close it when done."""

    @abstractmethod
    def read(self) -> MessageChunk | None:
        """The next chunk, or None at the end of the file.  Blocks on file I/O."""

    @abstractmethod
    def close(self) -> None:
        """Release the file.  Idempotent."""

    def __enter__(self) -> MessageFileReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- line files -------------------------------------------------------------------------------
class LineFileWriter(MessageFileWriter):
    """One message per line (see the module docstring)."""

    def __init__(self, file: BinaryIO, encoder: MessageEncoder, json_lines: bool,
                 on_bad_record: BadRecordHandler | None = None):
        self._file = file
        self._encoder = encoder
        self._json = json_lines
        self._on_bad = on_bad_record

    def write(self, batch: ChangeBatch) -> None:
        if not len(batch):
            return
        values = self._encoder.encode(batch, batch.table)
        lines = [v for v in values if v is not None] if None in values else values
        if not lines:
            return
        data = b"\n".join(lines)  # type: ignore[arg-type]
        if data.count(b"\n") != len(lines) - 1:  # one C scan: line breaks inside messages
            lines = self._one_per_line(batch, values)
            if not lines:
                return
            data = b"\n".join(lines)
        self._file.write(data)
        self._file.write(b"\n")

    def _one_per_line(self, batch: ChangeBatch, values: list[bytes | None]) -> list[bytes]:
        if self._json:  # JSON text has line breaks only where whitespace is
            return [v.replace(b"\n", b" ") for v in values if v is not None]
        out: list[bytes] = []
        for i, v in enumerate(values):
            if v is None:
                continue
            if b"\n" not in v:
                out.append(v)
                continue
            key = batch.schema.key_of(batch.rows()[i]) if batch.schema.primary_key else None
            err = BadRecordError(f"table {batch.table}: the value of event {i} of a batch"
                                 + (f" (key {key!r})" if key is not None else "")
                                 + " has a line break; a line file holds one value per line")
            if self._on_bad is None:
                raise err
            self._on_bad(err, v)
        return out

    def close(self) -> None:
        self._file.flush()


class LineFileReader(MessageFileReader):
    """Reads a line file in blocks of whole lines, decoding each block in one decoder call.

    ``table`` is the table of messages that name none (the decoders' topic argument) and
    ``timestamp_ms`` the event time of messages that carry none (the file's modification
    time).  With ``json_lines``, empty lines are skipped; otherwise (raw) every line is a
    message, an empty one too.
    """

    def __init__(self, path: str, decoder: MessageDecoder, progress: int, batch_rows: int,
                 table: str, timestamp_ms: int, json_lines: bool,
                 on_bad_record: BadRecordHandler | None):
        self._blocks = BlockReader(path, progress, batch_rows, on_bad_record)
        self._decoder = decoder
        self._table = table
        self._ts = timestamp_ms
        self._json = json_lines

    def read(self) -> MessageChunk | None:
        got = self._blocks.next_block()
        if got is None:
            return None
        start, block = got
        lines = block.split(b"\n")
        if block.endswith(b"\n"):
            lines.pop()  # the terminator of the last line, not an empty line after it
        index: list[int] | None = None  # line number in the block of each message kept
        if self._json and (b"" in lines or b"\r" in lines):
            index = [i for i, line in enumerate(lines) if line and line != b"\r"]
            messages = [lines[i] for i in index]
        else:
            messages = lines
        n = len(messages)
        decoded = self._decoder.decode([None] * n, messages, [self._ts] * n, self._table)
        if decoded.bad:
            starts = np.concatenate(([0], np.cumsum([len(line) + 1 for line in lines])))
            for i, reason in decoded.bad:
                line = index[i] if index is not None else i
                self._blocks.bad_record(start + int(starts[line]), reason, lines[line])
        self._blocks.learn(len(block), len(lines))
        return MessageChunk(decoded.elements, self._blocks.position)

    def close(self) -> None:
        self._blocks.close()

