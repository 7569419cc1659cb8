"""Machinery shared by the format readers.

* :func:`isolate_bad`: convert many records at once and, only when that fails, bisect to the
  bad ones, so a good block costs one vectorised call and a bad record costs O(log n) calls.
* :class:`BlockReader`: reads a line-oriented file in byte blocks cut at the last record
  boundary, so the byte offset after a block is an exact resume point; :class:`TextFileReader`
  parses each block (jsonl, csv) in one Arrow call, the message-file readers
  (:mod:`formats.file.messages`) decode its lines in one decoder call.
"""
from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from formats.base import BadRecordHandler
from formats.file.base import FormatReader, ReadChunk
from runtime.errors import BadRecordError

#: Errors that mean "this data is bad" (as opposed to a bug or an unsupported type).
DATA_ERRORS = (ValueError, pa.ArrowTypeError)  # pa.ArrowInvalid is a ValueError

_MIN_BLOCK = 512  # tiny batches in tests; real ones size blocks by batch_rows
_SAMPLE = 64 * 1024
#: A record longer than this is cut at a plain newline even inside quotes (a runaway quote
#: would otherwise swallow the rest of the file into memory).
MAX_RECORD = 64 * 1024 * 1024


def isolate_bad(n: int, convert: Callable[[int, int], pa.RecordBatch],
                report: Callable[[int, Exception], None]) -> list[pa.RecordBatch]:
    """``convert(lo, hi)`` records ``[lo, hi)`` of ``n``; where it fails, bisect down to the
    single records that fail and ``report(index, error)`` each (report returns to skip it
    or raises).  Returns the converted batches of the good records, in order."""
    out: list[pa.RecordBatch] = []

    def go(lo: int, hi: int) -> None:
        try:
            out.append(convert(lo, hi))
        except DATA_ERRORS as exc:
            if hi - lo == 1:
                report(lo, exc)
                return
            mid = (lo + hi) // 2
            go(lo, mid)
            go(mid, hi)

    if n:
        go(0, n)
    return out


def empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([], f.type) for f in schema], schema=schema)


def concat(batches: list[pa.RecordBatch], schema: pa.Schema) -> pa.RecordBatch:
    """One batch of ``schema`` from many (an empty one from none)."""
    if len(batches) == 1:
        return batches[0]
    if not batches:
        return empty_batch(schema)
    return pa.concat_batches(batches)


