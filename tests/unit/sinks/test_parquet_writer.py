"""The Parquet format writer under the files sink: row groups encoded by a background thread
in order, bytes reaching the file in few large writes, the thread's errors raised."""
from __future__ import annotations

import io
import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import formats.file.parquet
from formats.file.parquet import OUTPUT_BUFFER, ParquetConfig, ParquetFormatWriter

SCHEMA = pa.schema([pa.field("id", pa.int64()), pa.field("note", pa.string())])


def _rows(start: int, n: int) -> pa.Table:
    ids = np.arange(start, start + n, dtype=np.int64)
    return pa.table({"id": ids, "note": pa.array([f"note {i % 97}" for i in ids])},
                    schema=SCHEMA)


class CountingFile(io.BytesIO):
    """Counts the writes it gets; fails every write once ``fail_after`` bytes were written."""

    def __init__(self, fail_after: int | None = None):
        super().__init__()
        self.writes = 0
        self.fail_after = fail_after

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writes += 1
        if self.fail_after is not None and self.tell() + len(data) > self.fail_after:
            raise ConnectionError("the datanode went away")
        return super().write(data)


@pytest.fixture(autouse=True)
def one_spare_core(monkeypatch: pytest.MonkeyPatch) -> threading.BoundedSemaphore:
    """One writer at a time may encode in the background, whatever this machine has."""
    sem = threading.BoundedSemaphore(1)
    monkeypatch.setattr(formats.file.parquet, "_BACKGROUND", sem)
    return sem


def _encoding_threads() -> int:
    return sum(t.name == "parquet-encode" for t in threading.enumerate())


@pytest.mark.parametrize("spare", [True, False])
def test_row_groups_keep_the_order_of_the_writes_and_their_size(
        spare: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not spare:
        monkeypatch.setattr(formats.file.parquet, "_BACKGROUND", None)
    f = CountingFile()
    w = ParquetFormatWriter(f, SCHEMA, ParquetConfig(row_group_size=100))
    rng = np.random.default_rng(7)
    at = 0
    for n in rng.integers(1, 260, 80):
        w.write(_rows(at, int(n)))
        at += int(n)
    assert _encoding_threads() == (1 if spare else 0)
    w.close()
    assert _encoding_threads() == 0
    assert not f.closed  # the file belongs to the caller (the bucket closes and syncs it)
    pf = pq.ParquetFile(pa.BufferReader(f.getvalue()))
    sizes = [pf.metadata.row_group(i).num_rows for i in range(pf.metadata.num_row_groups)]
    assert sizes == [100] * (at // 100) + ([at % 100] if at % 100 else [])
    assert pf.read().column("id").to_pylist() == list(range(at))


def test_bytes_reach_the_file_in_few_large_writes() -> None:
    # without the buffer every page is a write of its own: hundreds for these rows
    f = CountingFile()
    w = ParquetFormatWriter(f, SCHEMA, ParquetConfig(row_group_size=5_000, compression="none"))
    for start in range(0, 400_000, 20_000):
        w.write(_rows(start, 20_000))
    w.close()
    size = len(f.getvalue())
    assert size > 2 * OUTPUT_BUFFER
    assert f.writes <= size // OUTPUT_BUFFER + 2
    assert pq.read_table(pa.BufferReader(f.getvalue())).num_rows == 400_000


def test_an_error_of_the_encoding_thread_is_raised_to_the_writer() -> None:
    f = CountingFile(fail_after=OUTPUT_BUFFER + 1)
    w = ParquetFormatWriter(f, SCHEMA, ParquetConfig(row_group_size=5_000, compression="none"))
    with pytest.raises(OSError, match="the datanode went away"):
        for start in range(0, 1_000_000, 20_000):
            w.write(_rows(start, 20_000))
        w.close()


def test_an_error_at_close_is_raised() -> None:
    f = CountingFile(fail_after=0)
    w = ParquetFormatWriter(f, SCHEMA, ParquetConfig())
    w.write(_rows(0, 10))
    with pytest.raises(OSError, match="the datanode went away"):
        w.close()


def test_one_background_writer_per_spare_core_and_the_core_is_given_back_at_close() -> None:
    a = ParquetFormatWriter(io.BytesIO(), SCHEMA, ParquetConfig(row_group_size=100))
    b = ParquetFormatWriter(io.BytesIO(), SCHEMA, ParquetConfig(row_group_size=100))
    a.write(_rows(0, 250))
    b.write(_rows(0, 250))  # no core left: b encodes in the caller's thread
    assert (a._thread is not None, b._thread is not None) == (True, False)
    a.close()
    b.write(_rows(250, 250))
    assert b._thread is None  # a writer keeps its mode for its file
    c = ParquetFormatWriter(io.BytesIO(), SCHEMA, ParquetConfig(row_group_size=100))
    c.write(_rows(0, 250))
    assert c._thread is not None
    b.close()
    c.close()
