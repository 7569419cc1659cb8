"""The engine and the connector SPI.  Imports nothing of ours.

Memory allocators, tuned once for every process that imports the runtime (a user's own
settings win).  A pipeline allocates and frees buffers of the same few sizes for every batch;
an allocator that hands freed memory back to the OS at once takes it back page by page, a
fault each, on the next batch (bench/pipeline_bench.py, 5M rows, datagen -> blackhole at
parallelism 1: 4.1-4.5M -> 6.4M rows/s; into Parquet at parallelism 2: 1.25-1.33M -> 1.92M
rows/s, peak RSS 230 -> 264 MB; 10M rows -> blackhole: 55-62k page faults -> 16k).

* Arrow's default allocator (mimalloc) keeps freed pages ``MIMALLOC_PURGE_DELAY`` ms before
  giving them back.  100 ms: a batch's buffers are reused by the next ones (10 ms, the
  setting before, left 60-110k page faults in a 10M-row run with a transform and 64k-row
  batches; 100 ms 23-33k), and RSS stays near what is in use (mimalloc's own default gave
  286 MB where 10 ms gave 220, in the Parquet run above).  Set before pyarrow is first
  imported.
* glibc's malloc (numpy's arrays, Python's bytes) maps each block over 128 KiB on its own
  and unmaps it when freed, and trims its heaps' free tops over 128 KiB: a batch's numpy
  arrays are such blocks (glibc raises both limits to the largest block freed, but one size
  at a time, each first mapped and unmapped).  Here blocks up to 32 MiB come from the heaps,
  and a heap keeps up to 16 MiB free at its top plus 4 MiB taken ahead: no more, as a
  service's pipelines share a process and each thread's heap keeps its own.
  ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` or ``MALLOC_TOP_PAD_`` in the
  environment (read by glibc at process start) leave glibc as they say.
"""
import os as _os

_os.environ.setdefault("MIMALLOC_PURGE_DELAY", "100")


def _tune_glibc_malloc() -> None:
    if any(k in _os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_",
                                      "MALLOC_TOP_PAD_")):
        return
    import ctypes  # noqa: PLC0415

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # no C library to ask, or none with mallopt
        return
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3  # glibc's malloc.h
    mallopt(m_mmap_threshold, 32 << 20)
    mallopt(m_trim_threshold, 16 << 20)
    mallopt(m_top_pad, 4 << 20)


_tune_glibc_malloc()

# numpy's OpenBLAS starts a thread per core that spins for a while after it starts and after
# each call, taking a core from the pipeline's own threads; the hub does no linear algebra
# (bench/hdfs_bench.py, datagen -> files Parquet at 1M rows: run 0.61 -> 0.46 s, CPU
# 1.08 -> 0.89 s).  Set before numpy is first imported; a user's own setting wins.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