def short(exc: Exception) -> str:
    """First line of an error message, at most 200 characters, without Arrow's row numbers
    (they count from the start of a block, not of the file)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"\bRow #\d+: ", "", text)
    return text if len(text) <= 200 else text[:197] + "..."


class BlockReader:
    """A line-oriented file read from a byte offset in blocks of whole records, about
    ``batch_rows`` records each.

    :meth:`next_block` returns the next block and moves :attr:`position` past it: the byte
    offset of the next unread record, an exact resume point.  Subclasses may override
    :meth:`cut` for records that span lines (quoted CSV).  Not thread-safe.
    """

    def __init__(self, path: str, progress: int, batch_rows: int,
                 on_bad_record: BadRecordHandler | None = None):
        self.path = path
        self.batch_rows = max(1, batch_rows)
        self.on_bad_record = on_bad_record
        self._file = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._pos = progress
        self._buf = b""
        self._eof = False  # the file ended within self._buf (files are complete when read)
        self._row_bytes: float | None = None  # running estimate, sizes the next block
        self._line_memo = (0, 1)  # (byte offset, line number there): line numbers for errors

    @property
    def position(self) -> int:
        """Byte offset of the first record not returned yet."""
        return self._pos

    def cut(self, data: bytes, limit: int) -> int:
        """Length of the longest prefix of ``data[:limit]`` made of whole records (0: none)."""
        return data.rfind(b"\n", 0, limit) + 1

    def next_block(self) -> tuple[int, bytes] | None:
        """``(byte offset, bytes)`` of the next whole records, or None at the end of the file.
        The last record of a file may lack its newline.  Blocks on file I/O."""
        if self._row_bytes is None:
            # first estimate from the lines of a sample: blocks of about batch_rows records
            sample = self._fill(min(_SAMPLE, self.batch_rows * 256))
            self._row_bytes = len(sample) / max(1, sample.count(b"\n"))
        want = max(_MIN_BLOCK, int(self.batch_rows * self._row_bytes))
        while True:
            data = self._fill(want)
            if not data:
                return None
            if self._eof and len(data) <= want:
                end = len(data)  # the rest of the file: its last record may lack a newline
            else:
                end = self.cut(data, want)
                if end == 0:  # no whole record yet
                    if want < MAX_RECORD:
                        want *= 2
                        continue
                    end = data.rfind(b"\n", 0, want) + 1 or min(len(data), want)
            block, self._buf = data[:end], data[end:]
            start = self._pos
            self._pos = start + end
            return start, block

    def learn(self, block_bytes: int, records: int) -> None:
        """Tell the reader how many records a block held (sizes the next blocks)."""
        if records and self._row_bytes is not None:
            self._row_bytes = 0.5 * self._row_bytes + 0.5 * block_bytes / records

    def close(self) -> None:
        self._file.close()

    def _fill(self, want: int) -> bytes:
        """Buffered bytes from the current position: at least ``want`` unless the file ends
        before (then ``self._eof``)."""
        if len(self._buf) < want and not self._eof:
            self._file.seek(self._pos + len(self._buf))
            n = want - len(self._buf)
            more = self._file.read(n)
            self._eof = len(more) < n
            self._buf += more
        return self._buf

    def bad_record(self, offset: int, reason: str, record: Any) -> None:
        """Report the record at byte ``offset`` (raise when there is no handler)."""
        err = BadRecordError(f"{self.path}:{self.line_at(offset)}: {reason} (byte offset {offset})")
        if self.on_bad_record is None:
            raise err
        self.on_bad_record(err, record)

    def line_at(self, offset: int) -> int:
        """1-based line number of byte ``offset``: counted from the last one asked (errors come
        in file order, so reporting many bad lines stays linear)."""
        memo_off, line = self._line_memo if self._line_memo[0] <= offset else (0, 1)
        with open(self.path, "rb") as f:
            f.seek(memo_off)
            pos = memo_off
            while pos < offset:
                chunk = f.read(min(1 << 20, offset - pos))
                if not chunk:
                    break
                line += chunk.count(b"\n")
                pos += len(chunk)
        self._line_memo = (offset, line)
        return line


class TextFileReader(BlockReader, FormatReader):
    """A line-oriented file read in byte blocks of about ``batch_rows`` records.

    Progress is the byte offset of the next unread record.  Subclasses parse a block of
    whole records into a batch of ``schema`` (:meth:`parse`, raising a data error on a bad
    record) and may override :meth:`record_ends` for records that span lines (quoted CSV).
    """

    def __init__(self, path: str, schema: pa.Schema, progress: int, batch_rows: int,
                 on_bad_record: BadRecordHandler | None):
        super().__init__(path, progress, batch_rows, on_bad_record)
        self.schema = schema

    # -- to implement ------------------------------------------------------------------------
    @abstractmethod
    def parse(self, data: pa.Buffer) -> pa.RecordBatch:
        """Whole records (no header) to a batch of ``self.schema``."""

    def record_ends(self, data: bytes) -> np.ndarray:
        """Offsets just after each record in ``data`` (which holds whole records)."""
        arr = np.frombuffer(data, np.uint8)
        return self._with_tail(np.flatnonzero(arr == 10) + 1, len(data))

    # -- FormatReader --------------------------------------------------------------------------
    def read(self) -> ReadChunk | None:
        got = self.next_block()
        if got is None:
            return None
        start, block = got
        batch = self._parse_isolating(block, start)
        self.learn(len(block), batch.num_rows)
        return ReadChunk(batch, self._pos)

    # -- internals -----------------------------------------------------------------------------
    @staticmethod
    def _with_tail(ends: np.ndarray, size: int) -> np.ndarray:
        if not len(ends) or ends[-1] != size:
            ends = np.append(ends, size)
        return ends

    def _parse_isolating(self, block: bytes, start: int) -> pa.RecordBatch:
        buf = pa.py_buffer(block)
        try:
            return self.parse(buf)
        except DATA_ERRORS:
            pass  # find the bad records below; the common path stays one call
        ends = self.record_ends(block)
        starts = np.concatenate(([0], ends[:-1]))

        def convert(lo: int, hi: int) -> pa.RecordBatch:
            return self.parse(buf.slice(int(starts[lo]), int(ends[hi - 1] - starts[lo])))

        def report(i: int, exc: Exception) -> None:
            record = block[int(starts[i]):int(ends[i])]
            self.bad_record(start + int(starts[i]), short(exc), record)

        return concat(isolate_bad(len(ends), convert, report), self.schema)
